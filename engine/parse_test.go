package engine

import (
	"path/filepath"
	"strings"
	"testing"
)

// The watcher's polls parse the configuration again only when its bytes
// changed.
func TestParseOnlyChangedConfigurations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.yaml")
	write(t, path, goodConfig)
	e := New(path, stubBuild, nil)
	first := e.parse()
	if first == nil || first.Vault.Name != "contoso-vault" {
		t.Fatalf("first parse: %+v", first)
	}
	if again := e.parse(); again != first {
		t.Error("unchanged bytes parsed again")
	}
	write(t, path, strings.Replace(goodConfig, "westeurope", "northeurope", 1))
	changed := e.parse()
	if changed == first || changed.Vault.Location != "northeurope" {
		t.Errorf("a change was not parsed: %+v", changed)
	}
	write(t, path, "vault: [")
	if bad := e.parse(); bad != nil {
		t.Errorf("a broken file parsed: %+v", bad)
	}
}
