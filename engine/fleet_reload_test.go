package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/config"
)

// reloadVaultDoc is vault i of TestFleetReloadsOneVault, with extra IP
// rules after its own.
func reloadVaultDoc(tenant string, i int, extra ...string) string {
	rules := fmt.Sprintf("[{value: 203.0.%d.0/24}", i)
	for _, r := range extra {
		rules += ", {value: " + r + "}"
	}
	return fmt.Sprintf(`vault: {name: vault-%02d, tenantId: %s, location: westeurope}
properties:
  networkAcls: {defaultAction: Deny, ipRules: %s]}
  accessPolicies:
    - {tenantId: %s, objectId: %s, permissions: {secrets: [get, list]}}
`, i, tenant, rules, tenant, authztest.DefaultObjectID)
}

// TestFleetReloadsOneVault: with 50 vaults in force, a change of one
// vault's file builds that vault alone; every other vault keeps its very
// runtime and pipeline, and a load with nothing changed builds nothing.
func TestFleetReloadsOneVault(t *testing.T) {
	const n = 50
	is := authztest.NewIssuer(t)
	keys := token.NewKeyStore(token.StoreOptions{HTTPClient: is.HTTPClient()})
	t.Cleanup(func() { keys.Close() })
	b := &Builder{Keys: keys}
	var builds atomic.Int64
	build := func(ctx context.Context, cfg *config.Config) (*Runtime, error) {
		builds.Add(1)
		return b.Build(ctx, cfg)
	}
	dir := t.TempDir()
	vd := filepath.Join(dir, "vaults.d")
	if err := os.MkdirAll(vd, 0o755); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "vaultwall.yaml")
	write(t, main, fmt.Sprintf(`vaults: {dir: vaults.d}
identity:
  issuers: [{issuer: %q, discovery: true}]
server: {grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0"}
`, is.Issuer()))
	file := func(i int) string { return filepath.Join(vd, fmt.Sprintf("vault-%02d.yaml", i)) }
	for i := range n {
		write(t, file(i), reloadVaultDoc(is.Tenant(), i))
	}

	var swaps atomic.Int64
	f := NewFleet(main, build, nil, func(*Set) { swaps.Add(1) })
	t.Cleanup(func() { f.Set().Close() })
	if err := f.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := builds.Load(); got != n {
		t.Fatalf("the first load built %d vaults, want %d", got, n)
	}
	before := f.Set()
	if len(before.Runtimes) != n || before.Vaults.Len() != n {
		t.Fatalf("%d runtimes, %d vaults in force, want %d", len(before.Runtimes), before.Vaults.Len(), n)
	}

	// Nothing changed: nothing is built, nothing published.
	builds.Store(0)
	if err := f.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := builds.Load(); got != 0 {
		t.Fatalf("a load with nothing changed built %d vaults", got)
	}
	if f.Set() != before {
		t.Fatal("a load with nothing changed published a new set")
	}

	// One vault's file changes: that vault alone is built again.
	const changed = 17
	write(t, file(changed), reloadVaultDoc(is.Tenant(), changed, "198.51.100.7"))
	swaps.Store(0)
	if err := f.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := builds.Load(); got != 1 {
		t.Fatalf("a change of one vault's file built %d vaults, want 1", got)
	}
	if got := swaps.Load(); got != 1 {
		t.Fatalf("%d sets published, want 1", got)
	}
	after := f.Set()
	if after == before || after.Generation <= before.Generation {
		t.Fatalf("no new set published (generation %d, was %d)", after.Generation, before.Generation)
	}
	if len(after.Runtimes) != n {
		t.Fatalf("%d runtimes in force after the reload, want %d", len(after.Runtimes), n)
	}
	for i := range n {
		name := fmt.Sprintf("vault-%02d", i)
		old, cur := before.Vault(name), after.Vault(name)
		if old == nil || cur == nil {
			t.Fatalf("%s is missing (before %v, after %v)", name, old != nil, cur != nil)
		}
		pipeline := after.Vaults.Named(name)
		if i == changed {
			if cur == old || cur.Generation == old.Generation || pipeline == old.Pipeline {
				t.Errorf("%s: its file changed but its runtime (generation %d) was kept", name, cur.Generation)
			}
			if pipeline != cur.Pipeline {
				t.Errorf("%s: the host table serves another pipeline than the new runtime's", name)
			}
			if got := len(cur.Config.Properties.NetworkAcls.IPRules); got != 2 {
				t.Errorf("%s: %d IP rules after the reload, want 2", name, got)
			}
			continue
		}
		if cur != old || cur.Generation != old.Generation || pipeline != old.Pipeline {
			t.Errorf("%s: its file did not change but it was rebuilt (generation %d, was %d)", name, cur.Generation, old.Generation)
		}
	}
}
