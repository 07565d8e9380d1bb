package controlplane_test

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/token"
	v1 "github.com/vaultwall/vaultwall/controlplane/api/vaultwall/v1"
)

// TestTokenCallerIsTheDataPlanes: the control plane reads a management
// token's claims with the data plane's mapping (authz/token: the token
// version's own application claim first — appid in v1, azp in 2.0 — the
// other as fallback; oid, tid, roles…). The refused call's audit record
// names the caller as token.CallerFromClaims does for the same claims.
func TestTokenCallerIsTheDataPlanes(t *testing.T) {
	r := newRig(t)
	in := r.start(t, "vault", r.config(fileStore(r, "state.json")))
	client := in.client(t, r, nil)
	const azp = "44444444-4444-4444-4444-444444444444"
	for _, tc := range []struct {
		name    string
		oid     string // one per case: each looks for its own audit record
		change  func(c map[string]any)
		wantApp string
	}{
		{"v1 reads appid before azp", "99999999-0000-0000-0000-000000000001",
			func(c map[string]any) { c["azp"] = azp }, authztest.DefaultAppID},
		{"v2 reads azp before appid", "99999999-0000-0000-0000-000000000002",
			func(c map[string]any) { c["ver"], c["azp"], c["azpacr"] = "2.0", azp, "1" }, azp},
		{"v2 without azp falls back to appid", "99999999-0000-0000-0000-000000000003",
			func(c map[string]any) { c["ver"] = "2.0" }, authztest.DefaultAppID},
		{"v1 without appid falls back to azp", "99999999-0000-0000-0000-000000000004",
			func(c map[string]any) { delete(c, "appid"); c["azp"] = azp }, azp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := r.is.Claims()
			c["aud"] = adminAudience
			c["oid"] = tc.oid
			tc.change(c)
			// No role: refused by the policy, and audited with the caller.
			_, err := client.GetVault(bearer(t.Context(), r.is.Mint(c)), &v1.GetVaultRequest{})
			if codeOf(err) != codes.PermissionDenied {
				t.Fatalf("code %v (%v), want PermissionDenied", codeOf(err), err)
			}
			want := token.CallerFromClaims(c)
			if want.ApplicationID != tc.wantApp {
				t.Fatalf("the data plane's mapping reads application %q, want %q", want.ApplicationID, tc.wantApp)
			}
			quoted, _ := json.Marshal(want.String())
			if !strings.Contains(in.log.String(), `"caller":`+string(quoted)) {
				t.Errorf("no refused call audited with caller %s; log:\n%s", quoted, in.log.String())
			}
		})
	}
}
