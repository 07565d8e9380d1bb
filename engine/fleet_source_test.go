package engine

import (
	"strings"
	"sync"
	"testing"

	"github.com/vaultwall/vaultwall/authz/authztest"
)

// testSource is a VaultSource whose documents the test sets.
type testSource struct {
	mu   sync.Mutex
	docs []StoredVault
}

func (s *testSource) StoredVaults() []StoredVault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]StoredVault(nil), s.docs...)
}

func (s *testSource) set(docs ...StoredVault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs = docs
}

// TestFleetServesStoredVaults: a vault of the control-plane store is
// served beside the directory's, by its host, reloaded when its document
// changes and removed when it is deleted; one claiming a name or hostname
// a vault in force holds is refused (naming the stored vault and the
// field), and /readyz lists each vault with its source.
func TestFleetServesStoredVaults(t *testing.T) {
	is := authztest.NewIssuer(t)
	r := newFleetRig(t, is, map[string]string{
		"contoso.yaml": fleetVault(is, "contoso-vault", "203.0.113.0/24", ""),
	})
	src := &testSource{}
	r.f.SetVaultSource(src)
	src.set(StoredVault{Name: "fabrikam-vault", Data: []byte(fleetVault(is, "fabrikam-vault", "198.51.100.0/24", "")), Version: "1"})
	if err := r.f.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st, body := r.decide("fabrikam-vault.vault.azure.net", "198.51.100.10"); st != 200 {
		t.Fatalf("the stored vault refuses its network: %d %s", st, body)
	}
	if st, _ := r.decide("fabrikam-vault.vault.azure.net", "203.0.113.10"); st != 403 {
		t.Fatalf("the stored vault lets the file vault's network in: %d", st)
	}
	if st, _ := r.decide("contoso-vault.vault.azure.net", "203.0.113.10"); st != 200 {
		t.Fatalf("the file vault: %d", st)
	}
	vs := r.vaultStatus("controlplane:fabrikam-vault")
	if vs.Source != "control-plane store" || vs.Vault != "fabrikam-vault" || r.vaultStatus("contoso.yaml").Source != "file" {
		t.Fatalf("status: %+v", r.f.Status())
	}

	// A changed document rebuilds it.
	src.set(StoredVault{Name: "fabrikam-vault", Data: []byte(fleetVault(is, "fabrikam-vault", "192.0.2.0/24", "")), Version: "2"})
	if err := r.f.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.decide("fabrikam-vault.vault.azure.net", "192.0.2.10"); st != 200 {
		t.Fatalf("the changed document is not in force: %d", st)
	}

	// Claims on what the vaults in force hold are refused.
	src.set(StoredVault{Name: "fabrikam-vault", Data: []byte(fleetVault(is, "fabrikam-vault", "192.0.2.0/24", "")), Version: "2"},
		StoredVault{Name: "thief-vault", Data: []byte(fleetVault(is, "thief-vault", "0.0.0.0/0", ", hostnames: [contoso-vault.vault.azure.net]")), Version: "3"},
		StoredVault{Name: "contoso-vault", Data: []byte(fleetVault(is, "contoso-vault", "0.0.0.0/0", ", hostnames: [x.example]")), Version: "4"})
	err := r.f.Load(t.Context())
	for _, want := range []string{"controlplane:thief-vault", "vault.hostnames", "controlplane:contoso-vault", "vault.name"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err lacks %q: %v", want, err)
		}
	}
	if st, _ := r.decide("contoso-vault.vault.azure.net", "192.0.2.10"); st != 403 {
		t.Errorf("the claimed host is decided by another vault: %d", st)
	}

	// Deleted: its host names no vault.
	src.set()
	if err := r.f.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st, body := r.decide("fabrikam-vault.vault.azure.net", "192.0.2.10"); st != 400 || !strings.Contains(body, "VaultNotFound") {
		t.Errorf("a deleted vault still answers: %d %s", st, body)
	}
	if len(r.f.Set().Runtimes) != 1 || len(r.f.Status().Vaults) != 1 {
		t.Errorf("after the delete: %+v", r.f.Status())
	}
}
