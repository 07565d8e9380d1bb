package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/controlplane"
	"github.com/vaultwall/vaultwall/controlplane/store"
)

// writeVaultsDir writes vaults.d/<name>.yaml under dir for each name: a
// vault with a firewall (line 3) and access policies (line 4).
func writeVaultsDir(t *testing.T, dir, tenant, objectID string, names ...string) string {
	t.Helper()
	vd := filepath.Join(dir, "vaults.d")
	if err := os.MkdirAll(vd, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		doc := "vault: {name: " + name + ", tenantId: " + tenant + ", location: westeurope}\n" +
			"properties:\n" +
			"  networkAcls: {defaultAction: Deny, bypass: None, ipRules: [{value: 203.0.113.0/24}]}\n" +
			"  accessPolicies: [{tenantId: " + tenant + ", objectId: " + objectID + ", permissions: {secrets: [get]}}]\n"
		if err := os.WriteFile(filepath.Join(vd, name+".yaml"), []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return vd
}

// storeState writes st as the stored state at path (revision 0 → 1).
func storeState(t *testing.T, path string, st store.State) {
	t.Helper()
	fs, err := store.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	snap, err := fs.Get(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.CompareAndSwap(t.Context(), snap.Revision, st); err != nil {
		t.Fatal(err)
	}
}

// config validate of a vaults.dir configuration with the control plane's
// file store lays each vault's stored state (vaultwall-state.<vault>.json
// beside store.path) over that vault's composed configuration: it warns
// about the vault's file properties that state overrides, naming the
// vault's file and line and the vault's state file, and refuses a state
// that does not merge, naming the vault. With etcd it says it cannot read
// the states offline.
func TestConfigValidateVaultsStoredState(t *testing.T) {
	dir := t.TempDir()
	const tenant = "00000000-0000-0000-0000-000000000001"
	vd := writeVaultsDir(t, dir, tenant, "11111111-1111-1111-1111-111111111111", "alpha-vault", "beta-vault")
	mainCfg := `vaults: {dir: vaults.d}
controlPlane:
  enabled: true
  listenAddr: 127.0.0.1:0
  audiences: [api://vaultwall-admin]
  store: {type: file, path: state.json}
`
	path := filepath.Join(dir, "vaultwall.yaml")
	if err := os.WriteFile(path, []byte(mainCfg), 0o600); err != nil {
		t.Fatal(err)
	}
	alphaFile, betaFile := filepath.Join(vd, "alpha-vault.yaml"), filepath.Join(vd, "beta-vault.yaml")
	alphaState := filepath.Join(dir, "state.alpha-vault.json")
	betaState := filepath.Join(dir, "state.beta-vault.json")
	if got := controlplane.VaultStateFile(filepath.Join(dir, "state.json"), "Beta-Vault"); got != betaState {
		t.Fatalf("VaultStateFile = %s, want %s", got, betaState)
	}

	// No state yet: valid, nothing overridden.
	out, err := run(t, "config", "validate", path)
	if err != nil || strings.Contains(out, "warning:") || !strings.Contains(out, "valid, 2 vaults") {
		t.Fatalf("validate with no stored state: %v\n%s", err, out)
	}

	// beta-vault's state overrides its firewall: the warning names
	// beta's file and line and beta's state file; alpha is not named.
	storeState(t, betaState, store.State{NetworkAcls: &config.NetworkAcls{DefaultAction: "Deny", Bypass: "None",
		IPRules: []config.IPRule{{Value: "198.51.100.0/24"}}}})
	out, err = run(t, "config", "validate", path)
	if err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	want := "warning: " + betaFile + ":3: properties.networkAcls: the control plane's stored value (" + betaState + ") is the one served"
	if !strings.Contains(out, want) || strings.Count(out, "warning:") != 1 {
		t.Errorf("output lacks %q (and only it):\n%s", want, out)
	}
	// A stored value equal to the file's overrides nothing visible.
	storeState(t, alphaState, store.State{NetworkAcls: &config.NetworkAcls{DefaultAction: "Deny", Bypass: "None",
		IPRules: []config.IPRule{{Value: "203.0.113.0/24"}}}})
	if out, err = run(t, "config", "validate", path); err != nil || strings.Contains(out, "warning: "+alphaFile) || strings.Count(out, "warning:") != 1 {
		t.Errorf("alpha's state equal to its file: %v\n%s", err, out)
	}

	// alpha-vault's state does not merge (an IP rule its own config
	// refuses): an error naming the vault, its state file and the field.
	storeState(t, alphaState, store.State{NetworkAcls: &config.NetworkAcls{DefaultAction: "Deny",
		IPRules: []config.IPRule{{Value: "203.0.113.0/24"}, {Value: "not-an-address"}}}})
	_, err = run(t, "config", "validate", path)
	if err == nil || !strings.Contains(err.Error(), "vault alpha-vault: stored state "+alphaState) ||
		!strings.Contains(err.Error(), "properties.networkAcls.ipRules[1].value") || strings.Contains(err.Error(), "beta-vault") {
		t.Fatalf("validate with alpha's state unmergeable: %v, want an error naming alpha-vault and the field", err)
	}

	// etcd: the note, once; nothing is read.
	etcd := strings.Replace(mainCfg, "{type: file, path: state.json}", "{type: etcd, endpoints: [127.0.0.1:1]}", 1)
	if err := os.WriteFile(path, []byte(etcd), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "config", "validate", path)
	if err != nil || strings.Count(out, "validate cannot read them offline") != 1 || !strings.Contains(out, "/vaultwall/<vault>/state") {
		t.Errorf("validate with etcd: %v\n%s", err, out)
	}
}
