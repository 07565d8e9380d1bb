package controlplane

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vaultwall/vaultwall/authz/authztest"
	v1 "github.com/vaultwall/vaultwall/proto/vaultwall/v1"
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
