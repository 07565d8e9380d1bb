package peer

import (
	"context"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
)

type fixedOp authz.Operation

func (o fixedOp) Classify(*authz.Request) (authz.Operation, *authz.Denial) {
	return authz.Operation(o), nil
}

type anyCaller struct{}

func (anyCaller) Authenticate(context.Context, *authz.Request, *authz.Operation) (*authz.Caller, *authz.Denial, error) {
	return &authz.Caller{ApplicationID: "262044b1-e2ce-469f-a196-69ab7ada62d3"}, nil, nil
}

// bypassOnly admits exactly the trusted services in scope, as the firewall
// does with defaultAction Deny and bypass AzureServices.
type bypassOnly struct{}

func (bypassOnly) Connect(*authz.Request) authz.Connection { return authz.Connection{} }
func (bypassOnly) Evaluate(d *authz.Decision) authz.NetworkVerdict {
	v := d.Network
	v.Allowed = v.TrustedService != "" && v.TrustedInScope
	if v.Allowed {
		v.AuthType = authz.AddrTrustedService
	} else {
		v.Code = "ForbiddenByFirewall"
	}
	return v
}

type allowAll struct{}

func (allowAll) Authorize(context.Context, *authz.Decision) (authz.AuthzVerdict, error) {
	return authz.AuthzVerdict{Allowed: true}, nil
}

// TestInPipeline plugs the Matcher into the real pipeline: the firewall
// sees the service and its scope in the decision.
func TestInPipeline(t *testing.T) {
	m := mustMatcher(t, TrustedServices{Services: []TrustedService{
		{Name: "Backup", Principals: []string{"spiffe://trusted.example/azure-backup"},
			ApplicationIDs: []string{"262044b1-e2ce-469f-a196-69ab7ada62d3"}},
	}})
	tests := []struct {
		op        authz.Operation
		principal string
		allowed   bool
		service   string
	}{
		{*opKeyBackup, "spiffe://trusted.example/azure-backup", true, "Backup"},
		{*opKeyPurge, "spiffe://trusted.example/azure-backup", false, "Backup"},
		{*opKeyBackup, "spiffe://trusted.example/azure-backup-evil", false, ""},
	}
	for _, tt := range tests {
		p := &authz.Pipeline{Classifier: fixedOp(tt.op), Authenticator: anyCaller{}, Trusted: m, Firewall: bypassOnly{}, Policy: allowAll{}}
		d := p.Decide(t.Context(), &authz.Request{Principal: tt.principal})
		if d.Allowed != tt.allowed || d.Network.TrustedService != tt.service {
			t.Errorf("%s %s: allowed=%v service=%q, want %v %q (%+v)", tt.principal, tt.op.Permission,
				d.Allowed, d.Network.TrustedService, tt.allowed, tt.service, d.Denial)
		}
	}
}
