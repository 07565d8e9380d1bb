package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/vaultwall/vaultwall/authz/authztest"
	v1 "github.com/vaultwall/vaultwall/controlplane/api/vaultwall/v1"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// adminServer runs `vaultwall serve` with the control plane on, and
// returns the admin and ext_authz addresses and an admin token.
func adminServer(t *testing.T) (admin, checks, token string, is *authztest.Issuer) {
	t.Helper()
	is = authztest.NewIssuer(t)
	dir := t.TempDir()
	admin, checks = freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(`
vault: {name: contoso-vault, tenantId: %[1]s, location: westeurope}
properties:
  networkAcls: {defaultAction: Deny, bypass: None, ipRules: [{value: 203.0.113.0/24}]}
  accessPolicies: [{tenantId: %[1]s, objectId: %[2]s, permissions: {secrets: [get]}}]
identity:
  issuers: [{issuer: %[3]q, discovery: true, caFile: %[4]q}]
server: {grpcAddr: %[5]q, httpAddr: "127.0.0.1:0"}
log: {level: error}
controlPlane:
  enabled: true
  listenAddr: %[6]q
  audiences: [api://vaultwall-admin]
  store: {type: file, path: state.json}
`, is.Tenant(), authztest.DefaultObjectID, is.Issuer(), is.CAFile(), checks, admin)
	path := filepath.Join(dir, "vault.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	serveInProcess(t, path)
	claims := adminClaims(is)
	token = is.Mint(claims)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := runCLI(t, "admin", "--server", admin, "--plaintext", "--token", token, "show"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the control plane did not come up in 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return admin, checks, token, is
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String() + errOut.String(), err
}

func dataPlaneAllows(t *testing.T, checks, token, addr string) bool {
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
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: path,
			Headers: map[string]string{":path": path, ":method": "GET", "authorization": "Bearer " + token}}}}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetStatus().GetCode() == int32(code.Code_OK)
}

func TestAdminCLI(t *testing.T) {
	admin, checks, token, is := adminServer(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conn := []string{"admin", "--server", admin, "--plaintext", "--token-file", tokenFile}
	cli := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, append(append([]string{}, conn...), args...)...)
		if err != nil {
			t.Fatalf("vaultwall %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	app := is.MintValid()

	out := cli("show")
	if !strings.Contains(out, `"name": "contoso-vault"`) || !strings.Contains(out, `"etag": "0-`) {
		t.Fatalf("show:\n%s", out)
	}

	// network-rule add is enforced by the data plane when it returns.
	if dataPlaneAllows(t, checks, app, "192.0.2.1") {
		t.Fatal("192.0.2.1 passes before the rule")
	}
	out = cli("network-rule", "add", "--ip-address", "192.0.2.1")
	if !strings.Contains(out, `"value": "192.0.2.1/32"`) || !strings.Contains(out, `"etag": "1-`) {
		t.Fatalf("network-rule add prints the vault, as az does:\n%s", out)
	}
	if !dataPlaneAllows(t, checks, app, "192.0.2.1") {
		t.Fatal("the rule added with the CLI is not enforced")
	}
	if out = cli("network-rule", "add", "--ip-address", "192.0.2.1/32"); !strings.Contains(out, `"etag": "1-`) {
		t.Fatalf("adding a present rule wrote:\n%s", out)
	}
	if out = cli("network-rule", "list", "--query", "ipRules[].value", "-o", "tsv"); out != "203.0.113.0/24\n192.0.2.1/32\n" {
		t.Fatalf("network-rule list:\n%q", out)
	}
	if out = cli("show", "--query", "properties.networkAcls.defaultAction", "-o", "tsv"); out != "Deny\n" {
		t.Fatalf("show --query:\n%q", out)
	}
	cli("network-rule", "remove", "--ip-address", "192.0.2.1")
	if dataPlaneAllows(t, checks, app, "192.0.2.1") {
		t.Fatal("the removed rule still admits")
	}

	// Several addresses at once, space-separated as az takes them, in one write.
	out = cli("network-rule", "add", "--ip-address", "192.0.2.7", "198.51.100.0/24", "-o", "json", "--query", "[etag, properties.networkAcls.ipRules[].value]")
	// The etag is <revision>-<digest of the effective configuration>.
	if rev, rest, ok := strings.Cut(out, "\"3-"); ok && len(rest) > 16 {
		out = rev + "\"3" + rest[16:]
	}
	if want := "[\n  \"3\",\n  [\n    \"203.0.113.0/24\",\n    \"192.0.2.7/32\",\n    \"198.51.100.0/24\"\n  ]\n]\n"; out != want {
		t.Fatalf("network-rule add of two addresses:\n%s\nwant\n%s", out, want)
	}
	if !dataPlaneAllows(t, checks, app, "198.51.100.9") {
		t.Fatal("the second address of one add is not enforced")
	}
	if out = cli("network-rule", "remove", "--ip-address", "192.0.2.7,198.51.100.0/24", "-o", "none"); out != "" {
		t.Fatalf("-o none printed %q", out)
	}

	// az keyvault update's network properties.
	out = cli("update", "--default-action", "Allow", "--bypass", "None", "--public-network-access", "Enabled",
		"--query", "{d:properties.networkAcls.defaultAction, b:properties.networkAcls.bypass, p:properties.publicNetworkAccess}", "-o", "tsv")
	if out != "Allow\tNone\tEnabled\n" { // the query's order, as az

		t.Fatalf("update:\n%q", out)
	}
	if !dataPlaneAllows(t, checks, app, "192.0.2.99") {
		t.Fatal("defaultAction Allow set with update is not enforced")
	}
	cli("update", "--default-action", "deny")
	if dataPlaneAllows(t, checks, app, "192.0.2.99") {
		t.Fatal("defaultAction Deny set with update is not enforced")
	}
	if _, err := runCLI(t, append(conn, "update", "--default-action", "Maybe")...); err == nil || !strings.Contains(err.Error(), "want Allow or Deny") {
		t.Fatalf("update with a bad value: %v", err)
	}
	if _, err := runCLI(t, append(conn, "show", "-o", "xml")...); err == nil || !strings.Contains(err.Error(), "--output") {
		t.Fatalf("-o xml: %v", err)
	}
	if _, err := runCLI(t, append(conn, "network-rule", "add", "--ip-address", "192.0.2.300")...); err == nil ||
		!strings.Contains(err.Error(), "properties.networkAcls.ipRules[1].value") {
		t.Fatalf("an invalid rule: %v", err)
	}

	// set-policy in az's habit: space-separated permissions, a family given
	// replaces that family only.
	oid := "44444444-4444-4444-4444-444444444444"
	out = cli("set-policy", "--object-id", oid, "--secret-permissions", "get", "list")
	if !strings.Contains(out, `"secrets": [`) || !strings.Contains(out, `"list"`) {
		t.Fatalf("set-policy:\n%s", out)
	}
	out = cli("set-policy", "--object-id", oid, "--key-permissions", "wrapKey", "unwrapKey")
	if !strings.Contains(out, `"wrapKey"`) || !strings.Contains(out, `"list"`) {
		t.Fatalf("set-policy of keys lost the secrets:\n%s", out)
	}
	cli("set-policy", "--object-id", authztest.DefaultObjectID, "--secret-permissions", "list")
	if dataPlaneAllows(t, checks, app, "203.0.113.9") {
		t.Fatal("secrets/get still granted after set-policy replaced the secret permissions")
	}
	cli("delete-policy", "--object-id", oid)
	if out = cli("show"); strings.Contains(out, oid) {
		t.Fatalf("delete-policy left the entry:\n%s", out)
	}

	// Role assignments.
	const raID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4e"
	out = cli("role", "assignment", "create", "--assignee", oid, "--role", "Key Vault Secrets User", "--scope", "/secrets/db", "--id", raID)
	if !strings.Contains(out, `"name": "`+raID+`"`) || !strings.Contains(out, `"roleDefinitionName": "Key Vault Secrets User"`) ||
		!strings.Contains(out, `/providers/Microsoft.KeyVault/vaults/contoso-vault/secrets/db"`) {
		t.Fatalf("create prints the assignment as az does:\n%s", out)
	}
	cli("role", "assignment", "create", "--assignee", oid, "--role", "Key Vault Secrets User", "--scope", "/secrets/db", "--id", raID)
	if out = cli("role", "assignment", "list", "--assignee", oid, "--query", "[].name", "-o", "tsv"); out != raID+"\n" {
		t.Fatalf("list:\n%s", out)
	}
	if out = cli("role", "assignment", "list", "-o", "table"); !strings.HasPrefix(out, "Principal ") || !strings.Contains(out, oid+"  Key Vault Secrets User  /subscriptions/") {
		t.Fatalf("list -o table:\n%s", out)
	}
	cli("role", "assignment", "delete", "--id", raID)
	if out = cli("role", "assignment", "list"); strings.Contains(out, raID) {
		t.Fatalf("delete left it:\n%s", out)
	}

	// Without a token the control plane refuses.
	if _, err := runCLI(t, "admin", "--server", admin, "--plaintext", "show"); err == nil || !strings.Contains(err.Error(), "unauthenticated") {
		t.Fatalf("show without a token: %v", err)
	}
}

// racingClient makes the first write of a verb stale by writing first.
type racingClient struct {
	v1.VaultAdminServiceClient
	raced bool
	race  func()
}

func (r *racingClient) UpdateVaultProperties(ctx context.Context, in *v1.UpdateVaultPropertiesRequest, opts ...grpc.CallOption) (*v1.UpdateVaultPropertiesResponse, error) {
	if !r.raced {
		r.raced = true
		r.race()
	}
	return r.VaultAdminServiceClient.UpdateVaultProperties(ctx, in, opts...)
}

// TestRetryOnConflict: another writer lands between the CLI's read and its
// write; the CLI reads again and retries once, and both changes survive.
func TestRetryOnConflict(t *testing.T) {
	admin, _, token, _ := adminServer(t)
	cc, err := grpc.NewClient(admin, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+token)
	real := v1.NewVaultAdminServiceClient(cc)
	other := func() {
		v, err := real.GetVault(ctx, &v1.GetVaultRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := real.UpdateVaultProperties(ctx, &v1.UpdateVaultPropertiesRequest{Etag: v.GetVault().GetEtag(),
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"public_network_access"}},
			Properties: &v1.VaultProperties{PublicNetworkAccess: v1.PublicNetworkAccess_PUBLIC_NETWORK_ACCESS_DISABLED}}); err != nil {
			t.Fatal(err)
		}
	}
	cl := &racingClient{VaultAdminServiceClient: real, race: other}
	attempts := 0
	err = retryOnConflict(ctx, cl, func(v *v1.Vault) error {
		attempts++
		ips := append(v.GetProperties().GetNetworkAcls().GetIpRules(), &v1.IpRule{Value: "192.0.2.9"})
		_, err := cl.UpdateVaultProperties(ctx, &v1.UpdateVaultPropertiesRequest{Etag: v.GetEtag(),
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"network_acls.ip_rules"}},
			Properties: &v1.VaultProperties{NetworkAcls: &v1.NetworkAcls{IpRules: ips}}})
		return err
	})
	if err != nil || attempts != 2 {
		t.Fatalf("attempts=%d err=%v", attempts, err)
	}
	v, _ := real.GetVault(ctx, &v1.GetVaultRequest{})
	p := v.GetVault().GetProperties()
	if p.GetPublicNetworkAccess() != v1.PublicNetworkAccess_PUBLIC_NETWORK_ACCESS_DISABLED || len(p.GetNetworkAcls().GetIpRules()) != 2 {
		t.Fatalf("a change was lost: %v", p)
	}
}

func TestAzLists(t *testing.T) {
	got := azLists([]string{"--object-id", "o", "--secret-permissions", "get", "list,set", "--key-permissions", "--server", "x"}, permissionFlags)
	want := []string{"--object-id", "o", "--secret-permissions=get,list,set", "--key-permissions=", "--server", "x"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %q", got)
	}
}

// explainStatus spells the code in words: grpc-go's Code.String is
// CamelCase, which the CLI printed run together ("invalidargument: …").
func TestExplainStatusWords(t *testing.T) {
	for c, want := range map[codes.Code]string{
		codes.InvalidArgument: "invalid argument", codes.NotFound: "not found", codes.PermissionDenied: "permission denied",
		codes.Unauthenticated: "unauthenticated", codes.Aborted: "aborted", codes.DeadlineExceeded: "deadline exceeded",
		codes.ResourceExhausted: "resource exhausted", codes.Code(99): "code(99)",
	} {
		if got := explainStatus(status.Error(c, "m")); got == nil || got.Error() != want+": m" {
			t.Errorf("%v: %v, want %q", c, got, want+": m")
		}
	}
}

// serveInProcess runs `vaultwall serve --config path` until the test ends.
func serveInProcess(t *testing.T, path string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() {
		root := newRoot()
		root.SetArgs([]string{"serve", "--config", path})
		root.SetOut(&bytes.Buffer{})
		done <- root.ExecuteContext(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// adminClaims are is's claims for a management token holding Vault.Admin.
func adminClaims(is *authztest.Issuer) map[string]any {
	claims := is.Claims()
	claims["aud"], claims["roles"] = "api://vaultwall-admin", []any{"Vault.Admin"}
	return claims
}
