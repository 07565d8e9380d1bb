package shadow_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/envoy"
	"github.com/vaultwall/vaultwall/ops/opstest"
	"github.com/vaultwall/vaultwall/ops/shadow"
)

// TestShadowDecidesByTheSameVault: with several vaults, the candidate
// decides each request again with its own copy of the request's vault — a
// candidate rule that refuses contoso-vault alone differs on contoso's
// request, never on fabrikam's.
func TestShadowDecidesByTheSameVault(t *testing.T) {
	path, set, b := opstest.ExampleVaults(t)
	policyDir := t.TempDir()
	rule := "package vaultwall.operator\n\ndeny contains \"contoso is closed\" if input.vault.name == \"contoso-vault\"\n"
	if err := os.WriteFile(filepath.Join(policyDir, "close.rego"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	ev := shadow.New(t.Context(), config.Shadow{Config: path, PolicyDir: policyDir, QueueSize: 8, Workers: 1}, path, b,
		shadow.Options{OnDifference: col.add})
	defer ev.Close()
	if s := ev.Engine().Set(); s == nil || !s.Multi || len(s.Runtimes) != 2 {
		t.Fatalf("candidate: %+v", ev.Engine().Status())
	}
	ev.SetEnforced(set)
	raw, err := os.ReadFile("../../examples/requests/secret-get.json")
	if err != nil {
		t.Fatal(err)
	}
	srv := envoy.NewServer(nil, ev)
	srv.SetVaults(set.Vaults)
	check := func(host string) {
		var cr authv3.CheckRequest
		if err := protojson.Unmarshal([]byte(strings.ReplaceAll(string(raw), "contoso-vault.vault.azure.net", host)), &cr); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Check(t.Context(), &cr); err != nil {
			t.Fatal(err)
		}
	}
	// fabrikam's firewall refuses this address whatever the candidate's
	// policy says: the same answer, no difference.
	check("fabrikam-vault.vault.azure.net")
	check("contoso-vault.vault.azure.net")
	d := col.wait(t, 1)[0]
	if d.Kind != shadow.WouldDeny || d.Enforced.Vault.Name != "contoso-vault" || d.Candidate.Vault.Name != "contoso-vault" ||
		!strings.Contains(d.Candidate.Denial.Message, "contoso is closed") {
		t.Fatalf("difference %v on %s/%s: %+v", d.Kind, d.Enforced.Vault.Name, d.Candidate.Vault.Name, d.Candidate.Denial)
	}
	if st := ev.Status(); st.Evaluated != 2 {
		t.Errorf("evaluated %d requests, want both vaults'", st.Evaluated)
	}
}
