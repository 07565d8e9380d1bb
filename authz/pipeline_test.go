package authz_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
)

// Stub stages: each does exactly what a test tells it.
type classifier struct {
	op   authz.Operation
	deny *authz.Denial
}

func (c classifier) Classify(*authz.Request) (authz.Operation, *authz.Denial) { return c.op, c.deny }

type authenticator struct {
	caller *authz.Caller
	deny   *authz.Denial
	err    error
	panic  bool
}

func (a authenticator) Authenticate(context.Context, *authz.Request, *authz.Operation) (*authz.Caller, *authz.Denial, error) {
	if a.panic {
		panic("boom")
	}
	return a.caller, a.deny, a.err
}

type firewall struct{ allow bool }

func (f firewall) Connect(*authz.Request) authz.Connection {
	return authz.Connection{ClientAddr: netip.MustParseAddr("198.51.100.7")}
}

func (f firewall) Evaluate(d *authz.Decision) authz.NetworkVerdict {
	v := d.Network
	v.Allowed = f.allow
	if !f.allow {
		v.Code = "ForbiddenByFirewall"
	}
	return v
}

type policy struct {
	verdict authz.AuthzVerdict
	err     error
	panic   bool
	called  *bool
}

func (p policy) Authorize(context.Context, *authz.Decision) (authz.AuthzVerdict, error) {
	if p.called != nil {
		*p.called = true
	}
	if p.panic {
		panic("policy bug")
	}
	return p.verdict, p.err
}

var (
	getSecret = authz.Operation{Plane: authz.PlaneData, Resource: "secrets", Permission: "get", Name: "SecretGet",
		DataAction: "Microsoft.KeyVault/vaults/secrets/getSecret/action", Object: "db", Scope: "/secrets/db"}
	alice = &authz.Caller{ObjectID: "oid-a", ApplicationID: "app-a", TenantID: "t", Issuer: "https://sts.windows.net/t/"}
	vault = authz.Vault{Name: "contoso", Location: "westeurope", ResourceID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso",
		Challenge: `Bearer authorization="https://login.microsoftonline.com/t", resource="https://vault.azure.net"`}
)

func pipeline(a authz.Authenticator, fw authz.Firewall, p authz.Policy) *authz.Pipeline {
	return &authz.Pipeline{Vault: vault, Classifier: classifier{op: getSecret}, Authenticator: a, Firewall: fw, Policy: p}
}

func TestDecideFailsClosed(t *testing.T) {
	allowAll := policy{verdict: authz.AuthzVerdict{Allowed: true}}
	tests := []struct {
		name      string
		p         *authz.Pipeline
		status    int
		stage     authz.Stage
		wantInner string
	}{
		{"authenticator error", pipeline(authenticator{err: errors.New("jwks down")}, firewall{true}, allowAll), 500, authz.StageAuthenticate, "AuthorizationUnavailable"},
		{"authenticator panic", pipeline(authenticator{panic: true}, firewall{true}, allowAll), 500, authz.StageAuthenticate, "AuthorizationUnavailable"},
		{"authenticator returns nothing", pipeline(authenticator{}, firewall{true}, allowAll), 500, authz.StageAuthenticate, "AuthorizationUnavailable"},
		{"no authenticator", pipeline(nil, firewall{true}, allowAll), 500, authz.StageAuthenticate, "AuthorizationUnavailable"},
		{"no firewall", pipeline(authenticator{caller: alice}, nil, allowAll), 500, authz.StageFirewall, "AuthorizationUnavailable"},
		{"policy error", pipeline(authenticator{caller: alice}, firewall{true}, policy{err: errors.New("eval timeout"), verdict: authz.AuthzVerdict{Allowed: true}}), 500, authz.StageAuthorize, "AuthorizationUnavailable"},
		{"policy panic", pipeline(authenticator{caller: alice}, firewall{true}, policy{panic: true}), 500, authz.StageAuthorize, "AuthorizationUnavailable"},
		{"no policy", pipeline(authenticator{caller: alice}, firewall{true}, nil), 403, authz.StageAuthorize, authz.CodeForbiddenByPolicy},
		{"no classifier", &authz.Pipeline{Vault: vault}, 500, authz.StageClassify, "AuthorizationUnavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.p.Decide(t.Context(), &authz.Request{Method: "GET", Path: "/secrets/db"})
			if d.Allowed {
				t.Fatal("allowed; want a fail-closed deny")
			}
			if d.Denial == nil || d.Denial.Status != tt.status || d.Denial.Inner != tt.wantInner {
				t.Fatalf("denial = %+v, want status %d inner %s", d.Denial, tt.status, tt.wantInner)
			}
			if d.Stage != tt.stage {
				t.Errorf("stage = %v, want %v", d.Stage, tt.stage)
			}
			r := d.Response()
			if r.Allowed || r.Status != tt.status {
				t.Errorf("response = %+v", r)
			}
			if strings.Contains(r.Body, "jwks down") || strings.Contains(r.Body, "boom") {
				t.Errorf("internal error leaked to the client: %s", r.Body)
			}
		})
	}
}

func TestDecideOrder(t *testing.T) {
	t.Run("401 before the firewall", func(t *testing.T) {
		called := false
		deny := &authz.Denial{Status: 401, Code: "Unauthorized", Message: "AKV10000: Request is missing a Bearer or PoP token.", Challenge: true}
		d := pipeline(authenticator{deny: deny}, firewall{false}, policy{called: &called}).Decide(t.Context(), &authz.Request{})
		if d.Allowed || d.Denial.Status != 401 || d.Stage != authz.StageAuthenticate || called {
			t.Fatalf("got %+v at %v (policy called: %v)", d.Denial, d.Stage, called)
		}
		r := d.Response()
		if got := header(r, "www-authenticate"); got != vault.Challenge {
			t.Errorf("www-authenticate = %q", got)
		}
		if got := header(r, "x-ms-keyvault-network-info"); got != "conn_type=Ipv4;addr=198.51.100.7;act_addr_fam=InterNetwork;" {
			t.Errorf("network info = %q", got)
		}
	})
	t.Run("firewall before the policy", func(t *testing.T) {
		called := false
		d := pipeline(authenticator{caller: alice}, firewall{false}, policy{called: &called, verdict: authz.AuthzVerdict{Allowed: true}}).Decide(t.Context(), &authz.Request{})
		if d.Allowed || d.Stage != authz.StageFirewall || called {
			t.Fatalf("allowed=%v stage=%v policy called=%v", d.Allowed, d.Stage, called)
		}
		want := `{"error":{"code":"Forbidden","message":"Client address is not authorized and caller is not a trusted service.\r\nClient address: 198.51.100.7\r\nCaller: appid=app-a;oid=oid-a;iss=https://sts.windows.net/t/\r\nVault: contoso;location=westeurope","innererror":{"code":"ForbiddenByFirewall"}}}`
		if got := d.Response().Body; got != want {
			t.Errorf("body:\n got %s\nwant %s", got, want)
		}
	})
	t.Run("allow", func(t *testing.T) {
		req := &authz.Request{Headers: map[string]string{"x-vaultwall-caller-oid": "forged", "x-vaultwall-trusted-service": "Backup"}}
		d := pipeline(authenticator{caller: alice}, firewall{true}, policy{verdict: authz.AuthzVerdict{Allowed: true}}).Decide(t.Context(), req)
		if !d.Allowed || d.Denial != nil {
			t.Fatalf("denied: %+v", d.Denial)
		}
		r := d.Response()
		if got := upstream(r, authz.HeaderCallerObjectID); got != "oid-a" {
			t.Errorf("caller oid header = %q", got)
		}
		if len(r.UpstreamRemove) != 1 || r.UpstreamRemove[0] != "x-vaultwall-trusted-service" {
			t.Errorf("remove = %v, want the forged trusted-service header", r.UpstreamRemove)
		}
	})
	t.Run("access denied message", func(t *testing.T) {
		d := pipeline(authenticator{caller: alice}, firewall{true}, policy{verdict: authz.AuthzVerdict{Model: authz.ModelAccessPolicy}}).Decide(t.Context(), &authz.Request{})
		want := "The user, group or application 'appid=app-a;oid=oid-a;iss=https://sts.windows.net/t/' does not have secrets get permission on key vault 'contoso;location=westeurope'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287"
		if d.Denial.Message != want || d.Denial.Inner != authz.CodeAccessDenied {
			t.Errorf("got %q (%s)", d.Denial.Message, d.Denial.Inner)
		}
	})
	t.Run("rbac denied message", func(t *testing.T) {
		d := pipeline(authenticator{caller: alice}, firewall{true}, policy{verdict: authz.AuthzVerdict{Model: authz.ModelRBAC}}).Decide(t.Context(), &authz.Request{})
		if d.Denial.Inner != authz.CodeForbiddenByRbac ||
			!strings.Contains(d.Denial.Message, "\r\nAction: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\n") ||
			!strings.Contains(d.Denial.Message, "\r\nResource: '/subscriptions/s/resourcegroups/rg/providers/microsoft.keyvault/vaults/contoso/secrets/db'\r\n") ||
			!strings.Contains(d.Denial.Message, "\r\nAssignment: (not found)\r\n") {
			t.Errorf("got %q", d.Denial.Message)
		}
	})
}

func TestNewIDUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := authz.NewID()
		if len(id) != 36 || seen[id] {
			t.Fatalf("id %q repeated or malformed", id)
		}
		seen[id] = true
	}
}

func header(r authz.Response, name string) string {
	for _, h := range r.Headers {
		if h.Name == name {
			return h.Value
		}
	}
	return ""
}

func upstream(r authz.Response, name string) string {
	for _, h := range r.Upstream {
		if h.Name == name {
			return h.Value
		}
	}
	return ""
}

// panickyTracer panics when the span of its stage starts or ends.
type panickyTracer struct {
	stage   authz.Stage
	onStart bool
}

func (p panickyTracer) StartStage(ctx context.Context, s authz.Stage) (context.Context, func(*authz.Decision)) {
	if s == p.stage && p.onStart {
		panic("tracer bug at start")
	}
	return ctx, func(*authz.Decision) {
		if s == p.stage && !p.onStart {
			panic("tracer bug at end")
		}
	}
}

// A panic after the verdict — in the authorize span's end, which runs once
// the decision is already an allow — must still become a refusal: the
// pipeline's recover never keeps an allow it cannot vouch for.
func TestDecideTracerPanicAfterAllowRefuses(t *testing.T) {
	allowAll := policy{verdict: authz.AuthzVerdict{Allowed: true}}
	for _, tt := range []struct {
		name   string
		tracer panickyTracer
		stage  authz.Stage
	}{
		{"authorize span end, after the allow", panickyTracer{stage: authz.StageAuthorize}, authz.StageAuthorize},
		{"authorize span start", panickyTracer{stage: authz.StageAuthorize, onStart: true}, authz.StageAuthorize},
		{"firewall span end", panickyTracer{stage: authz.StageFirewall}, authz.StageFirewall},
		{"classify span start", panickyTracer{stage: authz.StageClassify, onStart: true}, authz.StageClassify},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := pipeline(authenticator{caller: alice}, firewall{true}, allowAll)
			// The same pipeline without the tracer allows: the refusal
			// below is the panic's doing.
			if d := p.Decide(t.Context(), &authz.Request{Method: "GET", Path: "/secrets/db"}); !d.Allowed {
				t.Fatalf("without the tracer: refused %+v", d.Denial)
			}
			p.Tracer = tt.tracer
			d := p.Decide(t.Context(), &authz.Request{Method: "GET", Path: "/secrets/db"})
			if d.Allowed {
				t.Fatal("allowed after a panic; want a fail-closed refusal")
			}
			if d.Denial == nil || d.Denial.Status != 500 || d.Denial.Inner != "AuthorizationUnavailable" {
				t.Fatalf("denial = %+v, want 500 AuthorizationUnavailable", d.Denial)
			}
			if d.Stage != tt.stage {
				t.Errorf("stage = %v, want %v", d.Stage, tt.stage)
			}
			if d.Err == nil || !strings.Contains(d.Err.Error(), "tracer bug") {
				t.Errorf("err = %v, want the panic", d.Err)
			}
			if r := d.Response(); r.Allowed || r.Status != 500 {
				t.Errorf("response = %+v, want a 500 refusal", r)
			}
		})
	}
}

// TestDecideIntoIDs: decisions made in place, into one reused and into
// fresh storage, carry distinct well-formed ids that do not change when
// the storage is reused for the next decision's struct copy.
func TestDecideIntoIDs(t *testing.T) {
	p := pipeline(authenticator{caller: alice}, firewall{true}, policy{verdict: authz.AuthzVerdict{Model: authz.ModelRBAC}})
	seen := map[string]bool{}
	var kept []*authz.Decision
	for range 100 {
		d := &authz.Decision{}
		p.DecideInto(t.Context(), d, &authz.Request{})
		id := d.ID
		if len(id) != 36 || id[8] != '-' || seen[id] {
			t.Fatalf("id %q repeated or malformed", id)
		}
		seen[id] = true
		kept = append(kept, d)
		cp := *d // a copy keeps the id
		if cp.ID != id {
			t.Fatalf("copied id %q, want %q", cp.ID, id)
		}
	}
	for _, d := range kept {
		if !seen[d.ID] || d.Response().Metadata.DecisionID != d.ID {
			t.Fatalf("id %q changed after later decisions", d.ID)
		}
	}
	// A Decision reused for another decision leaves the first id intact.
	d := kept[0]
	first := d.ID
	p.DecideInto(t.Context(), d, &authz.Request{})
	if !seen[first] || d.ID == first || len(d.ID) != 36 {
		t.Fatalf("reuse: first id now %q, second %q", first, d.ID)
	}
}

// TestNetworkInfoAndClientIP: the network-info header and the client_ip
// metadata name the same address, for IPv4, IPv6 with a zone, a subnet
// and a private endpoint; no address, neither.
func TestNetworkInfoAndClientIP(t *testing.T) {
	for _, tc := range []struct {
		conn authz.Connection
		info string
	}{
		{authz.Connection{ClientAddr: netip.MustParseAddr("198.51.100.7")}, "conn_type=Ipv4;addr=198.51.100.7;act_addr_fam=InterNetwork;"},
		{authz.Connection{ClientAddr: netip.MustParseAddr("2001:db8::1%eth0")}, "conn_type=Ipv6;addr=2001:db8::1%eth0;act_addr_fam=InterNetworkV6;"},
		{authz.Connection{ClientAddr: netip.MustParseAddr("::ffff:10.0.0.1")}, "conn_type=Ipv6;addr=::ffff:10.0.0.1;act_addr_fam=InterNetworkV6;"},
		{authz.Connection{ClientAddr: netip.MustParseAddr("10.0.0.1"), SubnetID: "/subscriptions/s/x/subnets/sn"}, "conn_type=Subnet;subnet=/subscriptions/s/x/subnets/sn;addr=10.0.0.1;act_addr_fam=InterNetwork;"},
		{authz.Connection{ClientAddr: netip.MustParseAddr("10.0.0.1"), PrivateEndpointID: "/pe/1", SubnetID: "sn"}, "conn_type=PrivateLink;private_endpoint=/pe/1;addr=10.0.0.1;act_addr_fam=InterNetwork;"},
		{authz.Connection{}, ""},
	} {
		for _, allowed := range []bool{true, false} {
			d := &authz.Decision{ID: "id", Allowed: allowed, Network: authz.NetworkVerdict{Connection: tc.conn}}
			if !allowed {
				d.Denial = &authz.Denial{Status: 403, Code: "Forbidden"}
			}
			r := d.Response()
			if got := header(r, "x-ms-keyvault-network-info"); got != tc.info {
				t.Errorf("allowed=%v %v: network info %q, want %q", allowed, tc.conn.ClientAddr, got, tc.info)
			}
			want := ""
			if tc.conn.ClientAddr.IsValid() {
				want = tc.conn.ClientAddr.String()
			}
			if r.Metadata.ClientIP != want || allowed && upstream(r, authz.HeaderClientIP) != want {
				t.Errorf("allowed=%v: client ip %q / %q, want %q", allowed, r.Metadata.ClientIP, upstream(r, authz.HeaderClientIP), want)
			}
		}
	}
}

type recognizer struct{ name string }

func (r recognizer) Recognize(*authz.Request, *authz.Caller, *authz.Operation) (string, bool) {
	return r.name, r.name != ""
}

type explainingRecognizer struct{ recognizer }

func (explainingRecognizer) Unrecognized(*authz.Request) string {
	return "no clientAuth extended key usage"
}

// TestTrustedProblem: the trusted-service stage is asked why a certificate
// was not recognised only when it can say (TrustedProblems) and only when
// nothing was recognised; a stage that cannot say is no failure.
func TestTrustedProblem(t *testing.T) {
	allowAll := policy{verdict: authz.AuthzVerdict{Allowed: true}}
	for _, tc := range []struct {
		name    string
		trusted authz.TrustedServices
		service string
		problem string
	}{
		{"cannot explain, nothing recognised", recognizer{}, "", ""},
		{"cannot explain, recognised", recognizer{"AzureBackup"}, "AzureBackup", ""},
		{"explains, nothing recognised", explainingRecognizer{}, "", "no clientAuth extended key usage"},
		{"explains, recognised", explainingRecognizer{recognizer{"AzureBackup"}}, "AzureBackup", ""},
	} {
		p := pipeline(authenticator{caller: alice}, firewall{true}, allowAll)
		p.Trusted = tc.trusted
		d := p.Decide(t.Context(), &authz.Request{Method: "GET", Path: "/secrets/db"})
		if !d.Allowed || d.Network.TrustedService != tc.service || d.Network.TrustedProblem != tc.problem {
			t.Errorf("%s: allowed %v, service %q, problem %q; want allowed, %q, %q (denial %+v)",
				tc.name, d.Allowed, d.Network.TrustedService, d.Network.TrustedProblem, tc.service, tc.problem, d.Denial)
		}
	}
}
