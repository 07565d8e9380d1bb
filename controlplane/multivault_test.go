package controlplane_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/vaultwall/vaultwall/authz/authztest"
	v1 "github.com/vaultwall/vaultwall/controlplane/api/vaultwall/v1"
	"github.com/vaultwall/vaultwall/controlplane/store/etcdstore/etcdtest"
)

// Two vaults of one vaults.dir; both let the default application read
// secrets from 203.0.113.0/24 only.
const (
	vaultA = "alpha-vault"
	vaultB = "beta-vault"
	hostA  = "alpha-vault.vault.azure.net"
	hostB  = "beta-vault.vault.azure.net"
)

// multiConfig writes the vaults directory and returns the main file's
// text: issuers, server and the control plane storing as store says.
func (r *rig) multiConfig(t *testing.T, store string) string {
	t.Helper()
	dir := filepath.Join(r.dir, "vaults.d")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{vaultA, vaultB} {
		doc := fmt.Sprintf(`
vault: {name: %[1]s, tenantId: %[2]s, location: westeurope}
properties:
  networkAcls: {defaultAction: Deny, bypass: None, ipRules: [{value: 203.0.113.0/24}]}
  accessPolicies:
    - {tenantId: %[2]s, objectId: %[3]s, permissions: {secrets: [get]}}
`, name, r.is.Tenant(), authztest.DefaultObjectID)
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return fmt.Sprintf(`
vaults: {dir: vaults.d}
identity:
  issuers: [{issuer: %[1]q, discovery: true, caFile: %[2]q}]
server: {grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0"}
controlPlane:
  enabled: true
  listenAddr: "127.0.0.1:0"
  tls: {certFile: %[3]q, keyFile: %[4]q, clientCAFile: %[5]q}
  audiences: [%[6]s]
  adminPrincipals: [%[7]q]
  store: %[8]s
`, r.is.Issuer(), r.is.CAFile(), r.certFile, r.keyFile, r.caFile, adminAudience, adminSPIFFE, store)
}

// on is in checking the vault answering to host.
func (in *instance) on(host string) *instance {
	c := *in
	c.host = host
	return &c
}

func getVault(t *testing.T, ctx context.Context, cl v1.VaultAdminServiceClient, name string) *v1.Vault {
	t.Helper()
	got, err := cl.GetVault(ctx, &v1.GetVaultRequest{Vault: name})
	if err != nil {
		t.Fatalf("GetVault %s: %v", name, err)
	}
	if !strings.EqualFold(got.GetVault().GetName(), name) {
		t.Fatalf("GetVault %s answered for %s", name, got.GetVault().GetName())
	}
	return got.GetVault()
}

// allowIP adds an IP rule to vault name's firewall, from etag.
func allowIP(ctx context.Context, cl v1.VaultAdminServiceClient, name, etag, cidr string, rules []*v1.IpRule) (*v1.Vault, error) {
	resp, err := cl.UpdateVaultProperties(ctx, &v1.UpdateVaultPropertiesRequest{
		Vault: name, Etag: etag,
		Properties: &v1.VaultProperties{NetworkAcls: &v1.NetworkAcls{IpRules: append(rules, &v1.IpRule{Value: cidr})}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"network_acls.ip_rules"}},
	})
	return resp.GetVault(), err
}

// testTwoVaults: with vaults.dir every vault has its own state. A write
// names its vault and changes that vault's decisions and etag alone; a
// request naming no vault is refused while two are served, one naming an
// unknown vault is NOT_FOUND. peer, when set, is another replica sharing
// the store, which must follow the write.
func testTwoVaults(t *testing.T, r *rig, in, peer *instance) {
	ctx := bearer(t.Context(), r.adminToken("Vault.Admin"))
	cl := in.client(t, r, nil)
	a, b := in.on(hostA), in.on(hostB)

	// Naming no vault, or an unknown one, is refused, naming the vaults.
	_, err := cl.GetVault(ctx, &v1.GetVaultRequest{})
	if codeOf(err) != codes.InvalidArgument || !strings.Contains(err.Error(), vaultA) || !strings.Contains(err.Error(), vaultB) {
		t.Fatalf("GetVault without a vault: %v, want INVALID_ARGUMENT listing both vaults", err)
	}
	if _, err := allowIP(ctx, cl, "", "*", "198.51.100.0/24", nil); codeOf(err) != codes.InvalidArgument {
		t.Fatalf("a write without a vault: %v, want INVALID_ARGUMENT", err)
	}
	if _, err := cl.GetVault(ctx, &v1.GetVaultRequest{Vault: "gamma-vault"}); codeOf(err) != codes.NotFound {
		t.Fatalf("GetVault of an unknown vault: %v, want NOT_FOUND", err)
	}
	if _, err := allowIP(ctx, cl, "gamma-vault", "*", "198.51.100.0/24", nil); codeOf(err) != codes.NotFound {
		t.Fatalf("a write to an unknown vault: %v, want NOT_FOUND", err)
	}

	va, vb := getVault(t, ctx, cl, vaultA), getVault(t, ctx, cl, vaultB)
	for _, x := range []*instance{a, b} {
		if ok, _ := x.check(t, r.is.MintValid(), "198.51.100.7"); ok {
			t.Fatalf("%s: 198.51.100.7 passes before any write", x.host)
		}
		if ok, body := x.check(t, r.is.MintValid(), "203.0.113.9"); !ok {
			t.Fatalf("%s: 203.0.113.9 refused: %s", x.host, body)
		}
	}

	na, err := allowIP(ctx, cl, vaultA, va.GetEtag(), "198.51.100.0/24", va.GetProperties().GetNetworkAcls().GetIpRules())
	if err != nil {
		t.Fatalf("write to %s: %v", vaultA, err)
	}
	if na.GetName() != vaultA || na.GetEtag() == va.GetEtag() {
		t.Fatalf("after the write: vault %s etag %s (was %s)", na.GetName(), na.GetEtag(), va.GetEtag())
	}
	// Applied to A before the answer; B's decisions and etag unchanged.
	if ok, body := a.check(t, r.is.MintValid(), "198.51.100.7"); !ok {
		t.Fatalf("%s: 198.51.100.7 refused after the write: %s", vaultA, body)
	}
	if ok, _ := b.check(t, r.is.MintValid(), "198.51.100.7"); ok {
		t.Fatalf("%s: 198.51.100.7 passes: the write to %s reached it", vaultB, vaultA)
	}
	if got := getVault(t, ctx, cl, vaultB); got.GetEtag() != vb.GetEtag() || len(got.GetProperties().GetNetworkAcls().GetIpRules()) != 1 {
		t.Fatalf("%s changed: etag %s (was %s), rules %v", vaultB, got.GetEtag(), vb.GetEtag(), got.GetProperties().GetNetworkAcls().GetIpRules())
	}
	if got := getVault(t, ctx, cl, vaultA); got.GetEtag() != na.GetEtag() {
		t.Fatalf("%s: GetVault etag %s, the write answered %s", vaultA, got.GetEtag(), na.GetEtag())
	}
	// Names are matched in any case, as Key Vault's.
	if got := getVault(t, ctx, cl, strings.ToUpper(vaultB)); got.GetEtag() != vb.GetEtag() {
		t.Fatalf("%s in upper case: etag %s", vaultB, got.GetEtag())
	}
	// A's etag does not write B; the old etag of A is stale now; B's own
	// still writes B.
	if _, err := allowIP(ctx, cl, vaultB, na.GetEtag(), "192.0.2.0/24", nil); codeOf(err) != codes.Aborted {
		t.Fatalf("a write to %s with %s's etag: %v, want ABORTED", vaultB, vaultA, err)
	}
	if _, err := allowIP(ctx, cl, vaultA, va.GetEtag(), "192.0.2.0/24", nil); codeOf(err) != codes.Aborted {
		t.Fatalf("stale etag of %s: %v, want ABORTED", vaultA, err)
	}
	if _, err := allowIP(ctx, cl, vaultB, vb.GetEtag(), "192.0.2.0/24", vb.GetProperties().GetNetworkAcls().GetIpRules()); err != nil {
		t.Fatalf("write to %s with its own etag: %v", vaultB, err)
	}
	if ok, _ := b.check(t, r.is.MintValid(), "192.0.2.1"); !ok {
		t.Fatalf("%s: 192.0.2.1 refused after its write", vaultB)
	}
	if ok, _ := a.check(t, r.is.MintValid(), "192.0.2.1"); ok {
		t.Fatalf("%s: 192.0.2.1 passes: the write to %s reached it", vaultA, vaultB)
	}

	if peer == nil {
		return
	}
	pa, pb := peer.on(hostA), peer.on(hostB)
	deadline := time.Now().Add(10 * time.Second)
	for {
		okA, _ := pa.check(t, r.is.MintValid(), "198.51.100.7")
		okB, _ := pb.check(t, r.is.MintValid(), "192.0.2.1")
		if okA && okB {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other replica did not follow the writes: %s %v, %s %v", vaultA, okA, vaultB, okB)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ok, _ := pb.check(t, r.is.MintValid(), "198.51.100.7"); ok {
		t.Fatalf("other replica: %s let 198.51.100.7 through", vaultB)
	}
}

func TestTwoVaultsFileStore(t *testing.T) {
	r := newRig(t)
	state := filepath.Join(r.dir, "state.json")
	in := r.startHost(t, "vaultwall", r.multiConfig(t, fileStore(r, "state.json")), hostA)
	testTwoVaults(t, r, in, nil)
	// One file per vault, the vault's name before the extension.
	for _, name := range []string{vaultA, vaultB} {
		if _, err := os.Stat(filepath.Join(r.dir, "state."+name+".json")); err != nil {
			t.Errorf("the state of %s: %v", name, err)
		}
	}
	if _, err := os.Stat(state); err == nil {
		t.Errorf("%s written with vaults.dir", state)
	}
}

func TestTwoVaultsEtcd(t *testing.T) {
	etcd := etcdtest.Start(t)
	r := newRig(t)
	cfg := r.multiConfig(t, fmt.Sprintf("{type: etcd, endpoints: [%q], keyPrefix: /vaultwall/test/}", etcd.Endpoint))
	in := r.startHost(t, "vaultwall-1", cfg, hostA)
	peer := r.startHost(t, "vaultwall-2", cfg, hostA)
	testTwoVaults(t, r, in, peer)
	// One key per vault under the prefix.
	c := etcd.Client(t)
	resp, err := c.Get(t.Context(), "/vaultwall/test/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	want := "/vaultwall/test/" + vaultA + "/state,/vaultwall/test/" + vaultB + "/state"
	if strings.Join(keys, ",") != want {
		t.Fatalf("etcd keys %v, want %s", keys, want)
	}
}
