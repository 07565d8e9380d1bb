package engine

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/vaultwall/vaultwall/authz/config"
)

// TestReloadRebuildsUnchangedInputs: Reload (SIGHUP) builds a new
// generation from unchanged inputs, where Load does nothing; the forced
// rebuild is used once, so the next Load of unchanged inputs is again a
// no-op.
func TestReloadRebuildsUnchangedInputs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.yaml")
	write(t, path, goodConfig)
	builds := 0
	e := New(path, func(ctx context.Context, cfg *config.Config) (*Runtime, error) { builds++; return stubBuild(ctx, cfg) }, nil)
	if err := e.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	first := e.Current()
	if err := e.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	second := e.Current()
	if second == first || second.Generation != 2 || builds != 2 {
		t.Fatalf("Reload of unchanged inputs: generation %d, builds %d (want a new generation 2, 2 builds)", second.Generation, builds)
	}
	if err := e.Load(t.Context()); err != nil || e.Current() != second || builds != 2 {
		t.Fatalf("Load after Reload rebuilt unchanged inputs: generation %d, builds %d, err %v", e.Current().Generation, builds, err)
	}
}
