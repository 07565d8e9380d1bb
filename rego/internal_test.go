package rego

import (
	"errors"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	oparego "github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
)

func TestDecodeResultIsStrict(t *testing.T) {
	const allow = `"allowed": true, "model": "accessPolicy", "code": "", "rule": "accessPolicies[0]", "reason": "r", "message": "", "access_policy_match": true, "assignment_id": ""`
	const deny = `"allowed": false, "model": "rbac", "code": "ForbiddenByRbac", "rule": "", "reason": "r", "message": "", "access_policy_match": false`
	tests := []struct {
		name, value string
		ok          bool
	}{
		{"an allow", `{` + allow + `, "decision_reason": ""}`, true},
		{"a refusal", `{` + deny + `, "assignment_id": "", "decision_reason": "DeniedWithNoValidRBAC"}`, true},
		{"not an object", `true`, false},
		{"a set of decisions", `{{` + allow + `, "decision_reason": ""}}`, false},
		{"a field missing", `{` + allow + `}`, false},
		{"an extra field", `{` + allow + `, "decision_reason": "", "extra": 1}`, false},
		{"allowed is a string", `{` + strings.Replace(allow, `"allowed": true`, `"allowed": "true"`, 1) + `, "decision_reason": ""}`, false},
		{"a code is a number", `{` + strings.Replace(allow, `"code": ""`, `"code": 1`, 1) + `, "decision_reason": ""}`, false},
		{"an allow with a refusal code", `{` + strings.Replace(allow, `"code": ""`, `"code": "AccessDenied"`, 1) + `, "decision_reason": ""}`, false},
		{"an allow with a decision reason", `{` + allow + `, "decision_reason": "DeniedWithNoValidRBAC"}`, false},
		{"a refusal without a code", `{` + strings.Replace(deny, `"code": "ForbiddenByRbac"`, `"code": ""`, 1) + `, "assignment_id": "", "decision_reason": ""}`, false},
		{"a refusal with an unknown code", `{` + strings.Replace(deny, `"code": "ForbiddenByRbac"`, `"code": "Nope"`, 1) + `, "assignment_id": "", "decision_reason": ""}`, false},
		{"a refusal naming a granting assignment", `{` + deny + `, "assignment_id": "ra-1", "decision_reason": ""}`, false},
		{"an unknown model", `{` + strings.Replace(allow, `"accessPolicy"`, `"abac"`, 1) + `, "decision_reason": ""}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeResult(ast.MustParseTerm(tt.value).Value)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrResult) {
				t.Errorf("err %v is not ErrResult", err)
			}
		})
	}
}

// evalFixture evaluates an expression over the shipped Rego fixtures.
func evalFixture(t *testing.T, expr string) ast.Value {
	t.Helper()
	srcs, err := shippedSources(true)
	if err != nil {
		t.Fatal(err)
	}
	mods, err := parse(srcs)
	if err != nil {
		t.Fatal(err)
	}
	c, err := compile(mods, dataInputSchemaSet, false)
	if err != nil {
		t.Fatal(err)
	}
	pq, err := oparego.New(oparego.Query(expr), oparego.Compiler(c), oparego.Store(inmem.New())).PrepareForEval(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rs, err := pq.Eval(t.Context(), oparego.EvalGenerateJSON(keepAST))
	if err != nil || len(rs) != 1 {
		t.Fatalf("%s: %v %v", expr, rs, err)
	}
	return rs[0].Expressions[0].Value.(ast.Value)
}

func dataAt(t *testing.T, cfg *config.Config, path string) ast.Value {
	t.Helper()
	data, err := buildData(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := data.Find(ast.MustParseRef("data." + path)[1:])
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The Rego tests build their data with fixtures; these must be exactly what
// vaultwall builds from a configuration, or the tests test something else.
func TestFixturesMatchTheData(t *testing.T) {
	const fx = "data.vaultwall.authz.fixtures."
	cfg := &config.Config{Vault: config.Vault{Name: "contoso", TenantID: "00000000-0000-0000-0000-000000000001", ResourceID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso"}}
	cfg.Properties.AccessPolicies = []authz.AccessPolicy{
		{TenantID: "00000000-0000-0000-0000-000000000001", ObjectID: "a11ce000-0000-4000-8000-000000000001", Permissions: authz.Permissions{Secrets: []string{"Get", "list"}}},
		{TenantID: "00000000-0000-0000-0000-000000000001", ObjectID: "A11CE000-0000-4000-8000-000000000001", ApplicationID: "A9900000-0000-4000-8000-000000000001", Permissions: authz.Permissions{Keys: []string{"wrapKey"}}},
		{TenantID: "00000000-0000-0000-0000-000000000001", ObjectID: "9a000000-0000-4000-8000-000000000001", Permissions: authz.Permissions{Certificates: []string{"all"}, Storage: []string{"get"}}},
	}
	cfg.Properties.RoleAssignments = []authz.RoleAssignment{
		{PrincipalID: "5e000000-0000-4000-8000-000000000001", RoleDefinitionID: "Key Vault Reader"},
		{ID: "ra-db", PrincipalID: "5E000000-0000-4000-8000-000000000001", RoleDefinitionID: "4633458b-17de-408a-b874-0445c86b69e6", Scope: "/secrets/DB"},
		{PrincipalID: "9a000000-0000-4000-8000-000000000001", RoleDefinitionID: "Key Vault Crypto User", Scope: "/"},
	}
	tests := []struct{ name, data, fixture string }{
		{"built-in roles", "vaultwall.role_definitions", fx + "builtin_roles"},
		{"access policies", "vaultwall.access_policies", fx + `access_policies([
			` + fx + `entry("a11ce000-0000-4000-8000-000000000001", "", {"secrets": {"get", "list"}}),
			` + fx + `entry("A11CE000-0000-4000-8000-000000000001", "A9900000-0000-4000-8000-000000000001", {"keys": {"wrapkey"}}),
			` + fx + `entry("9a000000-0000-4000-8000-000000000001", "", {"certificates": {"all"}, "storage": {"get"}}),
		])`},
		{"role assignments", "vaultwall.role_assignments", fx + `role_assignments([
			` + fx + `assignment("5e000000-0000-4000-8000-000000000001", "Key Vault Reader", ""),
			object.union(` + fx + `assignment("5E000000-0000-4000-8000-000000000001", "Key Vault Secrets User", "/secrets/DB"), {"id": "ra-db"}),
			` + fx + `assignment("9a000000-0000-4000-8000-000000000001", "Key Vault Crypto User", ""),
		])`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := evalFixture(t, tt.fixture), dataAt(t, cfg, tt.data)
			if got.Compare(want) != 0 {
				t.Errorf("fixture:\n%v\ndata:\n%v", got, want)
			}
		})
	}
}

func TestNormalizeAction(t *testing.T) {
	tests := []struct{ in, want string }{
		{"secrets/getSecret/action", "secrets/getsecret/action"},
		{"Microsoft.KeyVault/vaults/secrets/*", "secrets/*"},
		{"MICROSOFT.KEYVAULT/VAULTS/*/read", "*/read"},
		{"*", "*"},
		{"keys/release/action", "keys/release/action"},
		{"secrets/{get,set}", ""},
		{"secrets/get?", ""},
		{"keys/[ab]", ""},
		{`keys\*`, ""},
		{"\u212aeys/read", ""}, // a Kelvin sign: "keys/read" once lower-cased, never an Azure action
		{"", ""},
		{"secrets/", ""},
		{"/secrets", ""},
		{"Microsoft.KeyVault/vaults/", ""},
	}
	for _, tt := range tests {
		got, err := normalizeAction(tt.in)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("normalizeAction(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestLineRanges: uncovered lines print as ranges, adjacent and
// overlapping ones merged.
func TestLineRanges(t *testing.T) {
	r := func(a, b int) cover.Range {
		return cover.Range{Start: cover.Position{Row: a}, End: cover.Position{Row: b}}
	}
	for _, tc := range []struct {
		in   []cover.Range
		want string
	}{
		{nil, ""},
		{[]cover.Range{r(3, 3)}, "3"},
		{[]cover.Range{r(7, 9), r(3, 3), r(12, 12)}, "3, 7-9, 12"},
		{[]cover.Range{r(3, 4), r(5, 6)}, "3-6"},          // adjacent
		{[]cover.Range{r(3, 8), r(5, 6), r(8, 9)}, "3-9"}, // overlapping
		{[]cover.Range{r(3, 4), r(6, 6)}, "3-4, 6"},       // a gap of one line
	} {
		if got := lineRanges(tc.in); got != tc.want {
			t.Errorf("lineRanges(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// buildData never lets a custom role take a built-in role's id (nor a
// second custom role an id already taken), even on a configuration that
// skipped validation: "Key Vault Reader" redefined with "*" would
// otherwise grant everything to its holders.
func TestBuildDataRefusesRedefinedRoleIDs(t *testing.T) {
	reader := authz.BuiltinRoles[1]
	for _, defs := range [][]authz.RoleDefinition{
		{{ID: reader.ID, RoleName: "Reader, widened", DataActions: []string{"*"}}},
		{{ID: "c0570000-0000-4000-8000-000000000001", RoleName: "a", DataActions: []string{"secrets/getSecret/action"}},
			{ID: "C0570000-0000-4000-8000-000000000001", RoleName: "b", DataActions: []string{"*"}}},
	} {
		cfg := &config.Config{Vault: config.Vault{Name: "contoso", TenantID: "00000000-0000-0000-0000-000000000001"}}
		cfg.Properties.RoleDefinitions = defs
		_, err := buildData(cfg)
		if err == nil || !strings.Contains(err.Error(), "already defined") {
			t.Errorf("%s redefined: err = %v, want already defined", defs[len(defs)-1].ID, err)
		}
	}
}
