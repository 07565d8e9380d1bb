package engine

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/config"
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

// TestReloadRetriesARefusedConfiguration: a configuration the build refused
// is not rebuilt by Load while it is unchanged, but Reload tries it again.
func TestReloadRetriesARefusedConfiguration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.yaml")
	write(t, path, goodConfig)
	builds := 0
	e := New(path, func(ctx context.Context, cfg *config.Config) (*Runtime, error) { builds++; return stubBuild(ctx, cfg) }, nil)
	if err := e.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	write(t, path, strings.Replace(goodConfig, "westeurope", "explode", 1))
	if err := e.Load(t.Context()); err == nil {
		t.Fatal("a refused build was accepted")
	}
	if err := e.Load(t.Context()); err == nil || builds != 2 {
		t.Fatalf("Load of an unchanged refused configuration: %v, %d builds (want the error, no rebuild)", err, builds)
	}
	if err := e.Reload(t.Context()); err == nil || builds != 3 {
		t.Fatalf("Reload of a refused configuration: %v, %d builds (want the error after a rebuild)", err, builds)
	}
	if cur := e.Current(); cur.Generation != 1 {
		t.Errorf("generation %d in force, want 1", cur.Generation)
	}
}
