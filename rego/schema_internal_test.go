package rego

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	oparego "github.com/open-policy-agent/opa/v1/rego"

	"github.com/vaultwall/vaultwall/authz"
)

var updateSchemas = flag.Bool("update", false, "rewrite rego/schema/*.json")

// The committed schema files are what the code generates: run
// `go test ./rego -run TestSchemaFiles -update` after changing the input.
func TestSchemaFiles(t *testing.T) {
	for name, want := range Schemas() {
		path := filepath.Join("schema", name)
		if *updateSchemas {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./rego -run TestSchemaFiles -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("rego/%s differs from what the code generates: run go test ./rego -run TestSchemaFiles -update and commit", path)
		}
	}
	entries, err := os.ReadDir("schema")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := Schemas()[e.Name()]; !ok {
			t.Errorf("rego/schema/%s is not generated: remove it", e.Name())
		}
	}
}

// matchSchema validates doc against schema with OPA's own JSON Schema
// validator (json.match_schema).
func matchSchema(t *testing.T, what string, doc any, schema jsonSchema) {
	t.Helper()
	if ok, b, errs := matches(t, doc, schema); !ok {
		t.Errorf("%s does not match its schema: %v\n%s", what, errs, b)
	}
}

func matches(t *testing.T, doc any, schema jsonSchema) (bool, []byte, any) {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	rs, err := oparego.New(oparego.Query("json.match_schema(input.doc, input.schema)"),
		oparego.Input(map[string]any{"doc": v, "schema": schema})).Eval(t.Context())
	if err != nil || len(rs) != 1 {
		t.Fatalf("json.match_schema: %v %v", rs, err)
	}
	res := rs[0].Expressions[0].Value.([]any)
	return res[0] == true, b, res[1]
}

// Every input the builder makes matches the schema the policies are
// type-checked against: the samples New evaluates (each model, a user and
// an application, another tenant, the control plane, claims of every JSON
// type) and a request with every header and field set.
func TestInputMatchesSchema(t *testing.T) {
	cfg := testConfig(t)
	ds := []*authz.Decision{}
	for _, s := range samples(cfg) {
		ds = append(ds, s.d)
	}
	full := *samples(cfg)[0].d
	full.Request = &authz.Request{ID: "1", Peer: netip.MustParseAddrPort("10.1.2.7:5000"), Principal: "spiffe://a/b", TLS: true,
		SNI: "contoso.vault.azure.net", Method: "POST", Path: "/keys/k/wrapkey", Host: "contoso.vault.azure.net", Scheme: "https",
		Protocol: "HTTP/2", Headers: map[string]string{"content-length": "2", "content-type": "application/json", "user-agent": "x",
			"x-http-method": "PATCH", "x-ms-client-request-id": "r", "authorization": "Bearer x"}}
	full.Network = authz.NetworkVerdict{Connection: authz.Connection{ClientAddr: netip.MustParseAddr("10.1.2.7"), SubnetID: "s"},
		Evaluated: true, Allowed: true, AuthType: authz.AddrSubnet, Rule: "virtualNetworkRules[0]", TrustedService: "AzureBackup", TrustedInScope: true}
	ds = append(ds, &full)
	for i, d := range ds {
		v, err := Input(d)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := ast.JSON(v)
		if err != nil {
			t.Fatal(err)
		}
		matchSchema(t, "input "+itoa(i), doc, InputSchema())
	}
	// The validator does refuse: a misspelt field, a wrong type.
	for _, bad := range []func(m map[string]any){
		func(m map[string]any) { m["operation"].(map[string]any)["objct"] = "x" },
		func(m map[string]any) { m["vault"].(map[string]any)["rbac"] = "true" },
	} {
		v, _ := Input(ds[0])
		doc, _ := ast.JSON(v)
		bad(doc.(map[string]any))
		if ok, b, _ := matches(t, doc, InputSchema()); ok {
			t.Errorf("a broken input matches the schema: %s", b)
		}
	}
}

// Every field of the input has a description for editors.
func TestEveryInputFieldIsDescribed(t *testing.T) {
	for _, sec := range schema {
		name := string(sec.key.Value.(ast.String))
		if descriptions[name] == "" {
			t.Errorf("input.%s has no description", name)
		}
		for _, f := range sec.fields {
			path := name + "." + string(f.key.Value.(ast.String))
			if descriptions[path] == "" {
				t.Errorf("input.%s has no description", path)
			}
			if f.schema == nil {
				t.Errorf("input.%s has no schema", path)
			}
		}
	}
}

// data.vaultwall as buildData makes it matches DataSchema.
func TestDataMatchesSchema(t *testing.T) {
	cfg := testConfig(t)
	cfg.Vault.ResourceID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso"
	cfg.Properties.AccessPolicies = []authz.AccessPolicy{
		{TenantID: cfg.Vault.TenantID, ObjectID: "o1", Permissions: authz.Permissions{Secrets: []string{"Get", "list"}, Keys: []string{"wrapKey"}}},
		{TenantID: cfg.Vault.TenantID, ObjectID: "o1", ApplicationID: "A1", Permissions: authz.Permissions{Certificates: []string{"all"}, Storage: []string{"get"}}},
	}
	cfg.Properties.RoleDefinitions = []authz.RoleDefinition{{ID: "custom-1", RoleName: "Custom", DataActions: []string{"secrets/*"}, NotDataActions: []string{"secrets/setSecret/action"}}}
	cfg.Properties.RoleAssignments = []authz.RoleAssignment{
		{ID: "ra1", PrincipalID: "o1", RoleDefinitionID: "custom-1", Scope: "/"},
		{PrincipalID: "g1", RoleDefinitionID: "Key Vault Secrets User", Scope: cfg.Vault.ResourceID + "/secrets/s1"},
	}
	data, err := buildData(cfg)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := ast.JSON(data.Get(ast.StringTerm("vaultwall")).Value)
	if err != nil {
		t.Fatal(err)
	}
	matchSchema(t, "data.vaultwall", doc, DataSchema())
}

// The control plane's input, with and without a token and a certificate,
// matches ControlInputSchema.
func TestControlInputMatchesSchema(t *testing.T) {
	for i, in := range []ControlInput{
		{Method: "GetVault", Action: "vault/read", ReadOnly: true},
		{Method: "UpdateAccessPolicies", Action: "accessPolicies/write", Token: &ControlToken{ObjectID: "o"},
			Certificate: &ControlCertificate{Principal: "spiffe://a/b", Admin: true}},
		{Token: &ControlToken{ObjectID: "o", Roles: []string{"Vault.Admin"}, Groups: []string{"g"}, Scopes: []string{"s"}, Claims: map[string]any{"a": []any{1.0}}}},
	} {
		v, err := in.value()
		if err != nil {
			t.Fatal(err)
		}
		doc, err := ast.JSON(v)
		if err != nil {
			t.Fatal(err)
		}
		matchSchema(t, "control input "+itoa(i), doc, ControlInputSchema())
	}
}

func itoa(i int) string { return string(rune('0' + i)) }
