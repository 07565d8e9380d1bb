package controlplane

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/vaultwall/vaultwall/authz/authztest"
	v1 "github.com/vaultwall/vaultwall/controlplane/api/vaultwall/v1"
)

// admin is a context carrying a verified admin certificate.
func admin(t *testing.T) context.Context {
	t.Helper()
	cert := authztest.NewTestCA(t).Issue(authztest.CertOptions{URIs: []string{adminID}}).Cert
	return withCert(t.Context(), cert, true)
}

// call runs one RPC through the interceptor, as gRPC would.
func call[Req, Resp any](ctx context.Context, s *Server, name string, req Req, h func(context.Context, Req) (Resp, error)) (Resp, error) {
	var zero Resp
	out, err := s.unary(ctx, req, &grpc.UnaryServerInfo{FullMethod: "/vaultwall.v1.VaultAdminService/" + name},
		func(ctx context.Context, r any) (any, error) { return h(ctx, r.(Req)) })
	if err != nil {
		return zero, err
	}
	return out.(Resp), nil
}

func getVault(t *testing.T, s *Server) *v1.Vault {
	t.Helper()
	resp, err := call(admin(t), s, "GetVault", &v1.GetVaultRequest{}, s.GetVault)
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetVault()
}

func updatePolicies(ctx context.Context, s *Server, kind v1.AccessPolicyUpdateKind, etag string, aps ...*v1.AccessPolicy) (*v1.UpdateAccessPoliciesResponse, error) {
	return call(ctx, s, "UpdateAccessPolicies", &v1.UpdateAccessPoliciesRequest{Kind: kind, Etag: etag, AccessPolicies: aps}, s.UpdateAccessPolicies)
}

const (
	kindAdd     = v1.AccessPolicyUpdateKind_ACCESS_POLICY_UPDATE_KIND_ADD
	kindRemove  = v1.AccessPolicyUpdateKind_ACCESS_POLICY_UPDATE_KIND_REMOVE
	kindReplace = v1.AccessPolicyUpdateKind_ACCESS_POLICY_UPDATE_KIND_REPLACE
)

// TestAccessPolicyTenant: an entry naming another tenant is refused, on
// add and remove alike, and the vault-tenant entry with the same objectId
// keeps exactly what it had.
func TestAccessPolicyTenant(t *testing.T) {
	s, _ := testServer(t)
	ctx := admin(t)
	for _, kind := range []v1.AccessPolicyUpdateKind{kindAdd, kindRemove, kindReplace} {
		t.Run(kind.String(), func(t *testing.T) {
			v := getVault(t, s)
			_, err := updatePolicies(ctx, s, kind, v.GetEtag(), &v1.AccessPolicy{TenantId: otherTenant, ObjectId: testOID,
				Permissions: &v1.Permissions{Secrets: []string{"get", "list", "delete"}}})
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "tenant_id") {
				t.Fatalf("another tenant's entry: %v, want InvalidArgument naming tenant_id", err)
			}
			after := getVault(t, s)
			aps := after.GetProperties().GetAccessPolicies()
			if after.GetEtag() != v.GetEtag() || len(aps) != 1 || strings.Join(aps[0].GetPermissions().GetSecrets(), ",") != "get" {
				t.Fatalf("the vault-tenant entry changed: %v", aps)
			}
		})
	}
	// The vault's own tenant, in any case, is accepted.
	v := getVault(t, s)
	if _, err := updatePolicies(ctx, s, kindAdd, v.GetEtag(), &v1.AccessPolicy{TenantId: strings.ToUpper(testTenant), ObjectId: testOID,
		Permissions: &v1.Permissions{Secrets: []string{"list"}}}); err != nil {
		t.Fatalf("the vault's tenant: %v", err)
	}
}

// TestAccessPolicyLimitFirst: a request with more entries than
// limits.maxAccessPolicies is refused on its size, before any entry is
// converted or merged (the field is the request's, not the merged
// configuration's), and nothing is stored.
func TestAccessPolicyLimitFirst(t *testing.T) {
	s, rec := testServer(t)
	v := getVault(t, s)
	aps := make([]*v1.AccessPolicy, 4097)
	for i := range aps {
		aps[i] = &v1.AccessPolicy{ObjectId: fmt.Sprintf("00000000-0000-0000-0000-%012d", i), Permissions: &v1.Permissions{Secrets: []string{"get"}}}
	}
	_, err := updatePolicies(admin(t), s, kindAdd, v.GetEtag(), aps...)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "access_policies: 4097 entries, the limit is 1024") {
		t.Fatalf("4097 entries: %v", err)
	}
	if after := getVault(t, s); after.GetEtag() != v.GetEtag() {
		t.Fatal("something was stored")
	}
	last := rec.all()[len(rec.all())-1]
	if last.Outcome != "refused" || len(last.After) != 0 {
		t.Fatalf("audit: %+v", last)
	}
}

func createAssignment(ctx context.Context, s *Server, ra *v1.RoleAssignment) (*v1.CreateRoleAssignmentResponse, error) {
	return call(ctx, s, "CreateRoleAssignment", &v1.CreateRoleAssignmentRequest{Etag: "*", RoleAssignment: ra}, s.CreateRoleAssignment)
}

// TestRoleAssignmentScopes: a scope naming another vault — even one whose
// name extends this vault's, so that a string prefix would match — is
// refused, as is a scope without its leading "/"; the vault's own ARM id,
// as a whole path, is stripped.
func TestRoleAssignmentScopes(t *testing.T) {
	s, _ := testServer(t)
	ctx := admin(t)
	vaultID := getVault(t, s).GetResourceId()
	const principal = "5a5a5a5a-0000-4000-8000-00000000000a"
	for _, scope := range []string{
		vaultID + "keys/db", // the vault "contoso-vaultkeys", path /db: was stored as this vault's /keys/db
		vaultID + "2/secrets/db",
		strings.Replace(vaultID, "contoso-vault", "fabrikam-vault", 1) + "/keys/db",
		"/subscriptions/other/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso-vault/keys/db",
		"keys/db", "secrets/db", " /keys/db",
	} {
		_, err := createAssignment(ctx, s, &v1.RoleAssignment{PrincipalId: principal, RoleDefinitionId: "Key Vault Crypto User", Scope: scope})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("scope %q: %v, want InvalidArgument", scope, err)
		}
	}
	if n := len(getVault(t, s).GetProperties().GetRoleAssignments()); n != 0 {
		t.Fatalf("%d assignments stored", n)
	}
	for i, tc := range []struct{ scope, want string }{
		{vaultID + "/keys/db", "/keys/db"}, {strings.ToUpper(vaultID), "/"}, {"/", "/"}, {"", "/"},
	} {
		scope, want := tc.scope, tc.want
		resp, err := createAssignment(ctx, s, &v1.RoleAssignment{PrincipalId: fmt.Sprintf("5a5a5a5a-0000-4000-8000-%012d", i),
			RoleDefinitionId: "Key Vault Crypto User", Scope: scope})
		if err != nil {
			t.Fatalf("scope %q: %v", scope, err)
		}
		if got := resp.GetRoleAssignment().GetScope(); got != want {
			t.Errorf("scope %q stored as %q, want %q", scope, got, want)
		}
	}
	if _, err := call(ctx, s, "ListRoleAssignments", &v1.ListRoleAssignmentsRequest{Scope: "keys/db"}, s.ListRoleAssignments); status.Code(err) != codes.InvalidArgument {
		t.Errorf("list with a scope without its /: %v", err)
	}
}

// TestWriteIdentifiersAreGUIDs: objectId, applicationId, principalId and an
// assignment id given by the caller are GUIDs, as in Key Vault.
func TestWriteIdentifiersAreGUIDs(t *testing.T) {
	s, _ := testServer(t)
	ctx := admin(t)
	perms := &v1.Permissions{Secrets: []string{"get"}}
	for name, ap := range map[string]*v1.AccessPolicy{
		"object_id":      {ObjectId: "alice", Permissions: perms},
		"object_id ":     {ObjectId: testOID + " ", Permissions: perms},
		"application_id": {ObjectId: testOID, ApplicationId: "my-app", Permissions: perms},
	} {
		if _, err := updatePolicies(ctx, s, kindAdd, "*", ap); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), strings.TrimSpace(name)) {
			t.Errorf("%s not a GUID: %v", name, err)
		}
	}
	for name, ra := range map[string]*v1.RoleAssignment{
		"principal_id": {PrincipalId: "p1", RoleDefinitionId: "Key Vault Secrets User"},
		"id":           {Id: "ra-1", PrincipalId: testOID, RoleDefinitionId: "Key Vault Secrets User"},
	} {
		if _, err := createAssignment(ctx, s, ra); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "role_assignment."+name) {
			t.Errorf("%s not a GUID: %v", name, err)
		}
	}
	v := getVault(t, s)
	if len(v.GetProperties().GetAccessPolicies()) != 1 || len(v.GetProperties().GetRoleAssignments()) != 0 {
		t.Fatalf("something was stored: %v", v.GetProperties())
	}
}

// TestIPRulesCanonical: IP rule values are stored as config reads them:
// whitespace and newlines around a value, IPv4-mapped and upper-case IPv6
// spellings are canonicalised; what config refuses is refused.
func TestIPRulesCanonical(t *testing.T) {
	s, _ := testServer(t)
	ctx := admin(t)
	patch := func(values ...string) (*v1.UpdateVaultPropertiesResponse, error) {
		var rules []*v1.IpRule
		for _, v := range values {
			rules = append(rules, &v1.IpRule{Value: v})
		}
		return call(ctx, s, "UpdateVaultProperties", &v1.UpdateVaultPropertiesRequest{Etag: "*",
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"network_acls.ip_rules"}},
			Properties: &v1.VaultProperties{NetworkAcls: &v1.NetworkAcls{IpRules: rules}}}, s.UpdateVaultProperties)
	}
	resp, err := patch(" 192.0.2.1 ", "198.51.100.0/24\n", "::ffff:203.0.113.7", "2001:DB8::/32")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range resp.GetVault().GetProperties().GetNetworkAcls().GetIpRules() {
		got = append(got, r.GetValue())
	}
	if want := []string{"192.0.2.1", "198.51.100.0/24", "203.0.113.7", "2001:db8::/32"}; !slices.Equal(got, want) {
		t.Fatalf("stored %q, want %q", got, want)
	}
	snap, err := s.Store().Get(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range snap.State.NetworkAcls.IPRules {
		if strings.TrimSpace(r.Value) != r.Value {
			t.Fatalf("the store holds %q", r.Value)
		}
	}
	for _, bad := range []string{"192.0.2.1\n198.51.100.1", "192.0.2.300", "192.0.2.1/24", ""} {
		if _, err := patch(bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%q: %v, want InvalidArgument", bad, err)
		}
	}
}
