package e2e_test

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/vaultwall/vaultwall/config"
	v1 "github.com/vaultwall/vaultwall/controlplane/api/vaultwall/v1"
	"github.com/vaultwall/vaultwall/e2e/internal/front"
)

// managementAudience is the control plane's token audience in these tests.
const managementAudience = "https://management.vaultwall.test"

// TestControlPlane is vaultwall's management API (VaultAdminService) on a
// vault whose firewall refuses the address the tests call from: the firewall
// never applies to the control plane, which has its own authorization
// (management-audience tokens, app roles, the control-plane policy), and a
// change made through it reaches the data plane at once.
func TestControlPlane(t *testing.T) {
	t.Parallel()
	s := newSystem(t, "contoso-admin", front.EnvoyL4, func(c *config.Config) {
		c.ControlPlane = config.ControlPlane{
			Enabled:    true,
			ListenAddr: "127.0.0.1:0",
			TLS:        config.ServerTLS{CertFile: c.Server.TLS.CertFile, KeyFile: c.Server.TLS.KeyFile},
			Audiences:  []string{managementAudience},
			Store:      config.Store{Path: filepath.Join(t.TempDir(), "vaultwall-state.json")},
		}
	})
	s.vault.SetSecret("db-password", "s3cr3t")
	get := "/secrets/db-password" + api
	cc, err := grpc.NewClient(s.vw.admin, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		ServerName: vaultwallName, RootCAs: s.authzCA.Pool(), MinVersion: tls.VersionTLS12,
	})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	admin := v1.NewVaultAdminServiceClient(cc)
	operator := principal{name: "operator", oid: "0e0e0e0e-1111-4222-8333-444444444444", appid: "e0e0e0e0-1111-4222-8333-444444444444"}
	mgmtToken := func(roles ...string) string {
		c := s.claims(operator, tenant)
		c["aud"] = managementAudience
		if len(roles) > 0 {
			c["roles"] = roles
		}
		return s.issuer.Mint(c)
	}
	as := func(tok string) context.Context {
		if tok == "" {
			return t.Context()
		}
		return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tok)
	}
	adminCtx := as(mgmtToken("Vault.Admin"))

	// The tests reach vaultwall from 127.0.0.1, which the vault's firewall
	// refuses on the data plane...
	s.do(t, req{path: get, from: addr("127.0.0.1"), as: &app}).
		wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("127.0.0.1", app))
	// ...and the management API answers from there.
	got, err := admin.GetVault(adminCtx, &v1.GetVaultRequest{})
	if err != nil {
		t.Fatalf("GetVault as an admin from 127.0.0.1: %v", err)
	}
	if v := got.GetVault(); v.GetName() != "contoso-admin" || v.GetEtag() == "" || v.GetProperties().GetNetworkAcls().GetDefaultAction() != v1.DefaultAction_DEFAULT_ACTION_DENY {
		t.Fatalf("GetVault = %v", v)
	}

	t.Run("its own authorization", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			ctx   context.Context
			write bool
			want  codes.Code
		}{
			{"no credentials", as(""), false, codes.Unauthenticated},
			{"a data-plane token", as(s.token(t, app)), false, codes.Unauthenticated},
			{"a management token without a role", as(mgmtToken()), false, codes.PermissionDenied},
			{"a reader reads", as(mgmtToken("Vault.Reader")), false, codes.OK},
			{"a reader cannot write", as(mgmtToken("Vault.Reader")), true, codes.PermissionDenied},
		} {
			var err error
			if tc.write {
				_, err = admin.UpdateVaultProperties(tc.ctx, &v1.UpdateVaultPropertiesRequest{
					Properties: &v1.VaultProperties{PublicNetworkAccess: v1.PublicNetworkAccess_PUBLIC_NETWORK_ACCESS_DISABLED},
					UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"public_network_access"}},
					Etag:       got.GetVault().GetEtag(),
				})
			} else {
				_, err = admin.GetVault(tc.ctx, &v1.GetVaultRequest{})
			}
			if status.Code(err) != tc.want {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			}
		}
	})

	t.Run("a reader and a data-plane token are refused on every write", func(t *testing.T) {
		// Every method of the service that is not one of these reads is a
		// write, taken from the service descriptor: a new RPC is covered
		// without touching this test (and one that is really a read must be
		// added here, on purpose).
		reads := map[string]bool{"GetVault": true, "ListRoleAssignments": true, "ListTrustedServices": true, "Explain": true, "ListVaults": true}
		before, err := admin.GetVault(adminCtx, &v1.GetVaultRequest{})
		if err != nil {
			t.Fatal(err)
		}
		sd := v1.File_vaultwall_v1_admin_proto.Services().ByName("VaultAdminService")
		writes := 0
		for i := range sd.Methods().Len() {
			m := sd.Methods().Get(i)
			if reads[string(m.Name())] {
				continue
			}
			writes++
			method := "/" + string(sd.FullName()) + "/" + string(m.Name())
			for _, who := range []struct {
				name string
				ctx  context.Context
				want codes.Code
			}{
				{"Vault.Reader", as(mgmtToken("Vault.Reader")), codes.PermissionDenied},
				{"a data-plane token", as(s.token(t, app)), codes.Unauthenticated},
				{"no credentials", as(""), codes.Unauthenticated},
			} {
				// An empty request: authorization comes before validation,
				// so even a request that would not validate is refused for
				// who sends it.
				err := cc.Invoke(who.ctx, method, dynamicpb.NewMessage(m.Input()), dynamicpb.NewMessage(m.Output()))
				if status.Code(err) != who.want {
					t.Errorf("%s as %s: %v, want %v", m.Name(), who.name, err, who.want)
				}
			}
		}
		if writes < 4 {
			t.Fatalf("%d write methods in %s; the descriptor walk found too few", writes, sd.FullName())
		}
		after, err := admin.GetVault(adminCtx, &v1.GetVaultRequest{})
		if err != nil || after.GetVault().GetEtag() != before.GetVault().GetEtag() {
			t.Errorf("the refused writes changed the vault: etag %q → %q (%v)", before.GetVault().GetEtag(), after.GetVault().GetEtag(), err)
		}
	})

	t.Run("a rule added through it takes effect on the data plane", func(t *testing.T) {
		s.do(t, req{path: get, from: addr("192.0.2.77"), as: &app}).
			wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("192.0.2.77", app))

		v := got.GetVault()
		rules := slices.Clone(v.GetProperties().GetNetworkAcls().GetIpRules())
		withRule := append(slices.Clone(rules), &v1.IpRule{Value: "192.0.2.77"})
		updated, err := admin.UpdateVaultProperties(adminCtx, &v1.UpdateVaultPropertiesRequest{
			Properties: &v1.VaultProperties{NetworkAcls: &v1.NetworkAcls{IpRules: withRule}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"network_acls.ip_rules"}},
			Etag:       v.GetEtag(),
		})
		if err != nil {
			t.Fatalf("adding an IP rule: %v", err)
		}
		if !slices.Contains(updated.GetVault().GetProperties().GetControlPlaneProperties(), "networkAcls") {
			t.Errorf("control_plane_properties %v, want networkAcls", updated.GetVault().GetProperties().GetControlPlaneProperties())
		}
		// Applied before the call returned.
		s.do(t, req{path: get, from: addr("192.0.2.77"), as: &app}).
			wantAllowed(t, 200, upstream{op: "SecretGet", caller: app, clientIP: "192.0.2.77"})

		// A write computed from a stale state is refused.
		_, err = admin.UpdateVaultProperties(adminCtx, &v1.UpdateVaultPropertiesRequest{
			Properties: &v1.VaultProperties{NetworkAcls: &v1.NetworkAcls{IpRules: rules}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"network_acls.ip_rules"}},
			Etag:       v.GetEtag(),
		})
		if status.Code(err) != codes.Aborted {
			t.Errorf("write with a stale etag: %v, want Aborted", err)
		}

		// An access policy granted through it, too.
		s.do(t, req{path: get, from: addr("203.0.113.10"), as: &nobody}).
			wantRefused(t, 403, "Forbidden", "AccessDenied", s.accessDeniedMessage(nobody, "secrets", "get"))
		after, err := admin.UpdateAccessPolicies(adminCtx, &v1.UpdateAccessPoliciesRequest{
			Kind:           v1.AccessPolicyUpdateKind_ACCESS_POLICY_UPDATE_KIND_ADD,
			AccessPolicies: []*v1.AccessPolicy{{ObjectId: nobody.oid, Permissions: &v1.Permissions{Secrets: []string{"get"}}}},
			Etag:           updated.GetVault().GetEtag(),
		})
		if err != nil {
			t.Fatalf("adding an access policy: %v", err)
		}
		s.do(t, req{path: get, from: addr("203.0.113.10"), as: &nobody}).
			wantAllowed(t, 200, upstream{op: "SecretGet", caller: nobody, clientIP: "203.0.113.10"})

		// And taken away.
		_, err = admin.UpdateVaultProperties(adminCtx, &v1.UpdateVaultPropertiesRequest{
			Properties: &v1.VaultProperties{NetworkAcls: &v1.NetworkAcls{IpRules: rules}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"network_acls.ip_rules"}},
			Etag:       after.GetVault().GetEtag(),
		})
		if err != nil {
			t.Fatalf("removing the IP rule: %v", err)
		}
		s.do(t, req{path: get, from: addr("192.0.2.77"), as: &app}).
			wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("192.0.2.77", app))
	})
}
