package authz_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
)

// countingAuthenticator records whether it was asked.
type countingAuthenticator struct{ calls *int }

func (a countingAuthenticator) Authenticate(context.Context, *authz.Request, *authz.Operation) (*authz.Caller, *authz.Denial, error) {
	*a.calls++
	return alice, nil, nil
}

// A classifier's refusal is held until the caller is authenticated: Key
// Vault answers 401 before anything about the request's shape. Without a
// valid token the 401 (or, when authentication cannot decide, the 500);
// with one the refusal, at classify. Never the firewall or the policy, and
// never an allow.
func TestDecideHoldsClassifierRefusalUntilAuthenticated(t *testing.T) {
	refusal := &authz.Denial{Status: 400, Code: "BadParameter", Inner: "InvalidMethodOverride",
		Message: `The X-HTTP-METHOD header value "PUT" is not supported: it must be PATCH or DELETE.`}
	missing := &authz.Denial{Status: 401, Code: "Unauthorized", Message: "AKV10000: Request is missing a Bearer or PoP token.", Challenge: true}
	tests := []struct {
		name    string
		authn   authz.Authenticator
		status  int
		stage   authz.Stage
		explain []string // outcome of each step
	}{
		{"no token: the 401", authenticator{deny: missing}, 401, authz.StageAuthenticate, []string{"deny", "deny", "not reached", "not reached"}},
		{"authentication error: the 500", authenticator{err: errors.New("jwks down")}, 500, authz.StageAuthenticate, []string{"deny", "error", "not reached", "not reached"}},
		{"authentication panic: the 500", authenticator{panic: true}, 500, authz.StageAuthenticate, []string{"deny", "error", "not reached", "not reached"}},
		{"valid token: the refusal", authenticator{caller: alice}, 400, authz.StageClassify, []string{"deny", "pass", "not reached", "not reached"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked := false
			p := &authz.Pipeline{Vault: vault, Classifier: classifier{deny: refusal}, Authenticator: tt.authn,
				Firewall: firewall{false}, Policy: policy{called: &asked, verdict: authz.AuthzVerdict{Allowed: true}}}
			d := p.Decide(t.Context(), &authz.Request{Method: "POST", Path: "/secrets/db", Headers: map[string]string{"x-http-method": "PUT"}})
			if d.Allowed || d.Denial == nil || d.Denial.Status != tt.status || d.Stage != tt.stage || asked || d.Network.Evaluated {
				t.Fatalf("allowed %v, denial %+v at %v; policy asked %v, firewall evaluated %v", d.Allowed, d.Denial, d.Stage, asked, d.Network.Evaluated)
			}
			if d.ClassifyDenial != refusal {
				t.Errorf("classify denial = %+v, want the classifier's refusal kept", d.ClassifyDenial)
			}
			if tt.status == 400 && (d.Denial != refusal || d.Caller != alice) {
				t.Errorf("denial %+v caller %v, want the refusal to the authenticated caller", d.Denial, d.Caller)
			}
			if r := d.Response(); r.Allowed || r.Status != tt.status || (header(r, "www-authenticate") != "") != (tt.status == 401) {
				t.Errorf("response %+v", r)
			}
			// A refused request is not placed: no network info on either answer.
			if got := header(d.Response(), "x-ms-keyvault-network-info"); got != "" {
				t.Errorf("network info %q on a refused classification", got)
			}
			steps := d.Explain()
			for i, want := range tt.explain {
				if steps[i].Outcome != want {
					t.Errorf("explain %v = %q (%s), want %q", steps[i].Stage, steps[i].Outcome, steps[i].Detail, want)
				}
			}
			if !strings.Contains(steps[0].Detail, "InvalidMethodOverride") {
				t.Errorf("classify step %q does not name the refusal", steps[0].Detail)
			}
		})
	}
}

// An anonymous operation (Key Vault's /healthstatus) is allowed without a
// token, a firewall verdict or a policy; any other needs all three.
func TestDecideAnonymousOperation(t *testing.T) {
	calls, asked := 0, false
	p := &authz.Pipeline{Vault: vault, Classifier: classifier{op: authz.Operation{Plane: authz.PlaneData, Name: "HealthStatus", Anonymous: true}},
		Authenticator: countingAuthenticator{&calls}, Firewall: firewall{false}, Policy: policy{called: &asked}}
	d := p.Decide(t.Context(), &authz.Request{Method: "GET", Path: "/healthstatus"})
	if !d.Allowed || d.Denial != nil || calls != 0 || asked {
		t.Fatalf("allowed %v (%+v); authenticator called %d times, policy asked %v", d.Allowed, d.Denial, calls, asked)
	}
	if r := d.Response(); !r.Allowed {
		t.Errorf("response %+v", r)
	}
}

func TestRequestHeader(t *testing.T) {
	r := &authz.Request{Headers: map[string]string{"authorization": "Bearer x", "x-ms-client-request-id": "id-1"}}
	if got := r.Header("authorization"); got != "Bearer x" {
		t.Errorf("authorization = %q", got)
	}
	if got := r.Header("Authorization"); got != "" {
		t.Errorf("names are lower-case: Authorization = %q", got)
	}
	if got := (&authz.Request{}).Header("authorization"); got != "" {
		t.Errorf("no headers: %q", got)
	}
}

// x-ms-keyvault-region is sent only when the vault has a location.
func TestResponseRegionHeader(t *testing.T) {
	deny := &authz.Denial{Status: 403, Code: "Forbidden", Inner: "AccessDenied", Message: "no"}
	with := &authz.Decision{ID: "d", Vault: &authz.Vault{Name: "v", Location: "westeurope"}, Request: &authz.Request{}, Denial: deny}
	if got := header(with.Response(), "x-ms-keyvault-region"); got != "westeurope" {
		t.Errorf("with a location: %q", got)
	}
	without := &authz.Decision{ID: "d", Vault: &authz.Vault{Name: "v"}, Request: &authz.Request{}, Denial: deny}
	for _, h := range without.Response().Headers {
		if h.Name == "x-ms-keyvault-region" {
			t.Errorf("without a location: x-ms-keyvault-region %q sent", h.Value)
		}
	}
	noVault := &authz.Decision{ID: "d", Request: &authz.Request{}, Denial: deny}
	if got := header(noVault.Response(), "x-ms-keyvault-region"); got != "" {
		t.Errorf("without a vault: %q", got)
	}
}
