package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/config"
)

const mainDoc = `vaults:
  dir: vaults.d
identity:
  issuers:
    - issuer: https://sts.example.test/00000000-0000-0000-0000-000000000001/
      jwksFile: keys/jwks.json
      audiences: [https://vault.azure.net]
trustedServices:
  services:
    - name: Backup
      principals: ["spiffe://trusted.example/azure-backup"]
policy:
  dir: policy
server:
  grpcAddr: 127.0.0.1:0
`

const vaultDoc = `vault:
  name: fabrikam-vault
  tenantId: 00000000-0000-0000-0000-000000000001
  location: northeurope
  hostnames: [fabrikam-vault.vault.azure.net, Fabrikam.Private.Example]
properties:
  networkAcls:
    defaultAction: Deny
    ipRules:
      - value: 198.51.100.0/24
`

func TestParseVaultComposesWithTheMainFile(t *testing.T) {
	dir := t.TempDir()
	mainPath := filepath.Join(dir, "vaultwall.yaml")
	vaultPath := filepath.Join(dir, "vaults.d", "fabrikam.yaml")
	c, err := config.ParseVault(mainPath, []byte(mainDoc), vaultPath, []byte(vaultDoc+"policy:\n  dir: own-policy\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Vault.Name != "fabrikam-vault" || c.Path != vaultPath || c.Vaults.Dir != "" {
		t.Errorf("vault %q path %q vaults %+v", c.Vault.Name, c.Path, c.Vaults)
	}
	// The main file's paths stay relative to it; the vault's own, to its file.
	if got := c.Identity.Issuers[0].JWKSFile; got != filepath.Join(dir, "keys/jwks.json") {
		t.Errorf("jwksFile = %q", got)
	}
	if got := c.Policy.Dir; got != filepath.Join(dir, "vaults.d", "own-policy") {
		t.Errorf("policy.dir = %q", got)
	}
	if len(c.TrustedServices.Services) != 1 || c.Server.GRPCAddr != "127.0.0.1:0" {
		t.Errorf("process-wide sections lost: %+v %+v", c.TrustedServices, c.Server)
	}
	if got := c.Hostnames(true); len(got) != 2 || got[1] != "Fabrikam.Private.Example" {
		t.Errorf("hostnames = %v", got)
	}
	// Without a policy of its own the vault takes the main file's.
	c2, err := config.ParseVault(mainPath, []byte(mainDoc), vaultPath, []byte(vaultDoc))
	if err != nil {
		t.Fatal(err)
	}
	if c2.Policy.Dir != filepath.Join(dir, "policy") {
		t.Errorf("inherited policy.dir = %q", c2.Policy.Dir)
	}
	// Two parses share nothing mutable.
	c2.Identity.Issuers[0].JWKSFile = "changed"
	if c.Identity.Issuers[0].JWKSFile == "changed" {
		t.Error("two vaults share the main file's issuers")
	}
}

func TestDefaultHostnameIsTheVaultsAzureName(t *testing.T) {
	c, err := config.ParseVault("m.yaml", []byte(mainDoc), "v.yaml", []byte(strings.Replace(vaultDoc,
		"  hostnames: [fabrikam-vault.vault.azure.net, Fabrikam.Private.Example]\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Hostnames(true); len(got) != 1 || got[0] != "fabrikam-vault.vault.azure.net" {
		t.Errorf("multi-vault default = %v", got)
	}
	if got := c.Hostnames(false); len(got) != 0 {
		t.Errorf("single-vault default = %v (every host)", got)
	}
}

func TestParseVaultRefusesProcessWideSections(t *testing.T) {
	_, err := config.ParseVault("m.yaml", []byte(mainDoc), "vaults.d/v.yaml", []byte(vaultDoc+"server:\n  grpcAddr: :1\nidentity: {}\n"))
	if err == nil {
		t.Fatal("a vault's file set server and identity")
	}
	for _, want := range []string{"vaults.d/v.yaml:11: server:", "vaults.d/v.yaml:13: identity:", "belongs in the main file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if !errors.Is(err, config.ErrConflict) {
		t.Errorf("not ErrConflict: %v", err)
	}
}

func TestVaultErrorsNameTheVaultsFile(t *testing.T) {
	bad := strings.Replace(vaultDoc, "198.51.100.0/24", "198.51.100.0/33", 1)
	_, err := config.ParseVault("m.yaml", []byte(mainDoc), "vaults.d/v.yaml", []byte(bad))
	if err == nil || !strings.Contains(err.Error(), "vaults.d/v.yaml:10: properties.networkAcls.ipRules[0].value") {
		t.Errorf("err = %v", err)
	}
	// The main file's own errors are the main file's.
	_, err = config.ParseVault("m.yaml", []byte(mainDoc+"log: {level: loud}\n"), "vaults.d/v.yaml", []byte(vaultDoc))
	if err == nil || !strings.Contains(err.Error(), "m.yaml") {
		t.Errorf("main error = %v", err)
	}
}

func TestMainFileOfVaultsDirHoldsNoVault(t *testing.T) {
	if _, err := config.Parse("m.yaml", []byte(mainDoc)); err != nil {
		t.Fatalf("a main file without a vault: %v", err)
	}
	_, err := config.Parse("m.yaml", []byte(mainDoc+vaultDoc))
	if err == nil {
		t.Fatal("a main file with vaults.dir and a vault of its own")
	}
	for _, f := range []string{"vault:", "properties:"} {
		if !strings.Contains(err.Error(), f+" conflict") && !strings.Contains(err.Error(), f) {
			t.Errorf("error does not name %s: %v", f, err)
		}
	}
	if _, err := config.ParseVault("m.yaml", []byte("server: {}\n"), "v.yaml", []byte(vaultDoc)); err == nil {
		t.Error("ParseVault with a main file that has no vaults.dir")
	}
}

func TestHostnamesAreValidated(t *testing.T) {
	for _, h := range []string{"a b.example", "x.example/path", "user@x.example", "x.example:99999999", "ünï.example"} {
		doc := strings.Replace(vaultDoc, "Fabrikam.Private.Example", `"`+h+`"`, 1)
		if _, err := config.ParseVault("m.yaml", []byte(mainDoc), "v.yaml", []byte(doc)); err == nil ||
			!strings.Contains(err.Error(), "vault.hostnames[1]") {
			t.Errorf("hostname %q: err = %v", h, err)
		}
	}
	dup := strings.Replace(vaultDoc, "Fabrikam.Private.Example", "FABRIKAM-VAULT.vault.azure.net:443", 1)
	if _, err := config.ParseVault("m.yaml", []byte(mainDoc), "v.yaml", []byte(dup)); err == nil ||
		!errors.Is(err, config.ErrDuplicate) {
		t.Errorf("duplicate hostname: err = %v", err)
	}
}

// The shipped example of several vaults stays valid.
func TestExampleVaultsParse(t *testing.T) {
	mainPath := "../examples/vaults/vaultwall.yaml"
	m, err := os.ReadFile(mainPath)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../examples/vaults/vaults.d/*.yaml")
	if len(files) < 2 {
		t.Fatalf("example vaults: %v", files)
	}
	for _, f := range files {
		v, _ := os.ReadFile(f)
		if _, err := config.ParseVault(mainPath, m, f, v); err != nil {
			t.Error(err)
		}
	}
}
