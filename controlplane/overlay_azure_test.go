package controlplane

import (
	"os"
	"testing"

	"github.com/vaultwall/vaultwall/controlplane/store"
)

// The stored state lays over an Azure document's properties as over a
// vaultwall file's: an ARM template has no top-level properties, and a
// state set there would otherwise be dropped with the template's other
// ignored keys.
func TestMergeOverAzureDocuments(t *testing.T) {
	for _, f := range []string{"group-export.json", "keyvault-show.json"} {
		data, err := os.ReadFile("../config/testdata/azure/" + f)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := Merge(f, data, store.State{PublicNetworkAccess: "Disabled"})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !cfg.Properties.PublicAccessDisabled() {
			t.Errorf("%s: the stored publicNetworkAccess Disabled was not applied", f)
		}
		if cfg.Vault.Name != "contoso-vault" || len(cfg.Properties.AccessPolicies) != 2 {
			t.Errorf("%s: the document's own properties were lost: %+v", f, cfg.Vault)
		}
	}
}
