package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/route"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/envoy"
)

// TestRoutingTableGolden proves every row of Key Vault's data-plane REST
// table end to end: each route's example request goes through the real
// in-process path twice — on an access-policy vault where the caller holds
// exactly the row's permission, and on an RBAC vault where the caller's
// only role allows exactly the row's data action — and both must allow it,
// as the operation testdata/decisions/routing-table.golden names. A request
// for any other permission or action would be refused, so a wrong row
// cannot pass. -update rewrites the file.
func TestRoutingTableGolden(t *testing.T) {
	is := authztest.NewIssuer(t)
	is.Now = func() time.Time { return goldenNow }
	keys := token.NewKeyStore(token.StoreOptions{HTTPClient: is.HTTPClient(), Now: func() time.Time { return goldenNow }})
	t.Cleanup(func() { keys.Close() })
	b := &Builder{Keys: keys, Now: func() time.Time { return goldenNow }}
	tok := is.MintValid()

	build := func(t *testing.T, props string) *envoy.Server {
		t.Helper()
		cfg, err := config.Parse("routing.yaml", []byte(fmt.Sprintf(`
vault: {name: contoso-vault, tenantId: %s, location: westeurope}
properties:
%s
identity:
  issuers: [{issuer: %q, discovery: true}]
`, is.Tenant(), props, is.Issuer())))
		if err != nil {
			t.Fatal(err)
		}
		rt, err := b.Build(t.Context(), cfg)
		if err != nil {
			t.Fatal(cfg.Annotate(err))
		}
		t.Cleanup(rt.Close)
		if err := rt.Authenticator.WaitReady(t.Context()); err != nil {
			t.Fatal(err)
		}
		srv := envoy.NewServer(nil, nil)
		srv.SetPipeline(rt.Pipeline)
		return srv
	}
	decide := func(t *testing.T, srv *envoy.Server, r route.Route) *authz.Decision {
		t.Helper()
		path := r.Example() + "?api-version=7.5"
		h := map[string]string{":method": r.Method, ":path": path, ":authority": "contoso-vault.vault.azure.net"}
		if !r.Anonymous {
			h["authorization"] = "Bearer " + tok
		}
		d := srv.Decide(t.Context(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
				SocketAddress: &corev3.SocketAddress{Address: "203.0.113.10", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 443}}}}},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: r.Method, Path: path, Headers: h}},
		}})
		if resp := envoy.ResponseFrom(d.Response()); (resp.GetOkResponse() != nil) != d.Allowed {
			t.Fatalf("%s %s: response and decision disagree", r.Method, path)
		}
		return d
	}
	outcome := func(d *authz.Decision) string {
		if d.Allowed {
			return "allowed"
		}
		return fmt.Sprintf("DENIED %d %s", d.Denial.Status, d.Denial.ErrorCode())
	}

	var lines []string
	lines = append(lines, "# Every row of Key Vault's data-plane REST table through the real in-process path.",
		"# METHOD example-path → operation | access policy granting only <family>/<permission> | RBAC role allowing only <data action>")
	for _, r := range route.Table() {
		var ap, rbac string
		if r.Anonymous {
			ap = outcome(decide(t, build(t, "  accessPolicies: []"), r))
		} else {
			srv := build(t, fmt.Sprintf("  accessPolicies: [{tenantId: %s, objectId: %s, permissions: {%s: [%s]}}]",
				is.Tenant(), authztest.DefaultObjectID, r.Resource, r.Permission))
			ap = outcome(decide(t, srv, r))
			srv = build(t, fmt.Sprintf(`  enableRbacAuthorization: true
  roleDefinitions: [{id: only-this, roleName: Only This, dataActions: [%q]}]
  roleAssignments: [{principalId: %s, roleDefinitionId: only-this}]`, r.DataAction, authztest.DefaultObjectID))
			rbac = outcome(decide(t, srv, r))
		}
		d := decide(t, build(t, "  accessPolicies: []"), r)
		op := d.Operation
		if r.Anonymous {
			lines = append(lines, fmt.Sprintf("%s %s → %s | without a token or any permission: %s", r.Method, r.Example(), op.Name, ap))
			if ap != "allowed" {
				t.Errorf("%s %s: %s", r.Method, r.Example(), ap)
			}
			continue
		}
		lines = append(lines, fmt.Sprintf("%s %s → %s | %s/%s: %s | %s: %s",
			r.Method, r.Example(), op.Name, op.Resource, op.Permission, ap, strings.TrimPrefix(op.DataAction, authz.DataActionPrefix), rbac))
		if ap != "allowed" || rbac != "allowed" {
			t.Errorf("%s %s: access policy %s, RBAC %s; both must allow", r.Method, r.Example(), ap, rbac)
		}
	}
	got := strings.Join(lines, "\n") + "\n"
	file := filepath.Join("testdata", "decisions", "routing-table.golden")
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != got {
		t.Errorf("routing table differs from %s (run with -update after checking):\n%s", file, diffLines(string(want), got))
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			fmt.Fprintf(&b, "-%s\n+%s\n", a, c)
		}
	}
	return b.String()
}
