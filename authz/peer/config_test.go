package peer_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/peer"
	"github.com/vaultwall/vaultwall/config"
)

// TestNewFromConfigFile runs a real configuration file through config.Load
// and New, so the YAML shape and the field paths meet.
func TestNewFromConfigFile(t *testing.T) {
	ca := authztest.NewTestCA(t)
	yaml := `
vault: {name: contoso-vault, tenantId: 00000000-0000-0000-0000-000000000001, location: westeurope}
trustedServices:
  caFile: ` + ca.WriteBundle() + `
  services:
    - name: Backup
      principals: ["spiffe://trusted.example/azure-backup"]
    - name: AppService
      principals: ["dns:appservice.trusted.example"]
      scope: {certificates: [get], secrets: [list]}
`
	path := filepath.Join(t.TempDir(), "vault.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = peer.New(cfg.TrustedServices)
	if err == nil {
		t.Fatal("scope secrets: [list] for AppService was accepted")
	}
	err = cfg.Annotate(err)
	if !errors.Is(err, peer.ErrWidens) || !strings.Contains(err.Error(), "vault.yaml:10: trustedServices.services[1].scope.secrets[0]") {
		t.Errorf("annotated error = %v", err)
	}
}
