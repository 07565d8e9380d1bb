package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz/authztest"
)

// TestAdminVaultCLI: vault create --file, vault list and vault delete
// against a multi-vault `vaultwall serve`: the created vault is listed
// with the control-plane store as its source, the file's vault cannot be
// deleted, and the created one can.
func TestAdminVaultCLI(t *testing.T) {
	is := authztest.NewIssuer(t)
	dir := t.TempDir()
	admin, checks := freeAddr(t), freeAddr(t)
	doc := func(name string) string {
		return fmt.Sprintf(`
vault: {name: %[1]s, tenantId: %[2]s, location: westeurope}
properties:
  networkAcls: {defaultAction: Deny, bypass: None, ipRules: [{value: 203.0.113.0/24}]}
  accessPolicies: [{tenantId: %[2]s, objectId: %[3]s, permissions: {secrets: [get]}}]
`, name, is.Tenant(), authztest.DefaultObjectID)
	}
	if err := os.MkdirAll(filepath.Join(dir, "vaults.d"), 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "vaults.d", "alpha.yaml"), doc("alpha-vault"))
	write(filepath.Join(dir, "gamma.yaml"), doc("gamma-vault"))
	path := filepath.Join(dir, "vaultwall.yaml")
	write(path, fmt.Sprintf(`
vaults: {dir: vaults.d}
identity:
  issuers: [{issuer: %[1]q, discovery: true, caFile: %[2]q}]
server: {grpcAddr: %[3]q, httpAddr: "127.0.0.1:0"}
log: {level: error}
controlPlane:
  enabled: true
  listenAddr: %[4]q
  audiences: [api://vaultwall-admin]
  store: {type: file, path: state.json}
`, is.Issuer(), is.CAFile(), checks, admin))
	serveInProcess(t, path)
	claims := adminClaims(is)
	conn := []string{"admin", "--server", admin, "--plaintext", "--token", is.Mint(claims)}
	cli := func(args ...string) (string, error) {
		return runCLI(t, append(append([]string{}, conn...), args...)...)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := cli("vault", "list"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the control plane did not come up in 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, err := cli("vault", "create", "--file", filepath.Join(dir, "gamma.yaml")); err != nil || !strings.Contains(out, "control-plane store") {
		t.Fatalf("vault create: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.gamma-vault.vault.yaml")); err != nil {
		t.Fatalf("the stored document: %v", err)
	}
	out, err := cli("vault", "list")
	if err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(list) != 2 || list[0]["name"] != "alpha-vault" || !strings.HasSuffix(list[0]["source"].(string), "alpha.yaml") ||
		list[1]["name"] != "gamma-vault" || list[1]["source"] != "control-plane store" || list[1]["inForce"] != true {
		t.Fatalf("vault list: %s", out)
	}
	if out, err := cli("vault", "delete", "alpha-vault"); err == nil || !strings.Contains(out+err.Error(), "defined by file") {
		t.Fatalf("vault delete of a file's vault: %v\n%s", err, out)
	}
	if out, err := cli("vault", "delete", "gamma-vault"); err != nil {
		t.Fatalf("vault delete: %v\n%s", err, out)
	}
	if out, _ := cli("vault", "list", "-o", "tsv"); strings.Contains(out, "gamma-vault") {
		t.Fatalf("vault list after the delete: %s", out)
	}
}
