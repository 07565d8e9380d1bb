package controlplane_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/controlplane"
	v1 "github.com/vaultwall/vaultwall/controlplane/api/vaultwall/v1"
	"github.com/vaultwall/vaultwall/controlplane/store/etcdstore/etcdtest"
)

func fileStore(r *rig, name string) string {
	return fmt.Sprintf("{type: file, path: %q}", filepath.Join(r.dir, name))
}

func codeOf(err error) codes.Code { return status.Code(err) }

// A principal and an assignment id: GUIDs, as Key Vault requires.
const (
	principal1  = "5a5a5a5a-0000-4000-8000-00000000000a"
	assignment1 = "ae11ae11-0000-4000-8000-000000000001"
)

func TestAdminAuthorization(t *testing.T) {
	r := newRig(t)
	in := r.start(t, "vault", r.config(fileStore(r, "state.json")))
	anon := in.client(t, r, nil)
	admin := r.adminToken("Vault.Admin")
	for _, tc := range []struct {
		name   string
		client v1.VaultAdminServiceClient
		token  string
		write  bool
		want   codes.Code
		detail string
	}{
		{"no token, no certificate", anon, "", false, codes.Unauthenticated, "bearer token"},
		{"a data-plane token (wrong audience)", anon, r.is.MintValid(), false, codes.Unauthenticated, "audience"},
		{"a forged token", anon, authztest.Tamper(admin), false, codes.Unauthenticated, ""},
		{"management token without a role", anon, r.adminToken(), false, codes.PermissionDenied, "holds none of the roles"},
		{"reader reads", anon, r.adminToken("Vault.Reader"), false, codes.OK, ""},
		{"reader cannot write", anon, r.adminToken("Vault.Reader"), true, codes.PermissionDenied, "UpdateAccessPolicies refused"},
		{"admin reads", anon, admin, false, codes.OK, ""},
		{"admin writes", anon, admin, true, codes.OK, ""},
		{"admin certificate", in.client(t, r, r.ca.Issue(authztest.CertOptions{URIs: []string{adminSPIFFE}})), "", true, codes.OK, ""},
		{"other certificate", in.client(t, r, r.ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://ops.example/intern"}})), "", false,
			codes.PermissionDenied, "not an admin principal"},
		{"a DNS SAN spelled as the admin SPIFFE ID", in.client(t, r, r.ca.Issue(authztest.CertOptions{DNSNames: []string{adminSPIFFE}})), "", true,
			codes.PermissionDenied, "not an admin principal"},
		{"other certificate with an admin token", in.client(t, r, r.ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://ops.example/intern"}})),
			admin, true, codes.OK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if tc.token != "" {
				ctx = bearer(ctx, tc.token)
			}
			var err error
			if tc.write {
				_, err = tc.client.UpdateAccessPolicies(ctx, &v1.UpdateAccessPoliciesRequest{
					Kind: v1.AccessPolicyUpdateKind_ACCESS_POLICY_UPDATE_KIND_ADD, Etag: "*",
					AccessPolicies: []*v1.AccessPolicy{{ObjectId: authztest.DefaultObjectID, Permissions: &v1.Permissions{Secrets: []string{"list"}}}}})
			} else {
				_, err = tc.client.GetVault(ctx, &v1.GetVaultRequest{})
			}
			if codeOf(err) != tc.want {
				t.Fatalf("code %v (%v), want %v", codeOf(err), err, tc.want)
			}
			if tc.detail != "" && !strings.Contains(err.Error(), tc.detail) {
				t.Errorf("error %q does not say %q", err, tc.detail)
			}
		})
	}
	// Every refusal is audited with the caller: the reader's write names
	// the reader's oid and the policy's reason.
	var readerWrite bool
	for _, line := range strings.Split(in.log.String(), "\n") {
		if strings.Contains(line, `"msg":"control-plane change"`) && strings.Contains(line, `"outcome":"denied"`) &&
			strings.Contains(line, `"method":"UpdateAccessPolicies"`) && strings.Contains(line, "oid=99999999-9999-9999-9999-999999999999") &&
			strings.Contains(line, "holds none of the roles") {
			readerWrite = true
		}
	}
	if !readerWrite {
		t.Error("the reader's refused write left no audit record naming the reader and the reason")
	}
	if strings.Contains(in.log.String(), "eyJ") {
		t.Error("a token reached the log")
	}
	// A client certificate from another CA never reaches the policy: the
	// TLS handshake refuses it.
	other := authztest.NewTestCA(t).Issue(authztest.CertOptions{URIs: []string{adminSPIFFE}})
	if _, err := in.client(t, r, other).GetVault(t.Context(), &v1.GetVaultRequest{}); codeOf(err) == codes.OK {
		t.Fatal("an admin SAN from an untrusted CA was accepted")
	}
}

// TestControlPlaneIgnoresFirewall: the admin API answers from an address
// the vault's firewall refuses, and the data plane still refuses it.
func TestControlPlaneIgnoresFirewall(t *testing.T) {
	r := newRig(t)
	in := r.start(t, "vault", r.config(fileStore(r, "state.json")))
	tok := r.is.MintValid()
	// The admin client connects from 127.0.0.1, which no rule admits.
	if ok, body := in.check(t, tok, "127.0.0.1"); ok || !strings.Contains(body, "ForbiddenByFirewall") {
		t.Fatalf("data plane from 127.0.0.1: ok=%v %s", ok, body)
	}
	c := in.client(t, r, nil)
	ctx := bearer(t.Context(), r.adminToken("Vault.Admin"))
	got, err := c.GetVault(ctx, &v1.GetVaultRequest{})
	if err != nil {
		t.Fatalf("control plane from 127.0.0.1: %v", err)
	}
	if _, err := c.UpdateVaultProperties(ctx, &v1.UpdateVaultPropertiesRequest{Etag: got.GetVault().GetEtag(),
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"network_acls.ip_rules"}},
		Properties: &v1.VaultProperties{NetworkAcls: &v1.NetworkAcls{IpRules: []*v1.IpRule{{Value: "203.0.113.0/24"}, {Value: "198.51.100.1"}}}}}); err != nil {
		t.Fatalf("control-plane write from 127.0.0.1: %v", err)
	}
	if ok, body := in.check(t, tok, "127.0.0.1"); ok || !strings.Contains(body, "ForbiddenByFirewall") {
		t.Fatalf("data plane from 127.0.0.1 after the admin calls: ok=%v %s", ok, body)
	}
	if ok, _ := in.check(t, tok, "198.51.100.1"); !ok {
		t.Fatal("the rule written through the control plane is not enforced")
	}
}

func TestWritesAppliedAtOnce(t *testing.T) {
	r := newRig(t)
	statePath := fileStore(r, "state.json")
	in := r.start(t, "vault", r.config(statePath))
	c := in.client(t, r, nil)
	ctx := bearer(t.Context(), r.adminToken("Vault.Admin"))
	tok := r.is.MintValid()
	if ok, _ := in.check(t, tok, "192.0.2.1"); ok {
		t.Fatal("192.0.2.1 passes before any rule admits it")
	}
	v0, err := c.GetVault(ctx, &v1.GetVaultRequest{})
	if err != nil {
		t.Fatal(err)
	}
	e0 := v0.GetVault().GetEtag()
	if len(v0.GetVault().GetProperties().GetControlPlaneProperties()) != 0 {
		t.Fatalf("a fresh store owns properties: %v", v0.GetVault().GetProperties().GetControlPlaneProperties())
	}
	rules := func(vs ...string) *v1.VaultProperties {
		var out []*v1.IpRule
		for _, v := range vs {
			out = append(out, &v1.IpRule{Value: v})
		}
		return &v1.VaultProperties{NetworkAcls: &v1.NetworkAcls{IpRules: out}}
	}
	ipMask := &fieldmaskpb.FieldMask{Paths: []string{"network_acls.ip_rules"}}
	up, err := c.UpdateVaultProperties(ctx, &v1.UpdateVaultPropertiesRequest{Etag: e0, UpdateMask: ipMask,
		Properties: rules("203.0.113.0/24", "192.0.2.1")})
	if err != nil {
		t.Fatal(err)
	}
	e1 := up.GetVault().GetEtag()
	if e1 == e0 || up.GetVault().GetProperties().GetNetworkAcls().GetDefaultAction() != v1.DefaultAction_DEFAULT_ACTION_DENY {
		t.Fatalf("after the write: %v", up.GetVault())
	}
	// Enforced when the RPC returns: no wait, no poll.
	if ok, body := in.check(t, tok, "192.0.2.1"); !ok {
		t.Fatalf("the new rule is not enforced when the write returns: %s", body)
	}

	t.Run("stale etag", func(t *testing.T) {
		_, err := c.UpdateVaultProperties(ctx, &v1.UpdateVaultPropertiesRequest{Etag: e0, UpdateMask: ipMask, Properties: rules("192.0.2.2")})
		if codeOf(err) != codes.Aborted {
			t.Fatalf("stale write: %v", err)
		}
		info := errorInfo(t, err)
		if info.GetReason() != controlplane.ReasonEtagMismatch || info.GetMetadata()["currentEtag"] != e1 || info.GetMetadata()["requestEtag"] != e0 {
			t.Fatalf("error info: %v", info)
		}
	})
	t.Run("missing etag", func(t *testing.T) {
		_, err := c.UpdateVaultProperties(ctx, &v1.UpdateVaultPropertiesRequest{UpdateMask: ipMask, Properties: rules("192.0.2.2")})
		if codeOf(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "etag") {
			t.Fatalf("write without an etag: %v", err)
		}
	})
	t.Run("invalid change refused with field paths, nothing stored", func(t *testing.T) {
		_, err := c.UpdateVaultProperties(ctx, &v1.UpdateVaultPropertiesRequest{Etag: e1, UpdateMask: ipMask,
			Properties: rules("203.0.113.0/24", "192.0.2.300", "203.0.113.0/24")})
		if codeOf(err) != codes.InvalidArgument {
			t.Fatalf("invalid write: %v", err)
		}
		fields := violations(t, err)
		for _, want := range []string{"properties.networkAcls.ipRules[1].value", "properties.networkAcls.ipRules[2].value"} {
			if !slices.Contains(fields, want) {
				t.Errorf("violations %v do not name %s", fields, want)
			}
		}
		v, _ := c.GetVault(ctx, &v1.GetVaultRequest{})
		if v.GetVault().GetEtag() != e1 || len(v.GetVault().GetProperties().GetNetworkAcls().GetIpRules()) != 2 {
			t.Fatalf("something was stored: %v", v.GetVault())
		}
	})
	t.Run("a change the policy build refuses", func(t *testing.T) {
		// A role assignment naming no role passes the schema but not the
		// RBAC data: refused with its field.
		_, err := c.CreateRoleAssignment(ctx, &v1.CreateRoleAssignmentRequest{Etag: e1,
			RoleAssignment: &v1.RoleAssignment{PrincipalId: principal1, RoleDefinitionId: "No Such Role"}})
		if codeOf(err) != codes.InvalidArgument || !slices.ContainsFunc(violations(t, err), func(f string) bool {
			return strings.HasPrefix(f, "properties.roleAssignments[0]")
		}) {
			t.Fatalf("unknown role: %v", err)
		}
	})

	// Access policies: remove the application's secrets/get, then add it back.
	etag := e1
	update := func(kind v1.AccessPolicyUpdateKind, perms ...string) {
		t.Helper()
		resp, err := c.UpdateAccessPolicies(ctx, &v1.UpdateAccessPoliciesRequest{Kind: kind, Etag: etag,
			AccessPolicies: []*v1.AccessPolicy{{ObjectId: authztest.DefaultObjectID, Permissions: &v1.Permissions{Secrets: perms}}}})
		if err != nil {
			t.Fatal(err)
		}
		etag = resp.GetVault().GetEtag()
	}
	update(v1.AccessPolicyUpdateKind_ACCESS_POLICY_UPDATE_KIND_REMOVE, "GET")
	if ok, body := in.check(t, tok, "203.0.113.9"); ok || !strings.Contains(body, "AccessDenied") {
		t.Fatalf("after removing secrets/get: ok=%v %s", ok, body)
	}
	update(v1.AccessPolicyUpdateKind_ACCESS_POLICY_UPDATE_KIND_ADD, "get", "list")
	if ok, body := in.check(t, tok, "203.0.113.9"); !ok {
		t.Fatalf("after adding secrets/get back: %s", body)
	}
	// Adding what is there changes nothing: no write, same etag.
	before := etag
	update(v1.AccessPolicyUpdateKind_ACCESS_POLICY_UPDATE_KIND_ADD, "Get")
	if etag != before {
		t.Fatalf("a no-op add wrote a new state: %s -> %s", before, etag)
	}

	// Role assignments: create (idempotent), list, delete.
	ra := &v1.RoleAssignment{Id: assignment1, PrincipalId: principal1, RoleDefinitionId: "Key Vault Secrets User", Scope: "/secrets/db"}
	cr, err := c.CreateRoleAssignment(ctx, &v1.CreateRoleAssignmentRequest{Etag: etag, RoleAssignment: ra})
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.CreateRoleAssignment(ctx, &v1.CreateRoleAssignmentRequest{Etag: cr.GetEtag(), RoleAssignment: ra})
	if err != nil || again.GetEtag() != cr.GetEtag() {
		t.Fatalf("creating the same assignment again: %v %v", again, err)
	}
	list, err := c.ListRoleAssignments(ctx, &v1.ListRoleAssignmentsRequest{PrincipalId: strings.ToUpper(principal1)})
	if err != nil || len(list.GetRoleAssignments()) != 1 || list.GetRoleAssignments()[0].GetScope() != "/secrets/db" {
		t.Fatalf("list: %v %v", list, err)
	}
	del, err := c.DeleteRoleAssignment(ctx, &v1.DeleteRoleAssignmentRequest{Id: assignment1, Etag: list.GetEtag()})
	if err != nil || !del.GetDeleted() {
		t.Fatalf("delete: %v %v", del, err)
	}
	del2, err := c.DeleteRoleAssignment(ctx, &v1.DeleteRoleAssignmentRequest{Id: assignment1, Etag: del.GetEtag()})
	if err != nil || del2.GetDeleted() || del2.GetEtag() != del.GetEtag() {
		t.Fatalf("deleting again: %v %v", del2, err)
	}

	// Every change is audited with who, what and the etags.
	logs := in.log.String()
	for _, want := range []string{`"msg":"control-plane change"`, `"audit":"controlplane"`, `"method":"UpdateVaultProperties"`,
		`"outcome":"applied"`, `"etagBefore":"` + e0 + `"`, `"etagAfter":"` + e1 + `"`, `"outcome":"conflict"`, `"outcome":"refused"`,
		`oid=99999999-9999-9999-9999-999999999999`, `"after":{"networkAcls":`} {
		if !strings.Contains(logs, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
	if strings.Contains(logs, "eyJ") {
		t.Error("a token reached the log")
	}

	// A restart on the same state file enforces what was stored.
	in2 := r.start(t, "vault-restarted", r.config(statePath))
	if ok, _ := in2.check(t, tok, "192.0.2.1"); !ok {
		t.Fatal("a restarted vaultwall lost the stored rule")
	}
}

// TestWritesKeepTheDataPlaneReady: a write builds a new runtime, which
// borrows the running issuer's key source from the process's key store — no
// fetch, no moment without keys — so the data plane never stops being ready
// (gRPC health, which the front health-checks, never leaves SERVING) and the
// first check after the write is decided, not refused for want of keys.
func TestWritesKeepTheDataPlaneReady(t *testing.T) {
	r := newRig(t)
	in := r.start(t, "vault", r.config(fileStore(r, "state.json")))
	c := in.client(t, r, nil)
	ctx := bearer(t.Context(), r.adminToken("Vault.Admin"))
	tok := r.is.MintValid()
	fetches := r.is.JWKSFetches()
	v, err := c.GetVault(ctx, &v1.GetVaultRequest{})
	if err != nil {
		t.Fatal(err)
	}
	etag := v.GetVault().GetEtag()
	ipMask := &fieldmaskpb.FieldMask{Paths: []string{"network_acls.ip_rules"}}
	for i, addr := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		up, err := c.UpdateVaultProperties(ctx, &v1.UpdateVaultPropertiesRequest{Etag: etag, UpdateMask: ipMask,
			Properties: &v1.VaultProperties{NetworkAcls: &v1.NetworkAcls{IpRules: []*v1.IpRule{{Value: "203.0.113.0/24"}, {Value: addr}}}}})
		if err != nil {
			t.Fatalf("write %d: %v", i+1, err)
		}
		etag = up.GetVault().GetEtag()
		if ok, body := in.check(t, tok, addr); !ok {
			t.Fatalf("write %d: the first check after it is refused: %s", i+1, body)
		}
	}
	if got := r.is.JWKSFetches(); got != fetches {
		t.Errorf("the writes fetched the issuer's keys %d times; a write must reuse the running key source", got-fetches)
	}
	logs := in.log.String()
	if n := strings.Count(logs, `"msg":"configuration loaded"`); n != 4 {
		t.Errorf("%d loads, want 4 (start and 3 writes)", n)
	}
	if strings.Contains(logs, "NOT_SERVING: not ready") {
		t.Errorf("gRPC health left SERVING during the writes:\n%s", logs)
	}
}

func TestExplainAndTrustedServices(t *testing.T) {
	r := newRig(t)
	in := r.start(t, "vault", r.config(fileStore(r, "state.json")))
	c := in.client(t, r, nil)
	ctx := bearer(t.Context(), r.adminToken("Vault.Reader"))
	req := fmt.Sprintf(`{"attributes":{"source":{"address":{"socketAddress":{"address":"192.0.2.77","portValue":1}}},
 "request":{"http":{"method":"GET","path":"/secrets/db?api-version=7.5","headers":{":path":"/secrets/db?api-version=7.5",":method":"GET","authorization":"Bearer %s"}}}}}`,
		r.is.MintValid())
	got, err := c.Explain(ctx, &v1.ExplainRequest{CheckRequest: &v1.ExplainRequest_CheckRequestJson{CheckRequestJson: req}})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetAllowed() || got.GetDecidedBy() != "firewall" || got.GetHttpStatus() != 403 || got.GetErrorCode() != "ForbiddenByFirewall" {
		t.Fatalf("explain: %v", got)
	}
	var stages []string
	for _, s := range got.GetSteps() {
		stages = append(stages, s.GetStage()+"="+s.GetOutcome())
	}
	if want := []string{"classify=pass", "authenticate=pass", "firewall=deny", "authorize=not reached"}; !slices.Equal(stages, want) {
		t.Fatalf("steps %v, want %v", stages, want)
	}
	if _, err := c.Explain(ctx, &v1.ExplainRequest{}); codeOf(err) != codes.InvalidArgument {
		t.Fatalf("explain without a request: %v", err)
	}
	ts, err := c.ListTrustedServices(ctx, &v1.ListTrustedServicesRequest{})
	if err != nil || len(ts.GetTrustedServices()) < 10 {
		t.Fatalf("trusted services: %d %v", len(ts.GetTrustedServices()), err)
	}
}

// TestReplicasConvergeThroughEtcd runs two vaultwall instances on one real
// etcd: a rule written through one is enforced by the other (the latencies
// are logged: ~5–45 ms, as the README says), and a write with an etag read
// before another replica's write is refused. The test waits up to
// convergeWithin: a bound that holds under -race on a busy 2-core machine,
// so it fails when replication is broken, not when the machine is slow.
const convergeWithin = 10 * time.Second

func TestReplicasConvergeThroughEtcd(t *testing.T) {
	r := newRig(t)
	etcd := etcdtest.Start(t)
	storeYAML := fmt.Sprintf("{type: etcd, endpoints: [%q], keyPrefix: /vaultwall/test/}", etcd.Endpoint)
	a := r.start(t, "replica-a", r.config(storeYAML))
	b := r.start(t, "replica-b", r.config(storeYAML))
	ca, cb := a.client(t, r, nil), b.client(t, r, nil)
	ctx := bearer(t.Context(), r.adminToken("Vault.Admin"))
	tok := r.is.MintValid()

	stale, err := cb.GetVault(ctx, &v1.GetVaultRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ipRules := []*v1.IpRule{{Value: "203.0.113.0/24"}}
	var latencies []time.Duration
	for i := 1; i <= 5; i++ {
		addr := fmt.Sprintf("192.0.2.%d", i)
		if ok, _ := b.check(t, tok, addr); ok {
			t.Fatalf("%s passes replica B before any rule", addr)
		}
		cur, err := ca.GetVault(ctx, &v1.GetVaultRequest{})
		if err != nil {
			t.Fatal(err)
		}
		ipRules = append(ipRules, &v1.IpRule{Value: addr})
		if _, err := ca.UpdateVaultProperties(ctx, &v1.UpdateVaultPropertiesRequest{Etag: cur.GetVault().GetEtag(),
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"network_acls.ip_rules"}},
			Properties: &v1.VaultProperties{NetworkAcls: &v1.NetworkAcls{IpRules: ipRules}}}); err != nil {
			t.Fatal(err)
		}
		acked := time.Now()
		for {
			if ok, _ := b.check(t, tok, addr); ok {
				latencies = append(latencies, time.Since(acked))
				break
			}
			if time.Since(acked) > convergeWithin {
				t.Fatalf("replica B does not enforce %s %v after replica A acknowledged it", addr, convergeWithin)
			}
			time.Sleep(time.Millisecond)
		}
	}
	sorted := slices.Clone(latencies)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	t.Logf("convergence A→B after the write was acknowledged: %v (median %v, max %v)", latencies, sorted[len(sorted)/2], sorted[len(sorted)-1])

	// B's etag is from before A's writes: refused, nothing changes.
	_, err = cb.UpdateVaultProperties(ctx, &v1.UpdateVaultPropertiesRequest{Etag: stale.GetVault().GetEtag(),
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"public_network_access"}},
		Properties: &v1.VaultProperties{PublicNetworkAccess: v1.PublicNetworkAccess_PUBLIC_NETWORK_ACCESS_DISABLED}})
	if codeOf(err) != codes.Aborted {
		t.Fatalf("stale etag on replica B: %v", err)
	}
	if ok, _ := a.check(t, tok, "192.0.2.1"); !ok {
		t.Fatal("the refused write changed something")
	}
	// A write through B reaches A.
	cur, _ := cb.GetVault(ctx, &v1.GetVaultRequest{})
	if _, err := cb.UpdateVaultProperties(ctx, &v1.UpdateVaultPropertiesRequest{Etag: cur.GetVault().GetEtag(),
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"public_network_access"}},
		Properties: &v1.VaultProperties{PublicNetworkAccess: v1.PublicNetworkAccess_PUBLIC_NETWORK_ACCESS_DISABLED}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(convergeWithin)
	for {
		ok, body := a.check(t, tok, "192.0.2.1")
		if !ok && strings.Contains(body, "ForbiddenByConnection") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica A does not apply B's write within %v: ok=%v %s", convergeWithin, ok, body)
		}
		time.Sleep(time.Millisecond)
	}
}

func errorInfo(t *testing.T, err error) *errdetails.ErrorInfo {
	t.Helper()
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	t.Fatalf("no ErrorInfo in %v", err)
	return nil
}

func violations(t *testing.T, err error) []string {
	t.Helper()
	var out []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, v.GetField())
			}
		}
	}
	if out == nil {
		t.Fatalf("no BadRequest in %v", err)
	}
	return out
}

var _ = errors.New
