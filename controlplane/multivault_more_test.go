package controlplane_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	v1 "github.com/vaultwall/vaultwall/controlplane/api/vaultwall/v1"
)

// frozenBetaPolicy is a controlPlane.policyDir policy deciding per vault:
// no write to beta-vault, by anyone; otherwise the shipped rules' core
// (Vault.Admin writes, anyone with a token reads).
const frozenBetaPolicy = `package vaultwall.control

import rego.v1

decision := {"allow": false, "reason": "beta-vault is frozen"} if {
	input.vault == "beta-vault"
	not input.readOnly
} else := {"allow": true, "reason": "admin"} if {
	"Vault.Admin" in input.token.roles
} else := {"allow": true, "reason": "read"} if {
	input.readOnly
	input.token
} else := {"allow": false, "reason": "no"}
`

// TestControlPolicyPerVault: a controlPlane.policyDir rule on input.vault
// refuses writes to one vault (PERMISSION_DENIED with the policy's
// reason, nothing stored, that vault's decisions unchanged) while writes
// to the other vault pass and apply. The policy sees the vault as
// vault.name spells it, whatever case the request used, so sending the
// name in another case does not get round the rule.
func TestControlPolicyPerVault(t *testing.T) {
	r := newRig(t)
	pdir := filepath.Join(r.dir, "cp-policy")
	if err := os.MkdirAll(pdir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pdir, "control.rego"), []byte(frozenBetaPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := r.multiConfig(t, fileStore(r, "state.json")) + fmt.Sprintf("  policyDir: %q\n", pdir)
	in := r.startHost(t, "vaultwall", cfg, hostA)
	cl := in.client(t, r, nil)
	ctx := bearer(t.Context(), r.adminToken("Vault.Admin"))
	a, b := in.on(hostA), in.on(hostB)

	va, vb := getVault(t, ctx, cl, vaultA), getVault(t, ctx, cl, vaultB) // reads of either vault pass

	// beta-vault: refused by the rule, in any spelling of its name.
	for _, name := range []string{vaultB, strings.ToUpper(vaultB), "Beta-Vault"} {
		_, err := allowIP(ctx, cl, name, "*", "198.51.100.0/24", vb.GetProperties().GetNetworkAcls().GetIpRules())
		if codeOf(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "beta-vault is frozen") {
			t.Fatalf("a write to %s: %v, want PERMISSION_DENIED by the per-vault rule", name, err)
		}
	}
	if got := getVault(t, ctx, cl, vaultB); got.GetEtag() != vb.GetEtag() {
		t.Fatalf("%s: etag %s after refused writes (was %s)", vaultB, got.GetEtag(), vb.GetEtag())
	}
	if ok, _ := b.check(t, r.is.MintValid(), "198.51.100.7"); ok {
		t.Fatalf("%s: 198.51.100.7 passes: a refused write was applied", vaultB)
	}
	if _, err := os.Stat(filepath.Join(r.dir, "state."+vaultB+".json")); err == nil {
		t.Errorf("%s: a state file was written for refused writes", vaultB)
	}

	// alpha-vault: the same write by the same caller passes and applies.
	na, err := allowIP(ctx, cl, vaultA, va.GetEtag(), "198.51.100.0/24", va.GetProperties().GetNetworkAcls().GetIpRules())
	if err != nil {
		t.Fatalf("a write to %s: %v, want it applied", vaultA, err)
	}
	if na.GetEtag() == va.GetEtag() {
		t.Fatalf("%s: etag unchanged by an applied write", vaultA)
	}
	if ok, body := a.check(t, r.is.MintValid(), "198.51.100.7"); !ok {
		t.Fatalf("%s: 198.51.100.7 refused after the write: %s", vaultA, body)
	}

	// The audit names the refusal with the policy's reason.
	var audited bool
	for _, line := range strings.Split(in.log.String(), "\n") {
		if strings.Contains(line, `"msg":"control-plane change"`) && strings.Contains(line, `"outcome":"denied"`) &&
			strings.Contains(line, "beta-vault is frozen") {
			audited = true
		}
	}
	if !audited {
		t.Error("the refused write to beta-vault left no audit record with the policy's reason")
	}
}

// explainGet is the CheckRequest of a secret read from addr to host.
func explainGet(host, addr, tok string) string {
	return fmt.Sprintf(`{"attributes":{"source":{"address":{"socketAddress":{"address":%q,"portValue":1}}},
 "request":{"http":{"method":"GET","host":%q,"path":"/secrets/db?api-version=7.5","headers":{":authority":%q,":path":"/secrets/db?api-version=7.5",":method":"GET","authorization":"Bearer %s"}}}}}`,
		addr, host, host, tok)
}

// TestExplainSeveralVaults: with vaults.dir, Explain decides as Check does:
// the vault is the one the CheckRequest's host selects through the set's
// host table; the request's vault field is a pin, as Envoy's
// context_extensions {vault: …} — naming another vault than the host's is
// the 400 VaultNotFound decision; an unknown host is the same 400, decided
// before any stage; a pin naming no vault served is NOT_FOUND.
func TestExplainSeveralVaults(t *testing.T) {
	r := newRig(t)
	in := r.startHost(t, "vaultwall", r.multiConfig(t, fileStore(r, "state.json")), hostA)
	cl := in.client(t, r, nil)
	ctx := bearer(t.Context(), r.adminToken("Vault.Admin"))
	tok := r.is.MintValid()

	// Make the vaults decide differently: alpha admits 198.51.100.0/24.
	va := getVault(t, ctx, cl, vaultA)
	if _, err := allowIP(ctx, cl, vaultA, va.GetEtag(), "198.51.100.0/24", va.GetProperties().GetNetworkAcls().GetIpRules()); err != nil {
		t.Fatal(err)
	}
	explain := func(vault, host string) *v1.ExplainResponse {
		t.Helper()
		got, err := cl.Explain(ctx, &v1.ExplainRequest{Vault: vault,
			CheckRequest: &v1.ExplainRequest_CheckRequestJson{CheckRequestJson: explainGet(host, "198.51.100.7", tok)}})
		if err != nil {
			t.Fatalf("Explain vault=%q host %s: %v", vault, host, err)
		}
		return got
	}

	// By host: alpha allows, beta's firewall refuses naming beta.
	if got := explain("", hostA); !got.GetAllowed() {
		t.Fatalf("host %s: %v, want allowed (its rule)", hostA, got)
	}
	if got := explain("", strings.ToUpper(hostB)+":443"); got.GetAllowed() || got.GetErrorCode() != "ForbiddenByFirewall" ||
		!strings.Contains(got.GetMessage(), "Vault: "+vaultB+";") {
		t.Fatalf("host %s: %v, want beta's 403 ForbiddenByFirewall", hostB, got)
	}
	// A pin agreeing with the host (any case) changes nothing.
	if got := explain(strings.ToUpper(vaultA), hostA); !got.GetAllowed() {
		t.Fatalf("host %s pinned to its own vault: %v, want allowed", hostA, got)
	}
	// A pin naming the other vault: the 400, never the other vault's rules
	// (beta's would refuse on the firewall, alpha's would allow).
	for _, tc := range []struct{ vault, host string }{{vaultB, hostA}, {vaultA, hostB}} {
		got := explain(tc.vault, tc.host)
		if got.GetAllowed() || got.GetHttpStatus() != 400 || got.GetErrorCode() != "VaultNotFound" || got.GetDecidedBy() != "vault" ||
			!strings.Contains(got.GetMessage(), "pinned to another vault") {
			t.Fatalf("host %s pinned to %s: %v, want the 400 VaultNotFound decision", tc.host, tc.vault, got)
		}
	}
	// An unknown host: the 400, no stage reached.
	got := explain("", "gamma-vault.vault.azure.net")
	if got.GetAllowed() || got.GetHttpStatus() != 400 || got.GetErrorCode() != "VaultNotFound" || got.GetDecidedBy() != "vault" ||
		!strings.Contains(got.GetMessage(), "gamma-vault.vault.azure.net") {
		t.Fatalf("unknown host: %v, want the 400 VaultNotFound decision", got)
	}
	for _, st := range got.GetSteps() {
		if st.GetStage() != "vault" && st.GetOutcome() != "not reached" {
			t.Fatalf("unknown host: stage %s %s, want not reached", st.GetStage(), st.GetOutcome())
		}
	}
	// A pin naming no vault served: NOT_FOUND, listing the vaults.
	_, err := cl.Explain(ctx, &v1.ExplainRequest{Vault: "gamma-vault",
		CheckRequest: &v1.ExplainRequest_CheckRequestJson{CheckRequestJson: explainGet(hostA, "198.51.100.7", tok)}})
	if codeOf(err) != codes.NotFound || !strings.Contains(err.Error(), vaultA) || !strings.Contains(err.Error(), vaultB) {
		t.Fatalf("Explain pinned to an unknown vault: %v, want NOT_FOUND listing the vaults", err)
	}
}
