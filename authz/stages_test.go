package authz_test

import (
	"context"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
)

// countingAuthenticator records whether it was asked.
type countingAuthenticator struct{ calls *int }

func (a countingAuthenticator) Authenticate(context.Context, *authz.Request, *authz.Operation) (*authz.Caller, *authz.Denial, error) {
	*a.calls++
	return alice, nil, nil
}

// A classifier's refusal ends the pass: no token is read, no policy asked.
func TestDecideClassifierRefusalEndsThePass(t *testing.T) {
	calls, asked := 0, false
	deny := &authz.Denial{Status: 400, Code: "BadParameter", Message: "unknown operation"}
	p := &authz.Pipeline{Vault: vault, Classifier: classifier{deny: deny}, Authenticator: countingAuthenticator{&calls},
		Firewall: firewall{true}, Policy: policy{called: &asked, verdict: authz.AuthzVerdict{Allowed: true}}}
	d := p.Decide(t.Context(), &authz.Request{Method: "GET", Path: "/nope"})
	if d.Allowed || d.Denial != deny || d.Stage != authz.StageClassify || calls != 0 || asked {
		t.Fatalf("allowed %v, denial %+v at %v; authenticator called %d times, policy asked %v", d.Allowed, d.Denial, d.Stage, calls, asked)
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
