package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/controlplane"
	"github.com/vaultwall/vaultwall/controlplane/store"
)

// writeVaultsDir writes vaults.d/<name>.yaml under dir for each name: a
// vault with a firewall (line 3) and access policies (line 4).
func writeVaultsDir(t *testing.T, dir, tenant, objectID string, names ...string) string {
	t.Helper()
	vd := filepath.Join(dir, "vaults.d")
	if err := os.MkdirAll(vd, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		doc := "vault: {name: " + name + ", tenantId: " + tenant + ", location: westeurope}\n" +
			"properties:\n" +
			"  networkAcls: {defaultAction: Deny, bypass: None, ipRules: [{value: 203.0.113.0/24}]}\n" +
			"  accessPolicies: [{tenantId: " + tenant + ", objectId: " + objectID + ", permissions: {secrets: [get]}}]\n"
		if err := os.WriteFile(filepath.Join(vd, name+".yaml"), []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return vd
}

// storeState writes st as the stored state at path (revision 0 → 1).
func storeState(t *testing.T, path string, st store.State) {
	t.Helper()
	fs, err := store.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	snap, err := fs.Get(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.CompareAndSwap(t.Context(), snap.Revision, st); err != nil {
		t.Fatal(err)
	}
}

// config validate of a vaults.dir configuration with the control plane's
// file store lays each vault's stored state (vaultwall-state.<vault>.json
// beside store.path) over that vault's composed configuration: it warns
// about the vault's file properties that state overrides, naming the
// vault's file and line and the vault's state file, and refuses a state
// that does not merge, naming the vault. With etcd it says it cannot read
// the states offline.
func TestConfigValidateVaultsStoredState(t *testing.T) {
	dir := t.TempDir()
	const tenant = "00000000-0000-0000-0000-000000000001"
	vd := writeVaultsDir(t, dir, tenant, "11111111-1111-1111-1111-111111111111", "alpha-vault", "beta-vault")
	mainCfg := `vaults: {dir: vaults.d}
controlPlane:
  enabled: true
  listenAddr: 127.0.0.1:0
  audiences: [api://vaultwall-admin]
  store: {type: file, path: state.json}
`
	path := filepath.Join(dir, "vaultwall.yaml")
	if err := os.WriteFile(path, []byte(mainCfg), 0o600); err != nil {
		t.Fatal(err)
	}
	alphaFile, betaFile := filepath.Join(vd, "alpha-vault.yaml"), filepath.Join(vd, "beta-vault.yaml")
	alphaState := filepath.Join(dir, "state.alpha-vault.json")
	betaState := filepath.Join(dir, "state.beta-vault.json")
	if got := controlplane.VaultStateFile(filepath.Join(dir, "state.json"), "Beta-Vault"); got != betaState {
		t.Fatalf("VaultStateFile = %s, want %s", got, betaState)
	}

	// No state yet: valid, nothing overridden.
	out, err := run(t, "config", "validate", path)
	if err != nil || strings.Contains(out, "warning:") || !strings.Contains(out, "valid, 2 vaults") {
		t.Fatalf("validate with no stored state: %v\n%s", err, out)
	}

	// beta-vault's state overrides its firewall: the warning names
	// beta's file and line and beta's state file; alpha is not named.
	storeState(t, betaState, store.State{NetworkAcls: &config.NetworkAcls{DefaultAction: "Deny", Bypass: "None",
		IPRules: []config.IPRule{{Value: "198.51.100.0/24"}}}})
	out, err = run(t, "config", "validate", path)
	if err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	want := "warning: " + betaFile + ":3: properties.networkAcls: the control plane's stored value (" + betaState + ") is the one served"
	if !strings.Contains(out, want) || strings.Count(out, "warning:") != 1 {
		t.Errorf("output lacks %q (and only it):\n%s", want, out)
	}
	// A stored value equal to the file's overrides nothing visible.
	storeState(t, alphaState, store.State{NetworkAcls: &config.NetworkAcls{DefaultAction: "Deny", Bypass: "None",
		IPRules: []config.IPRule{{Value: "203.0.113.0/24"}}}})
	if out, err = run(t, "config", "validate", path); err != nil || strings.Contains(out, "warning: "+alphaFile) || strings.Count(out, "warning:") != 1 {
		t.Errorf("alpha's state equal to its file: %v\n%s", err, out)
	}

	// alpha-vault's state does not merge (an IP rule its own config
	// refuses): an error naming the vault, its state file and the field.
	storeState(t, alphaState, store.State{NetworkAcls: &config.NetworkAcls{DefaultAction: "Deny",
		IPRules: []config.IPRule{{Value: "203.0.113.0/24"}, {Value: "not-an-address"}}}})
	_, err = run(t, "config", "validate", path)
	if err == nil || !strings.Contains(err.Error(), "vault alpha-vault: stored state "+alphaState) ||
		!strings.Contains(err.Error(), "properties.networkAcls.ipRules[1].value") || strings.Contains(err.Error(), "beta-vault") {
		t.Fatalf("validate with alpha's state unmergeable: %v, want an error naming alpha-vault and the field", err)
	}

	// etcd: the note, once; nothing is read.
	etcd := strings.Replace(mainCfg, "{type: file, path: state.json}", "{type: etcd, endpoints: [127.0.0.1:1]}", 1)
	if err := os.WriteFile(path, []byte(etcd), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "config", "validate", path)
	if err != nil || strings.Count(out, "validate cannot read them offline") != 1 || !strings.Contains(out, "/vaultwall/<vault>/state") {
		t.Errorf("validate with etcd: %v\n%s", err, out)
	}
}

// adminServerVaults runs `vaultwall serve` on a vaults.dir of alpha-vault
// and beta-vault with the control plane on (file store state.json), and
// returns the admin and ext_authz addresses, an admin token, the issuer
// and the directory.
func adminServerVaults(t *testing.T) (admin, checks, token string, is *authztest.Issuer, dir string) {
	t.Helper()
	is = authztest.NewIssuer(t)
	dir = t.TempDir()
	writeVaultsDir(t, dir, is.Tenant(), authztest.DefaultObjectID, "alpha-vault", "beta-vault")
	admin, checks = freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(`
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
`, is.Issuer(), is.CAFile(), checks, admin)
	path := filepath.Join(dir, "vaultwall.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	serveInProcess(t, path)
	claims := adminClaims(is)
	token = is.Mint(claims)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, errA := runCLI(t, "admin", "--server", admin, "--plaintext", "--token", token, "--vault", "alpha-vault", "show")
		_, errB := runCLI(t, "admin", "--server", admin, "--plaintext", "--token", token, "--vault", "beta-vault", "show")
		if errA == nil && errB == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the control plane did not serve both vaults in 20s: %v; %v", errA, errB)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return admin, checks, token, is, dir
}

// allowsOn asks the data plane whether a secret read from addr to host
// passes.
func allowsOn(t *testing.T, checks, host, token, addr string) bool {
	t.Helper()
	cc, err := grpc.NewClient(checks, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	path := "/secrets/db?api-version=7.5"
	resp, err := authv3.NewAuthorizationClient(cc).Check(t.Context(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 1}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: path, Host: host,
			Headers: map[string]string{":path": path, ":method": "GET", ":authority": host, "authorization": "Bearer " + token}}}}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetStatus().GetCode() == int32(code.Code_OK)
}

// TestAdminCLISeveralVaults: against a served control plane with two
// vaults, `vaultwall admin` without --vault (and without $VAULTWALL_VAULT)
// is refused with an error listing the vaults; --vault NAME (any case) and
// $VAULTWALL_VAULT pick the vault, --vault wins over the variable; a write
// to one vault changes its etag, its state file and its decisions alone;
// an unknown name is NOT_FOUND listing the vaults.
func TestAdminCLISeveralVaults(t *testing.T) {
	t.Setenv("VAULTWALL_VAULT", "")
	admin, checks, token, is, dir := adminServerVaults(t)
	conn := []string{"admin", "--server", admin, "--plaintext", "--token", token}
	cli := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, append(append([]string{}, conn...), args...)...)
		if err != nil {
			t.Fatalf("vaultwall %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	app := is.MintValid()
	const hostA, hostB = "alpha-vault.vault.azure.net", "beta-vault.vault.azure.net"

	// No vault named: refused, naming both, for reads and writes alike.
	for _, args := range [][]string{{"show"}, {"network-rule", "add", "--ip-address", "192.0.2.1"}} {
		_, err := runCLI(t, append(append([]string{}, conn...), args...)...)
		if err == nil || !strings.Contains(err.Error(), "invalid argument") ||
			!strings.Contains(err.Error(), "alpha-vault") || !strings.Contains(err.Error(), "beta-vault") {
			t.Fatalf("%s without --vault: %v, want invalid argument listing the vaults", args[0], err)
		}
	}
	// An unknown vault: not found, naming both.
	if _, err := runCLI(t, append(append([]string{}, conn...), "--vault", "gamma-vault", "show")...); err == nil ||
		!strings.Contains(err.Error(), "not found") || !strings.Contains(err.Error(), "alpha-vault, beta-vault") {
		t.Fatalf("--vault gamma-vault: %v, want not found listing the vaults", err)
	}

	// --vault picks the vault, in any case.
	if out := cli("--vault", "ALPHA-VAULT", "show", "--query", "[name, etag]", "-o", "tsv"); !strings.HasPrefix(out, "alpha-vault\n0-") {
		t.Fatalf("--vault ALPHA-VAULT show:\n%s", out)
	}
	betaEtag := cli("--vault", "beta-vault", "show", "--query", "etag", "-o", "tsv")

	// A write through --vault applies to that vault alone.
	if allowsOn(t, checks, hostA, app, "192.0.2.1") {
		t.Fatal("192.0.2.1 passes alpha-vault before the rule")
	}
	out := cli("--vault", "alpha-vault", "network-rule", "add", "--ip-address", "192.0.2.1")
	if !strings.Contains(out, `"name": "alpha-vault"`) || !strings.Contains(out, `"value": "192.0.2.1/32"`) || !strings.Contains(out, `"etag": "1-`) {
		t.Fatalf("--vault alpha-vault network-rule add:\n%s", out)
	}
	if !allowsOn(t, checks, hostA, app, "192.0.2.1") {
		t.Fatal("the rule added to alpha-vault is not enforced on its host")
	}
	if allowsOn(t, checks, hostB, app, "192.0.2.1") {
		t.Fatal("the rule added to alpha-vault admits on beta-vault's host")
	}
	if got := cli("--vault", "beta-vault", "show", "--query", "etag", "-o", "tsv"); got != betaEtag {
		t.Fatalf("beta-vault's etag %q changed by a write to alpha-vault (was %q)", got, betaEtag)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.alpha-vault.json")); err != nil {
		t.Fatalf("alpha-vault's state file: %v", err)
	}

	// $VAULTWALL_VAULT picks the vault when --vault is not given…
	t.Setenv("VAULTWALL_VAULT", "beta-vault")
	if out := cli("network-rule", "list", "--query", "ipRules[].value", "-o", "tsv"); out != "203.0.113.0/24\n" {
		t.Fatalf("$VAULTWALL_VAULT=beta-vault network-rule list:\n%q", out)
	}
	cli("network-rule", "add", "--ip-address", "198.51.100.9")
	if !allowsOn(t, checks, hostB, app, "198.51.100.9") || allowsOn(t, checks, hostA, app, "198.51.100.9") {
		t.Fatal("the rule added with $VAULTWALL_VAULT=beta-vault is not beta-vault's alone")
	}
	// …and --vault wins over it.
	if out := cli("--vault", "alpha-vault", "network-rule", "list", "--query", "ipRules[].value", "-o", "tsv"); out != "203.0.113.0/24\n192.0.2.1/32\n" {
		t.Fatalf("--vault alpha-vault with $VAULTWALL_VAULT=beta-vault:\n%q", out)
	}
}
