package authz_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
)

// explained is a decision as the pipeline leaves it, built by hand so each
// case states exactly the fields Explain reads.
func explained(change func(d *authz.Decision)) *authz.Decision {
	d := &authz.Decision{ID: "D-1", Vault: &vault, Request: &authz.Request{Method: "GET", Path: "/secrets/db/v1"},
		Operation: authz.Operation{Plane: authz.PlaneData, Name: "SecretGet", Method: "GET", Resource: "secrets", Permission: "get",
			DataAction: "Microsoft.KeyVault/vaults/secrets/getSecret/action", Object: "db", Version: "v1", APIVersion: "7.5"},
		Caller: alice, Stage: authz.StageAuthorize, Allowed: true,
		Network: authz.NetworkVerdict{Connection: authz.Connection{ClientAddr: netip.MustParseAddr("198.51.100.7")},
			Evaluated: true, Allowed: true, AuthType: authz.AddrPublicIP, Rule: "ipRules[0]=198.51.100.0/24"},
		Authz: authz.AuthzVerdict{Evaluated: true, Allowed: true, Model: "accessPolicy", Rule: "accessPolicies[0]",
			Reason: "accessPolicies[0] (objectId oid-a) grants secrets get"},
	}
	if change != nil {
		change(d)
	}
	return d
}

func TestExplain(t *testing.T) {
	classified := "SecretGet (GET /secrets/db/v1): permission secrets/get, data action Microsoft.KeyVault/vaults/secrets/getSecret/action, object db/v1, api-version 7.5"
	caller := "caller " + alice.String() + " (tenant t)"
	tests := []struct {
		name string
		d    *authz.Decision
		want []authz.Step
	}{
		{"allowed: every stage passes, each saying why", explained(nil), []authz.Step{
			{Stage: authz.StageClassify, Outcome: "pass", Detail: classified},
			{Stage: authz.StageAuthenticate, Outcome: "pass", Detail: caller},
			{Stage: authz.StageFirewall, Outcome: "pass", Detail: "client 198.51.100.7; rule ipRules[0]=198.51.100.0/24 (PublicIP)"},
			{Stage: authz.StageAuthorize, Outcome: "pass", Detail: "accessPolicy: accessPolicies[0] (objectId oid-a) grants secrets get"},
		}},
		{"401: the later stages are not reached; the connection is still described", explained(func(d *authz.Decision) {
			d.Allowed, d.Stage, d.Caller = false, authz.StageAuthenticate, nil
			d.Network = authz.NetworkVerdict{Connection: d.Network.Connection}
			d.Authz = authz.AuthzVerdict{}
			d.Denial = &authz.Denial{Status: 401, Code: "Unauthorized", Message: "AKV10000: Request is missing a Bearer or PoP token.\r\nsecond line"}
		}), []authz.Step{
			{Stage: authz.StageClassify, Outcome: "pass", Detail: classified},
			{Stage: authz.StageAuthenticate, Outcome: "deny", Detail: "Unauthorized: AKV10000: Request is missing a Bearer or PoP token."},
			{Stage: authz.StageFirewall, Outcome: "not reached", Detail: "client 198.51.100.7"},
			{Stage: authz.StageAuthorize, Outcome: "not reached", Detail: ""},
		}},
		{"firewall refusal with every connection detail", explained(func(d *authz.Decision) {
			d.Allowed, d.Stage = false, authz.StageFirewall
			d.Network = authz.NetworkVerdict{Connection: authz.Connection{ClientAddr: netip.MustParseAddr("10.1.2.3"), SubnetID: "/subs/backend",
				PrivateEndpointID: "/pe/vault-pe"}, TrustedService: "Backup", TrustedInScope: false,
				Evaluated: true, Rule: "defaultAction=Deny", Code: "ForbiddenByFirewall"}
			d.Authz = authz.AuthzVerdict{}
			d.Denial = &authz.Denial{Status: 403, Code: "Forbidden", Inner: "ForbiddenByFirewall", Message: "Client address is not authorized"}
		}), []authz.Step{
			{Stage: authz.StageClassify, Outcome: "pass", Detail: classified},
			{Stage: authz.StageAuthenticate, Outcome: "pass", Detail: caller},
			{Stage: authz.StageFirewall, Outcome: "deny", Detail: "client 10.1.2.3, subnet /subs/backend, private endpoint /pe/vault-pe, " +
				"trusted service Backup (out of scope); rule defaultAction=Deny; ForbiddenByFirewall: Client address is not authorized"},
			{Stage: authz.StageAuthorize, Outcome: "not reached", Detail: ""},
		}},
		{"unknown client address with the problem", explained(func(d *authz.Decision) {
			d.Allowed, d.Stage = false, authz.StageFirewall
			d.Network = authz.NetworkVerdict{Connection: authz.Connection{Problem: "bad x-forwarded-for"}, Evaluated: true, Rule: "defaultAction=Deny"}
			d.Authz = authz.AuthzVerdict{}
			d.Denial = &authz.Denial{Status: 403, Code: "Forbidden", Message: "no"}
		}), nil},
		{"policy error: the error's first line, not its stack", explained(func(d *authz.Decision) {
			d.Allowed, d.Authz = false, authz.AuthzVerdict{}
			d.Err = errors.New("eval timeout\ngoroutine 1 [running]")
			d.Denial = &authz.Denial{Status: 500, Code: "InternalServerError", Inner: "AuthorizationUnavailable", Message: "could not decide"}
		}), []authz.Step{
			{Stage: authz.StageClassify, Outcome: "pass", Detail: classified},
			{Stage: authz.StageAuthenticate, Outcome: "pass", Detail: caller},
			{Stage: authz.StageFirewall, Outcome: "pass", Detail: "client 198.51.100.7; rule ipRules[0]=198.51.100.0/24 (PublicIP)"},
			{Stage: authz.StageAuthorize, Outcome: "error", Detail: "AuthorizationUnavailable: could not decide (eval timeout)"},
		}},
		{"control plane: the firewall is skipped", explained(func(d *authz.Decision) {
			d.Operation = authz.Operation{Plane: authz.PlaneControl, Name: "VaultGet", Method: "GET", Resource: "vaults", Permission: "read"}
			d.Network = authz.NetworkVerdict{}
			d.Authz = authz.AuthzVerdict{Evaluated: true, Allowed: true, Model: "rbac", Rule: "ra-1"}
		}), []authz.Step{
			{Stage: authz.StageClassify, Outcome: "pass", Detail: "VaultGet (GET /secrets/db/v1): permission vaults/read, data action "},
			{Stage: authz.StageAuthenticate, Outcome: "pass", Detail: caller},
			{Stage: authz.StageFirewall, Outcome: "skipped", Detail: "the firewall never applies to the control plane"},
			{Stage: authz.StageAuthorize, Outcome: "pass", Detail: "rbac: ra-1"},
		}},
		{"anonymous operation: one step", explained(func(d *authz.Decision) {
			d.Operation = authz.Operation{Plane: authz.PlaneData, Name: "Discovery", Anonymous: true}
			d.Stage, d.Caller = authz.StageClassify, nil
		}), []authz.Step{
			{Stage: authz.StageClassify, Outcome: "pass", Detail: "Discovery: served without a token, firewall or policy"},
		}},
		{"unknown operation refused at classify, after authentication", explained(func(d *authz.Decision) {
			d.Operation, d.Allowed, d.Stage = authz.Operation{}, false, authz.StageClassify
			d.Network, d.Authz = authz.NetworkVerdict{}, authz.AuthzVerdict{}
			d.Denial = &authz.Denial{Status: 400, Code: "BadParameter", Message: "unknown operation"}
			d.ClassifyDenial = d.Denial
		}), []authz.Step{
			{Stage: authz.StageClassify, Outcome: "deny", Detail: "BadParameter: unknown operation"},
			{Stage: authz.StageAuthenticate, Outcome: "pass", Detail: caller},
			{Stage: authz.StageFirewall, Outcome: "not reached", Detail: ""},
			{Stage: authz.StageAuthorize, Outcome: "not reached", Detail: ""},
		}},
		{"unknown operation held behind the 401", explained(func(d *authz.Decision) {
			d.Operation, d.Caller, d.Allowed, d.Stage = authz.Operation{}, nil, false, authz.StageAuthenticate
			d.Network, d.Authz = authz.NetworkVerdict{}, authz.AuthzVerdict{}
			d.ClassifyDenial = &authz.Denial{Status: 400, Code: "BadParameter", Inner: "UnknownOperation", Message: "unknown operation\r\nmore"}
			d.Denial = &authz.Denial{Status: 401, Code: "Unauthorized", Message: "AKV10000: Request is missing a Bearer or PoP token.", Challenge: true}
		}), []authz.Step{
			{Stage: authz.StageClassify, Outcome: "deny", Detail: "UnknownOperation: unknown operation (held: answered only to an authenticated caller)"},
			{Stage: authz.StageAuthenticate, Outcome: "deny", Detail: "Unauthorized: AKV10000: Request is missing a Bearer or PoP token."},
			{Stage: authz.StageFirewall, Outcome: "not reached", Detail: ""},
			{Stage: authz.StageAuthorize, Outcome: "not reached", Detail: ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.d.Explain()
			if tt.want == nil {
				// Only the firewall step is asserted.
				if fw := got[2]; fw.Outcome != "deny" || !strings.HasPrefix(fw.Detail, "client unknown (bad x-forwarded-for); rule defaultAction=Deny;") {
					t.Errorf("firewall step = %+v", fw)
				}
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d steps, want %d:\n%+v", len(got), len(tt.want), got)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("step %d:\n got %+v\nwant %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// The reason and the rule are combined without repeating the rule.
func TestExplainAuthorizeDetail(t *testing.T) {
	for _, tt := range []struct{ rule, reason, want string }{
		{"accessPolicies[0]", "accessPolicies[0] grants get", "accessPolicy: accessPolicies[0] grants get"},
		{"deny_prod", "production is read-only", "accessPolicy: deny_prod — production is read-only"},
		{"", "no entry names the caller", "accessPolicy: no entry names the caller"},
		{"accessPolicies[1]", "", "accessPolicy: accessPolicies[1]"},
		{"", "", "accessPolicy"},
	} {
		d := explained(func(d *authz.Decision) { d.Authz.Rule, d.Authz.Reason = tt.rule, tt.reason })
		if got := d.Explain()[3].Detail; got != tt.want {
			t.Errorf("rule %q reason %q: %q, want %q", tt.rule, tt.reason, got, tt.want)
		}
	}
}

type failingWriter struct{ after int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after == 0 {
		return 0, errors.New("disk full")
	}
	w.after--
	return len(p), nil
}

func TestWriteExplanation(t *testing.T) {
	var b strings.Builder
	if err := explained(nil).WriteExplanation(&b); err != nil {
		t.Fatal(err)
	}
	want := "decision D-1: ALLOWED (decided by authorize)\n" +
		"  classify      pass        SecretGet (GET /secrets/db/v1): permission secrets/get, data action Microsoft.KeyVault/vaults/secrets/getSecret/action, object db/v1, api-version 7.5\n" +
		"  authenticate  pass        caller " + alice.String() + " (tenant t)\n" +
		"  firewall      pass        client 198.51.100.7; rule ipRules[0]=198.51.100.0/24 (PublicIP)\n" +
		"  authorize     pass        accessPolicy: accessPolicies[0] (objectId oid-a) grants secrets get\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}

	b.Reset()
	denied := explained(func(d *authz.Decision) {
		d.Allowed, d.Authz.Allowed = false, false
		d.Denial = &authz.Denial{Status: 403, Code: "Forbidden", Inner: "AccessDenied", Message: "no"}
	})
	if err := denied.WriteExplanation(&b); err != nil {
		t.Fatal(err)
	}
	if first, _, _ := strings.Cut(b.String(), "\n"); first != "decision D-1: DENIED 403 AccessDenied (decided by authorize)" {
		t.Errorf("first line %q", first)
	}
	b.Reset()
	if err := explained(func(d *authz.Decision) { d.Allowed, d.Denial = false, nil }).WriteExplanation(&b); err != nil ||
		!strings.HasPrefix(b.String(), "decision D-1: DENIED 0  (decided by authorize)\n") {
		t.Errorf("a refusal without a denial: %q, %v", b.String(), err)
	}

	// A write error is returned, whichever line fails.
	for after := range 5 {
		if err := explained(nil).WriteExplanation(&failingWriter{after: after}); err == nil || err.Error() != "disk full" {
			t.Errorf("failing after %d lines: err = %v", after, err)
		}
	}
	if err := explained(nil).WriteExplanation(&failingWriter{after: 5}); err != nil {
		t.Errorf("five lines written: err = %v", err)
	}
}
