package controlplane_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vaultwall/vaultwall/authz/authztest"
	v1 "github.com/vaultwall/vaultwall/controlplane/api/vaultwall/v1"
	"github.com/vaultwall/vaultwall/controlplane/store/etcdstore/etcdtest"
)

const (
	vaultC = "gamma-vault"
	hostC  = "gamma-vault.vault.azure.net"
)

// vaultDoc is a vault document letting the default application read
// secrets from cidr only; extra is appended to its vault section.
func vaultDoc(r *rig, name, cidr, extra string) []byte {
	return fmt.Appendf(nil, `
vault: {name: %[1]s, tenantId: %[2]s, location: westeurope%[5]s}
properties:
  networkAcls: {defaultAction: Deny, bypass: None, ipRules: [{value: %[4]q}]}
  accessPolicies:
    - {tenantId: %[2]s, objectId: %[3]s, permissions: {secrets: [get]}}
`, name, r.is.Tenant(), authztest.DefaultObjectID, cidr, extra)
}

func listVaults(t *testing.T, in *instance, r *rig) map[string]*v1.VaultSummary {
	t.Helper()
	ctx := bearer(t.Context(), r.adminToken("Vault.Reader"))
	resp, err := in.client(t, r, nil).ListVaults(ctx, &v1.ListVaultsRequest{})
	if err != nil {
		t.Fatalf("ListVaults: %v", err)
	}
	out := map[string]*v1.VaultSummary{}
	for _, v := range resp.GetVaults() {
		out[v.GetName()] = v
	}
	return out
}

// waitCheck waits until in (on host) lets 203.0.113.9 through (want) or
// refuses it with a body containing body.
func waitCheck(t *testing.T, r *rig, in *instance, want bool, body string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, got := in.check(t, r.is.MintValid(), "203.0.113.9")
		if ok == want && (want || strings.Contains(got, body)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: allowed %v (%s), want %v %s", in.host, ok, got, want, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testStoredVaults: a vault created through the API is served beside the
// vaults of vaults.dir, takes its properties' writes, is followed by the
// other replica (peer, when set), and is gone once deleted. Creating one
// with a name or hostname another vault holds, or an invalid one, is
// refused and stores nothing; a file's vault cannot be deleted. stored
// counts the documents in the store.
func testStoredVaults(t *testing.T, r *rig, in, peer *instance, stored func() int) {
	admin := bearer(t.Context(), r.adminToken("Vault.Admin"))
	cl := in.client(t, r, nil)

	before := listVaults(t, in, r)
	if len(before) != 2 || !strings.HasSuffix(before[vaultA].GetSource(), vaultA+".yaml") || before[vaultA].GetEtag() != "" {
		t.Fatalf("ListVaults before: %v", before)
	}
	waitCheck(t, r, in.on(hostC), false, "VaultNotFound")

	list, err := cl.ListVaults(admin, &v1.ListVaultsRequest{})
	if err != nil || list.GetEtag() == "" {
		t.Fatalf("ListVaults: %v %v", list, err)
	}
	// A create decided from a list that is no longer current is refused.
	if _, err := cl.CreateVault(admin, &v1.CreateVaultRequest{Document: vaultDoc(r, vaultC, "203.0.113.0/24", ""), Etag: "v-0000"}); codeOf(err) != codes.Aborted {
		t.Fatalf("CreateVault with a stale etag: %v, want ABORTED", err)
	}
	created, err := cl.CreateVault(admin, &v1.CreateVaultRequest{Document: vaultDoc(r, vaultC, "203.0.113.0/24", ""), Etag: list.GetEtag()})
	if err != nil {
		t.Fatalf("CreateVault: %v", err)
	}
	if v := created.GetVault(); v.GetName() != vaultC || v.GetSource() != "control-plane store" || !v.GetInForce() || v.GetEtag() == "" ||
		strings.Join(v.GetHostnames(), ",") != hostC {
		t.Fatalf("CreateVault answered %v", v)
	}
	if stored() != 1 {
		t.Fatalf("%d documents stored after the create, want 1", stored())
	}
	// Served at once, beside the file's vaults; its own firewall.
	c := in.on(hostC)
	waitCheck(t, r, c, true, "")
	if ok, _ := c.check(t, r.is.MintValid(), "198.51.100.7"); ok {
		t.Fatalf("%s lets 198.51.100.7 through", vaultC)
	}
	waitCheck(t, r, in.on(hostA), true, "")
	got := listVaults(t, in, r)
	if len(got) != 3 || got[vaultC].GetSource() != "control-plane store" || got[vaultC].GetEtag() != created.GetVault().GetEtag() || !got[vaultC].GetInForce() {
		t.Fatalf("ListVaults after the create: %v", got)
	}

	// Its properties are written as a file vault's: the overlay applies.
	vc := getVault(t, admin, cl, vaultC)
	if _, err := allowIP(admin, cl, vaultC, vc.GetEtag(), "198.51.100.0/24", vc.GetProperties().GetNetworkAcls().GetIpRules()); err != nil {
		t.Fatalf("write to %s: %v", vaultC, err)
	}
	if ok, body := c.check(t, r.is.MintValid(), "198.51.100.7"); !ok {
		t.Fatalf("%s: 198.51.100.7 refused after the write: %s", vaultC, body)
	}

	// Refusals, each storing nothing.
	for _, tc := range []struct {
		what  string
		doc   []byte
		code  codes.Code
		field string
	}{
		{"the same name again", vaultDoc(r, vaultC, "192.0.2.0/24", ""), codes.AlreadyExists, ""},
		{"a file vault's name", vaultDoc(r, strings.ToUpper(vaultA), "192.0.2.0/24", ""), codes.AlreadyExists, ""},
		{"another vault's hostname", vaultDoc(r, "delta-vault", "192.0.2.0/24", ", hostnames: ["+hostB+"]"), codes.InvalidArgument, "vault.hostnames"},
		{"an invalid rule", vaultDoc(r, "delta-vault", "not-an-ip", ""), codes.InvalidArgument, "properties.networkAcls.ipRules[0].value"},
		{"an invalid name", vaultDoc(r, "d", "192.0.2.0/24", ""), codes.InvalidArgument, "vault.name"},
		{"nothing", nil, codes.InvalidArgument, "document"},
	} {
		_, err := cl.CreateVault(admin, &v1.CreateVaultRequest{Document: tc.doc, Etag: "*"})
		if codeOf(err) != tc.code {
			t.Fatalf("CreateVault of %s: %v, want %v", tc.what, err, tc.code)
		}
		if tc.field != "" && !hasField(err, tc.field) {
			t.Fatalf("CreateVault of %s: %v, want a violation of %s", tc.what, err, tc.field)
		}
		if n := stored(); n != 1 {
			t.Fatalf("CreateVault of %s stored something: %d documents", tc.what, n)
		}
	}
	if n := len(listVaults(t, in, r)); n != 3 {
		t.Fatalf("%d vaults after the refusals", n)
	}
	// A reader cannot create.
	reader := bearer(t.Context(), r.adminToken("Vault.Reader"))
	if _, err := cl.CreateVault(reader, &v1.CreateVaultRequest{Document: vaultDoc(r, "delta-vault", "192.0.2.0/24", ""), Etag: "*"}); codeOf(err) != codes.PermissionDenied {
		t.Fatalf("CreateVault by a reader: %v", err)
	}

	// A file's vault is not deleted through the API.
	_, err = cl.DeleteVault(admin, &v1.DeleteVaultRequest{Vault: vaultA, Etag: "*"})
	if codeOf(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "defined by file") || !strings.Contains(err.Error(), vaultA+".yaml") {
		t.Fatalf("DeleteVault of a file's vault: %v", err)
	}
	if _, err := cl.DeleteVault(admin, &v1.DeleteVaultRequest{Vault: "nosuch-vault", Etag: "*"}); codeOf(err) != codes.NotFound {
		t.Fatalf("DeleteVault of an unknown vault: %v", err)
	}

	if peer != nil { // the other replica learns the vault from the store
		waitCheck(t, r, peer.on(hostC), true, "")
	}

	// A stale etag deletes nothing; the vault's own does.
	if _, err := cl.DeleteVault(admin, &v1.DeleteVaultRequest{Vault: vaultC, Etag: "1"}); codeOf(err) != codes.Aborted {
		t.Fatalf("DeleteVault with a stale etag: %v", err)
	}
	waitCheck(t, r, c, true, "")
	if _, err := cl.DeleteVault(admin, &v1.DeleteVaultRequest{Vault: vaultC, Etag: got[vaultC].GetEtag()}); err != nil {
		t.Fatalf("DeleteVault: %v", err)
	}
	if stored() != 0 {
		t.Fatalf("%d documents stored after the delete", stored())
	}
	// Gone before the answer; the file vaults stay.
	if ok, body := c.check(t, r.is.MintValid(), "203.0.113.9"); ok || !strings.Contains(body, "VaultNotFound") {
		t.Fatalf("%s after the delete: allowed %v %s, want VaultNotFound", hostC, ok, body)
	}
	waitCheck(t, r, in.on(hostB), true, "")
	if n := len(listVaults(t, in, r)); n != 2 {
		t.Fatalf("%d vaults after the delete", n)
	}
	if peer != nil {
		waitCheck(t, r, peer.on(hostC), false, "VaultNotFound")
		waitCheck(t, r, peer.on(hostA), true, "")
	}
}

func hasField(err error, field string) bool {
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					return true
				}
			}
		}
	}
	return false
}

func TestStoredVaultsFileStore(t *testing.T) {
	r := newRig(t)
	cfg := r.multiConfig(t, fileStore(r, "state.json"))
	in := r.startHost(t, "vaultwall", cfg, hostA)
	// A second process sharing the file store learns the vaults by its poll.
	peer := r.startHost(t, "vaultwall-2", cfg, hostA)
	testStoredVaults(t, r, in, peer, func() int {
		m, _ := filepath.Glob(filepath.Join(r.dir, "state.*.vault.yaml"))
		return len(m)
	})
	// The file store keeps the document beside the state files.
	if _, err := os.Stat(filepath.Join(r.dir, "state."+vaultC+".json")); err != nil {
		t.Errorf("the state of %s: %v", vaultC, err)
	}
}

func TestStoredVaultsEtcd(t *testing.T) {
	etcd := etcdtest.Start(t)
	r := newRig(t)
	cfg := r.multiConfig(t, fmt.Sprintf("{type: etcd, endpoints: [%q], keyPrefix: /vaultwall/test/}", etcd.Endpoint))
	in := r.startHost(t, "vaultwall-1", cfg, hostA)
	peer := r.startHost(t, "vaultwall-2", cfg, hostA)
	c := etcd.Client(t)
	testStoredVaults(t, r, in, peer, func() int {
		resp, err := c.Get(t.Context(), "/vaultwall/test/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, kv := range resp.Kvs {
			if strings.HasSuffix(string(kv.Key), "/document") {
				n++
			}
		}
		return n
	})
}
