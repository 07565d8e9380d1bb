package rego_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/rego"
)

// Identities of the tests (the Rego fixtures use the same ones).
const (
	otherTenant = "99999999-0000-0000-0000-000000000009"
	otherApp    = "a9900000-0000-4000-8000-000000000002"
	backendSP   = "5e000000-0000-4000-8000-000000000001"
	backendApp  = "a9900000-0000-4000-8000-000000000003"
	opsGroup    = "9a000000-0000-4000-8000-000000000001"
	devGroup    = "9a000000-0000-4000-8000-000000000002"
)

const vaultHead = `
vault:
  name: contoso
  tenantId: 00000000-0000-0000-0000-000000000001
  location: westeurope
  subscriptionId: 00000000-0000-0000-0000-00000000000a
  resourceGroup: rg
`

// load parses a configuration the way vaultwall does, so that the policy
// sees config.Load's normalized values.
func load(t testing.TB, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("vault.yaml", []byte(vaultHead+yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func newPolicy(t testing.TB, cfg *config.Config, opts ...rego.Option) *rego.Policy {
	t.Helper()
	p, err := rego.New(t.Context(), cfg, opts...)
	if err != nil {
		t.Fatalf("rego.New: %v", err)
	}
	return p
}

// Callers.
func user(groups ...string) *authz.Caller {
	c := &authz.Caller{Issuer: "https://sts.windows.net/" + tenant + "/", TenantID: tenant, ObjectID: alice,
		ApplicationID: webApp, IdentityType: "user", Groups: groups, Scopes: []string{"user_impersonation"},
		Claims: map[string]any{"amr": []any{"pwd", "mfa"}, "oid": alice}, Expires: tokenExp}
	c.Seal()
	return c
}

func app() *authz.Caller {
	c := &authz.Caller{Issuer: "https://sts.windows.net/" + tenant + "/", TenantID: tenant, ObjectID: backendSP,
		ApplicationID: backendApp, IdentityType: "app", AppIDACR: "2", Expires: tokenExp}
	c.Seal()
	return c
}

func with(c *authz.Caller, f func(*authz.Caller)) *authz.Caller {
	cp := *c
	f(&cp)
	cp.Seal()
	return &cp
}

// Operations, as the classifier makes them (keyvault-spec §6).
func op(resource, permission, action, object string) authz.Operation {
	o := authz.Operation{Plane: authz.PlaneData, Resource: resource, Permission: permission,
		DataAction: authz.DataActionPrefix + action, Object: object, Method: "GET", APIVersion: "7.5"}
	if object != "" {
		o.Scope = "/" + resource + "/" + object
	}
	return o
}

var (
	getSecret    = op("secrets", "get", "secrets/getSecret/action", "db")
	listSecrets  = op("secrets", "list", "secrets/readMetadata/action", "")
	setSecret    = op("secrets", "set", "secrets/setSecret/action", "db")
	purgeSecret  = op("secrets", "purge", "secrets/purge/action", "db")
	getKey       = op("keys", "get", "keys/read", "k1")
	wrapKey      = op("keys", "wrapKey", "keys/wrap/action", "k1")
	signKey      = op("keys", "sign", "keys/sign/action", "k1")
	getCert      = op("certificates", "get", "certificates/read", "web")
	deleteCert   = op("certificates", "delete", "certificates/delete", "web")
	setIssuer    = authz.Operation{Plane: authz.PlaneData, Resource: "certificates", Permission: "setissuers", DataAction: authz.DataActionPrefix + "certificatecas/write", Object: "digicert"}
	getOtherSecr = op("secrets", "get", "secrets/getSecret/action", "other")
)

var monday10 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC) // 10:00 in Amsterdam

// tokenExp is the test callers' token expiry: a month after monday10, so
// their verdicts may be cached.
var tokenExp = monday10.AddDate(0, 1, 0)

func decision(cfg *config.Config, c *authz.Caller, o authz.Operation) *authz.Decision {
	v := cfg.AuthzVault()
	return &authz.Decision{ID: "test", Time: monday10, Vault: &v, Caller: c, Operation: o,
		Request: &authz.Request{Method: o.Method, Path: "/" + o.Resource, Host: "contoso.vault.azure.net", Scheme: "https",
			Headers: map[string]string{"authorization": "Bearer secret-token", "user-agent": "test"}},
		Network: authz.NetworkVerdict{Connection: authz.Connection{ClientAddr: netip.MustParseAddr("198.51.100.7")},
			Evaluated: true, Allowed: true, AuthType: authz.AddrPublicIP, Rule: "defaultAction=Allow"}}
}

type want struct {
	allowed bool
	code    string
	rule    string
}

func check(t *testing.T, p *rego.Policy, d *authz.Decision, w want) authz.AuthzVerdict {
	t.Helper()
	v, err := p.Authorize(t.Context(), d)
	if err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	// Asked again (from the decision cache when the policy has one), the
	// answer is the same.
	if again, err := p.Authorize(t.Context(), d); err != nil || again != v {
		t.Fatalf("asked again: %+v, %v; first %+v", again, err, v)
	}
	if v.Allowed != w.allowed || v.Code != w.code || (w.rule != "" && v.Rule != w.rule) {
		t.Fatalf("verdict = %+v, want allowed=%v code=%q rule=%q", v, w.allowed, w.code, w.rule)
	}
	if v.Reason == "" {
		t.Errorf("verdict has no reason: %+v", v)
	}
	return v
}

const accessPolicies = `
properties:
  accessPolicies:
    - {tenantId: 00000000-0000-0000-0000-000000000001, objectId: 5e000000-0000-4000-8000-000000000001, permissions: {secrets: [Get, List], keys: [wrapKey]}}
    - {tenantId: 00000000-0000-0000-0000-000000000001, objectId: A11CE000-0000-4000-8000-000000000001, applicationId: a9900000-0000-4000-8000-000000000001, permissions: {secrets: [set]}}
    - {tenantId: 00000000-0000-0000-0000-000000000001, objectId: 9a000000-0000-4000-8000-000000000001, permissions: {secrets: [get], certificates: [manageissuers]}}
    - {tenantId: 00000000-0000-0000-0000-000000000001, objectId: a11ce000-0000-4000-8000-000000000001, permissions: {keys: [all]}}
`

func TestAuthorizeAccessPolicies(t *testing.T) {
	cfg := load(t, accessPolicies)
	p := newPolicy(t, cfg)
	denied := want{code: authz.CodeAccessDenied}
	tests := []struct {
		name string
		c    *authz.Caller
		op   authz.Operation
		want want
	}{
		{"app-only entry grants its application", app(), getSecret, want{true, "", "accessPolicies[0]"}},
		{"permissions compare case-insensitively", app(), listSecrets, want{true, "", "accessPolicies[0]"}},
		{"app-only entry lacks the permission", app(), setSecret, denied},
		{"wrapKey from the config matches wrapKey", app(), wrapKey, want{true, "", "accessPolicies[0]"}},
		{"compound identity: the user through its application", user(), setSecret, want{true, "", "accessPolicies[1]"}},
		{"compound identity: not through another application", with(user(), func(c *authz.Caller) { c.ApplicationID = otherApp }), setSecret, denied},
		{"compound identity: not the application alone", with(app(), func(c *authz.Caller) { c.ApplicationID = webApp }), setSecret, denied},
		{"group entry grants a member", user(devGroup, opsGroup), getSecret, want{true, "", "accessPolicies[2]"}},
		{"group entry: not a non-member", user(devGroup), getSecret, denied},
		{"group entry: not on a groups overage", with(user(), func(c *authz.Caller) { c.GroupsOverage = true }), getSecret, denied},
		{"manageissuers covers setissuers", user(opsGroup), setIssuer, want{true, "", "accessPolicies[2]"}},
		{"user-only entry: all covers every key permission", user(), signKey, want{true, "", "accessPolicies[3]"}},
		{"user-only entry: all stays in its family", user(), getCert, denied},
		{"union of a user entry and a group entry", user(opsGroup), wrapKey, want{true, "", "accessPolicies[3]"}},
		{"caller from another tenant", with(app(), func(c *authz.Caller) { c.TenantID = otherTenant }), getSecret, denied},
		{"unknown caller", with(app(), func(c *authz.Caller) { c.ObjectID = "5e000000-0000-4000-8000-0000000000ff" }), getSecret, denied},
		{"control plane", app(), authz.Operation{Plane: authz.PlaneControl, Name: "VaultGet"}, want{code: authz.CodeForbiddenByPolicy}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := check(t, p, decision(cfg, tt.c, tt.op), tt.want)
			if v.Model != authz.ModelAccessPolicy {
				t.Errorf("model = %q", v.Model)
			}
			if v.AccessPolicyMatch != tt.want.allowed {
				t.Errorf("access_policy_match = %v, want %v", v.AccessPolicyMatch, tt.want.allowed)
			}
			if v.AssignmentID != "" {
				t.Errorf("assignment id %q under access policies", v.AssignmentID)
			}
		})
	}
}

const rbac = `
properties:
  enableRbacAuthorization: true
  accessPolicies:
    - {tenantId: 00000000-0000-0000-0000-000000000001, objectId: 5e000000-0000-4000-8000-000000000001, permissions: {secrets: [all]}}
  roleDefinitions:
    - id: c0570000-0000-4000-8000-000000000001
      roleName: Secrets without purge
      dataActions: ["Microsoft.KeyVault/vaults/secrets/*"]
      notDataActions: [secrets/purge/action]
  roleAssignments:
    - {id: ra-reader, principalId: 5e000000-0000-4000-8000-000000000001, roleDefinitionId: Key Vault Reader}
    - {id: ra-db, principalId: 5e000000-0000-4000-8000-000000000001, roleDefinitionId: 4633458b-17de-408a-b874-0445c86b69e6, scope: /secrets/DB}
    - {id: ra-ops, principalId: 9a000000-0000-4000-8000-000000000001, roleDefinitionId: "/subscriptions/00000000-0000-0000-0000-00000000000a/providers/Microsoft.Authorization/roleDefinitions/14b46e9e-c2b7-41b4-b07b-48a6ebf60603"}
    - {id: ra-custom, principalId: a11ce000-0000-4000-8000-000000000001, roleDefinitionId: Secrets without purge, scope: /subscriptions/00000000-0000-0000-0000-00000000000a/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso}
    - {id: ra-cert, principalId: a11ce000-0000-4000-8000-000000000001, roleDefinitionId: Key Vault Certificate User, scope: /certificates/web}
`

func TestAuthorizeRBAC(t *testing.T) {
	cfg := load(t, rbac)
	p := newPolicy(t, cfg)
	denied := want{code: authz.CodeForbiddenByRbac}
	tests := []struct {
		name       string
		c          *authz.Caller
		op         authz.Operation
		want       want
		assignment string
	}{
		{"reader reads a key", app(), getKey, want{true, "", "roleAssignments[0]"}, "ra-reader"},
		{"reader lists secrets", app(), listSecrets, want{true, "", "roleAssignments[0]"}, "ra-reader"},
		{"reader reads no secret value outside its object scope", app(), getOtherSecr, denied, ""},
		{"object-scoped secrets user reads its secret (names ignore case)", app(), getSecret, want{true, "", "roleAssignments[1]"}, "ra-db"},
		{"access policies are ignored under RBAC", app(), setSecret, denied, ""},
		{"group assignment by role-definition ARM id", user(opsGroup), wrapKey, want{true, "", "roleAssignments[2]"}, "ra-ops"},
		{"custom role at the vault's ARM id", user(), setSecret, want{true, "", "roleAssignments[3]"}, "ra-custom"},
		{"notDataActions subtract", user(), purgeSecret, denied, ""},
		{"object-scoped certificate user", user(), getCert, want{true, "", "roleAssignments[4]"}, "ra-cert"},
		{"certificate user cannot delete", user(), deleteCert, denied, ""},
		{"no compound identity under RBAC", with(user(), func(c *authz.Caller) { c.ObjectID = webApp }), getKey, denied, ""},
		{"caller from another tenant", with(app(), func(c *authz.Caller) { c.TenantID = otherTenant }), getKey, denied, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := check(t, p, decision(cfg, tt.c, tt.op), tt.want)
			if v.Model != authz.ModelRBAC || v.AssignmentID != tt.assignment || v.AccessPolicyMatch {
				t.Errorf("verdict = %+v, want model rbac, assignment %q", v, tt.assignment)
			}
			if !tt.want.allowed && v.DecisionReason != "DeniedWithNoValidRBAC" {
				t.Errorf("decision reason = %q", v.DecisionReason)
			}
		})
	}
}

// Every built-in role on an operation it permits and one it forbids, through
// the Go path (the Rego tests cover the same table in more detail).
func TestBuiltinRoles(t *testing.T) {
	tests := []struct {
		role                 string
		permitted, forbidden authz.Operation
	}{
		{"Key Vault Administrator", purgeSecret, authz.Operation{Plane: authz.PlaneData, Resource: "storage", DataAction: "Microsoft.Storage/storageAccounts/read"}},
		{"Key Vault Reader", getKey, getSecret},
		{"Key Vault Secrets Officer", purgeSecret, getKey},
		{"Key Vault Secrets User", getSecret, setSecret},
		{"Key Vault Crypto Officer", op("keys", "purge", "keys/purge/action", "k1"), getSecret},
		{"Key Vault Crypto User", signKey, op("keys", "delete", "keys/delete", "k1")},
		{"Key Vault Crypto Service Encryption User", wrapKey, signKey},
		{"Key Vault Crypto Service Release User", op("keys", "release", "keys/release/action", "k1"), getKey},
		{"Key Vault Certificates Officer", setIssuer, getSecret},
		{"Key Vault Certificate User", getCert, deleteCert},
		{"Key Vault Contributor", authz.Operation{}, getSecret},
		{"Key Vault Data Access Administrator", authz.Operation{}, getKey},
	}
	if len(tests) != len(authz.BuiltinRoles) {
		t.Fatalf("%d roles tested, %d built in", len(tests), len(authz.BuiltinRoles))
	}
	for _, tt := range tests {
		t.Run(tt.role, func(t *testing.T) {
			cfg := load(t, `
properties:
  enableRbacAuthorization: true
  roleAssignments:
    - {principalId: `+backendSP+`, roleDefinitionId: `+tt.role+`}
`)
			p := newPolicy(t, cfg)
			if tt.permitted.Plane == authz.PlaneData && tt.permitted.DataAction != "" {
				check(t, p, decision(cfg, app(), tt.permitted), want{true, "", "roleAssignments[0]"})
			}
			check(t, p, decision(cfg, app(), tt.forbidden), want{code: authz.CodeForbiddenByRbac})
		})
	}
}

// Through the real pipeline, a verdict becomes Key Vault's 403 body.
func TestPipelineRefusals(t *testing.T) {
	tests := []struct {
		name, yaml, dir string
		c               *authz.Caller
		op              authz.Operation
		inner           string
		message         []string
	}{
		{"access denied", accessPolicies, "", app(), setSecret, authz.CodeAccessDenied, []string{
			"The user, group or application 'appid=" + backendApp + ";oid=" + backendSP + ";iss=https://sts.windows.net/" + tenant + "/' does not have secrets set permission on key vault 'contoso;location=westeurope'.",
		}},
		{"forbidden by rbac", rbac, "", app(), getOtherSecr, authz.CodeForbiddenByRbac, []string{
			"Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\n",
			"Resource: '/subscriptions/00000000-0000-0000-0000-00000000000a/resourcegroups/rg/providers/microsoft.keyvault/vaults/contoso/secrets/other'\r\n",
			"Assignment: (not found)\r\n", "DecisionReason: 'DeniedWithNoValidRBAC' \r\n",
		}},
		{"a shipped refusal stands beside an operator deny", accessPolicies, "examples/purge-mfa", with(app(), func(c *authz.Caller) { c.ObjectID = alice }), purgeSecret, authz.CodeAccessDenied, nil},
		{"operator deny over an allow", accessPolicies, "examples/business-hours", app(), getSecret, authz.CodeForbiddenByPolicy, []string{
			"Secrets can be read only on working days between 08:00 and 18:00 (Europe/Amsterdam).\r\nCaller: appid=",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := load(t, tt.yaml)
			p := newPolicy(t, cfg, rego.WithDir(tt.dir))
			pl := &authz.Pipeline{Vault: cfg.AuthzVault(), Classifier: classifier{tt.op}, Authenticator: authenticator{tt.c},
				Firewall: openFirewall{}, Policy: p, Now: func() time.Time { return time.Date(2026, 1, 4, 12, 0, 0, 0, time.UTC) }}
			d := pl.Decide(t.Context(), &authz.Request{Method: "GET", Path: "/x"})
			if d.Allowed || d.Denial == nil || d.Denial.Status != 403 || d.Denial.Inner != tt.inner {
				t.Fatalf("decision = allowed %v, denial %+v, err %v", d.Allowed, d.Denial, d.Err)
			}
			for _, m := range tt.message {
				if !strings.Contains(d.Denial.Message, m) {
					t.Errorf("message %q lacks %q", d.Denial.Message, m)
				}
			}
		})
	}
}

type classifier struct{ op authz.Operation }

func (c classifier) Classify(*authz.Request) (authz.Operation, *authz.Denial) { return c.op, nil }

type authenticator struct{ c *authz.Caller }

func (a authenticator) Authenticate(context.Context, *authz.Request, *authz.Operation) (*authz.Caller, *authz.Denial, error) {
	return a.c, nil, nil
}

type openFirewall struct{}

func (openFirewall) Connect(*authz.Request) authz.Connection { return authz.Connection{} }
func (openFirewall) Evaluate(d *authz.Decision) authz.NetworkVerdict {
	v := d.Network
	v.Allowed = true
	return v
}

func TestOperatorExamples(t *testing.T) {
	cfg := load(t, `
properties:
  accessPolicies:
    - {tenantId: 00000000-0000-0000-0000-000000000001, objectId: a11ce000-0000-4000-8000-000000000001, permissions: {secrets: [all]}}
`)
	at := func(d *authz.Decision, s string) *authz.Decision {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		d.Time = tm
		return d
	}
	hours := newPolicy(t, cfg, rego.WithDir("examples/business-hours"))
	check(t, hours, at(decision(cfg, user(), getSecret), "2026-01-05T09:00:00Z"), want{true, "", "accessPolicies[0]"})
	v := check(t, hours, at(decision(cfg, user(), getSecret), "2026-01-05T19:00:00Z"), want{false, authz.CodeForbiddenByPolicy, "data.vaultwall.operator.deny[business-hours]"})
	if !strings.Contains(v.Message, "working days") || !v.AccessPolicyMatch {
		t.Errorf("verdict = %+v", v)
	}
	check(t, hours, at(decision(cfg, user(), setSecret), "2026-01-04T12:00:00Z"), want{true, "", ""})

	mfa := newPolicy(t, cfg, rego.WithDir("examples/purge-mfa"))
	check(t, mfa, decision(cfg, user(), purgeSecret), want{true, "", ""})
	noMFA := with(user(), func(c *authz.Caller) { c.Claims = map[string]any{"amr": []any{"pwd"}} })
	check(t, mfa, decision(cfg, noMFA, purgeSecret), want{false, authz.CodeForbiddenByPolicy, "data.vaultwall.operator.deny[purge-mfa]"})
	check(t, mfa, decision(cfg, noMFA, getSecret), want{true, "", ""})
}

// A reload builds a new Policy; a bad one is refused and the running one
// keeps deciding.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	cfg := load(t, accessPolicies)
	cfg.Policy.Dir = dir
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ops.rego", "package vaultwall.operator\n\ndeny contains \"no wraps\" if input.operation.permission == \"wrapKey\"\n")
	p1 := newPolicy(t, cfg)
	check(t, p1, decision(cfg, app(), wrapKey), want{false, authz.CodeForbiddenByPolicy, ""})
	if got := p1.Files(); len(got) != 1 || got[0] != filepath.Join(dir, "ops.rego") {
		t.Errorf("files = %v", got)
	}

	write("ops.rego", "package vaultwall.operator\n\ndeny contains \"x\" if input.operation.plane == ]\n")
	if _, err := rego.New(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "ops.rego")+":3:") {
		t.Fatalf("reload of a broken file: %v", err)
	}
	check(t, p1, decision(cfg, app(), wrapKey), want{false, authz.CodeForbiddenByPolicy, ""})
	check(t, p1, decision(cfg, app(), getSecret), want{true, "", "accessPolicies[0]"})

	write("ops.rego", "package vaultwall.operator\n")
	p2 := newPolicy(t, cfg)
	check(t, p2, decision(cfg, app(), wrapKey), want{true, "", "accessPolicies[0]"})
}

// One Policy serves concurrent requests (run with -race).
func TestAuthorizeConcurrently(t *testing.T) {
	// A budget this machine's load (and -race) cannot exhaust: the test is
	// about sharing, not speed.
	cfg := load(t, accessPolicies+"policy: {timeout: 10s}\n")
	p := newPolicy(t, cfg, rego.WithDir("examples"))
	cases := []struct {
		d    *authz.Decision
		want bool
	}{
		{decision(cfg, app(), getSecret), true},
		{decision(cfg, app(), setSecret), false},
		{decision(cfg, user(opsGroup), getSecret), true},
		{decision(cfg, user(), setSecret), true},
		{decision(cfg, with(app(), func(c *authz.Caller) { c.TenantID = otherTenant }), getSecret), false},
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				c := cases[(g+i)%len(cases)]
				v, err := p.Authorize(t.Context(), c.d)
				if err != nil || v.Allowed != c.want {
					t.Errorf("case %d: %+v %v", (g+i)%len(cases), v, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
