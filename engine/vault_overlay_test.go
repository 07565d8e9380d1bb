package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vaultwall/vaultwall/config"
)

// stateOverlays is a VaultOverlays whose state per vault is the vault's
// location, laid over the vault's composed configuration.
type stateOverlays struct {
	mu       sync.Mutex
	location map[string]string // by vault name
	version  map[string]int
	asked    map[string]int
}

func (s *stateOverlays) set(vault, location string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.location[vault] = location
	s.version[vault]++
}

func (s *stateOverlays) OverlayFor(base *config.Config, parse ParseFunc) Overlay {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked[base.Vault.Name]++
	return &stateOverlay{s: s, vault: base.Vault.Name, parse: parse}
}

type stateOverlay struct {
	s     *stateOverlays
	vault string
	parse ParseFunc
}

func (o *stateOverlay) Parse(path string, data []byte) (*config.Config, error) {
	cfg, err := o.parse(path, data) // the vault's file onto the main file
	if err != nil {
		return nil, err
	}
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	if l := o.s.location[o.vault]; l != "" {
		cfg.Vault.Location = l
	}
	return cfg, nil
}

func (o *stateOverlay) Version() string {
	o.s.mu.Lock()
	defer o.s.mu.Unlock()
	return fmt.Sprintf("%s@%d", o.vault, o.s.version[o.vault])
}

// TestFleetVaultOverlays: each vault of vaults.dir gets the overlay of the
// vault its file names, laid over its composed configuration (the main
// file's issuers are there); a change of one vault's overlay rebuilds that
// vault alone.
func TestFleetVaultOverlays(t *testing.T) {
	dir := t.TempDir()
	vd := filepath.Join(dir, "vaults.d")
	if err := os.Mkdir(vd, 0o755); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "vaultwall.yaml")
	write(t, main, "vaults: {dir: vaults.d}\nidentity:\n  issuers: [{issuer: \"https://sts.example.test/t/\", jwksFile: jwks.json}]\n")
	write(t, filepath.Join(dir, "jwks.json"), `{"keys": []}`)
	for _, n := range []string{"alpha-vault", "beta-vault"} {
		write(t, filepath.Join(vd, n+".yaml"), "vault: {name: "+n+", tenantId: 00000000-0000-0000-0000-000000000001, location: westeurope}\n")
	}
	ov := &stateOverlays{location: map[string]string{}, version: map[string]int{}, asked: map[string]int{}}
	f := NewFleet(main, stubBuild, nil)
	f.SetVaultOverlays(ov)
	if err := f.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	set := f.Set()
	a0, b0 := set.Vault("alpha-vault"), set.Vault("beta-vault")
	if a0 == nil || b0 == nil || ov.asked["alpha-vault"] == 0 || ov.asked["beta-vault"] == 0 {
		t.Fatalf("vaults %v %v, overlays asked %v", a0, b0, ov.asked)
	}
	if len(a0.Config.Identity.Issuers) != 1 {
		t.Fatalf("the overlay did not parse onto the main file: issuers %v", a0.Config.Identity.Issuers)
	}

	ov.set("alpha-vault", "northeurope")
	if err := f.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	set = f.Set()
	a1, b1 := set.Vault("alpha-vault"), set.Vault("beta-vault")
	if a1 == a0 || a1.Config.Vault.Location != "northeurope" {
		t.Fatalf("alpha-vault not rebuilt with its state: %+v", a1.Config.Vault)
	}
	if b1 != b0 || b1.Config.Vault.Location != "westeurope" {
		t.Fatalf("beta-vault rebuilt (or changed) by alpha-vault's state: %+v", b1.Config.Vault)
	}
	// Nothing changed: nothing is rebuilt.
	if err := f.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := f.Set(); s.Vault("alpha-vault") != a1 || s.Vault("beta-vault") != b1 {
		t.Fatal("a load with no change rebuilt a vault")
	}
}
