package config_test

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/config"
)

const azTenant = "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

func mustLoad(t *testing.T, path string) *config.Config {
	t.Helper()
	c, err := config.Load(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

func hasAll(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	for _, w := range want {
		found := false
		for _, g := range got {
			if strings.Contains(g, w) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s lacks %q:\n%s", what, w, strings.Join(got, "\n"))
		}
	}
}

// The whole `az keyvault show` document loads as printed: nulls, capitalised
// permissions, lower-cased subnet ids, az's resourceGroup decorations.
func TestKeyVaultShowDocument(t *testing.T) {
	c := mustLoad(t, "testdata/azure/keyvault-show.json")
	if c.Format() != config.FormatKeyVault {
		t.Errorf("format = %q", c.Format())
	}
	v := c.Vault
	if v.Name != "contoso-vault" || v.TenantID != azTenant || v.Location != "westeurope" ||
		v.ResourceID != "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/vault-rg/providers/Microsoft.KeyVault/vaults/contoso-vault" {
		t.Errorf("vault = %+v", v)
	}
	p := &c.Properties
	acl := p.NetworkAcls
	if acl == nil || !acl.DefaultDeny() || !acl.BypassAzureServices() || p.PublicAccessDisabled() {
		t.Fatalf("network ACLs not applied: %+v", acl)
	}
	if got := acl.IPRules[1].Prefix().String(); got != "198.51.100.7/32" {
		t.Errorf("ipRules[1] = %s", got)
	}
	if got := p.AccessPolicies[0].Permissions.Keys; !slices.Equal(got, []string{"get", "wrapKey", "unwrapKey"}) {
		t.Errorf("permissions not canonicalised: %v", got)
	}
	if got := p.AccessPolicies[1].Permissions.Certificates; !slices.Contains(got, "managecontacts") {
		t.Errorf("certificate permissions: %v", got)
	}
	if len(p.PrivateEndpointConnections) != 2 || !p.PrivateEndpointConnections[0].Approved() || p.PrivateEndpointConnections[1].Approved() {
		t.Errorf("connections: %+v", p.PrivateEndpointConnections)
	}
	hasAll(t, "ignored", c.Ignored(), "properties.sku", "properties.createMode", "properties.hsmPoolResourceId",
		"properties.vaultUri", "properties.softDeleteRetentionInDays", "properties.enablePurgeProtection", "systemData", "tags",
		"properties.privateEndpointConnections[0].etag", "properties.networkAcls.virtualNetworkRules[0].resourceGroup")
	if slices.Contains(c.Ignored(), "properties.privateEndpointConnections") || slices.Contains(c.Ignored(), "properties.networkAcls") {
		t.Errorf("a deciding field listed as ignored: %v", c.Ignored())
	}
	hasAll(t, "notes", c.Notes(), "virtualNetworkRules[0].id: /subscriptions/11111111-2222-3333-4444-555555555555/resourcegroups/net-rg",
		"privateEndpointConnections[0]: /subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/net-rg/providers/Microsoft.Network/privateEndpoints/vault-pe is Approved")
}

// `az keyvault show -o yaml` of an RBAC vault, with nulls for what is unset.
func TestKeyVaultShowYAML(t *testing.T) {
	c := mustLoad(t, "testdata/azure/keyvault-show-rbac.yaml")
	if c.Format() != config.FormatKeyVault || c.Vault.Name != "contoso-rbac" || !c.Properties.EnableRbacAuthorization ||
		!c.Properties.PublicAccessDisabled() || c.Properties.NetworkAcls != nil {
		t.Errorf("format %q vault %+v properties %+v", c.Format(), c.Vault, c.Properties)
	}
}

// An `az group export --skip-all-params` template decides exactly as the
// `az keyvault show` document of the same vault.
func TestARMTemplateExport(t *testing.T) {
	tmpl := mustLoad(t, "testdata/azure/group-export.json")
	show := mustLoad(t, "testdata/azure/keyvault-show.json")
	if tmpl.Format() != config.FormatARMTemplate {
		t.Errorf("format = %q", tmpl.Format())
	}
	if tmpl.Vault.Name != show.Vault.Name || tmpl.Vault.TenantID != show.Vault.TenantID || tmpl.Vault.Location != show.Vault.Location {
		t.Errorf("vault %+v, want %+v", tmpl.Vault, show.Vault)
	}
	a, b := tmpl.Properties, show.Properties
	if !sameJSON(a.AccessPolicies, b.AccessPolicies) { // [] and null are the same list
		t.Errorf("access policies differ:\n%+v\n%+v", a.AccessPolicies, b.AccessPolicies)
	}
	if !reflect.DeepEqual(a.NetworkAcls, b.NetworkAcls) {
		t.Errorf("network ACLs differ:\n%+v\n%+v", a.NetworkAcls, b.NetworkAcls)
	}
	var sa, sb []string
	for _, pc := range a.PrivateEndpointConnections {
		sa = append(sa, pc.PrivateEndpoint.ID+"="+pc.PrivateLinkServiceConnectionState.Status)
	}
	for _, pc := range b.PrivateEndpointConnections {
		sb = append(sb, pc.PrivateEndpoint.ID+"="+pc.PrivateLinkServiceConnectionState.Status)
	}
	if !slices.Equal(sa, sb) {
		t.Errorf("connections differ: %v vs %v", sa, sb)
	}
	hasAll(t, "ignored", tmpl.Ignored(), "parameters", "variables", "resources[0].apiVersion", "resources[0].tags",
		"resources[0].properties.sku", "resources[1].dependsOn", "resources[3] (Microsoft.KeyVault/vaults/secrets)")
}

func sameJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// Expressions are refused where they would decide, each by its field and
// line; an ignored field's expression (vaultUri) is not.
func TestARMTemplateExpressionsRefused(t *testing.T) {
	_, err := config.Load("testdata/azure/invalid-template-parameters.json")
	if !errors.Is(err, config.ErrUnsupported) {
		t.Fatalf("want ErrUnsupported, got %v", err)
	}
	msg := err.Error()
	for _, w := range []string{
		`invalid-template-parameters.json:19: resources[0].name: not supported: "[parameters('vaults_contoso_vault_name')]" is an ARM template expression`,
		`resources[0].properties.networkAcls.virtualNetworkRules[0].id: not supported: "[concat(parameters('virtualNetworks_app_externalid'), '/subnets/backend')]"`,
		"az group export --skip-all-params",
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q:\n%s", w, msg)
		}
	}
	if strings.Contains(msg, "vaultUri") {
		t.Errorf("an ignored field refused:\n%s", msg)
	}
}

func TestARMTemplateShapesRefused(t *testing.T) {
	show, err := os.ReadFile("testdata/azure/group-export.json")
	if err != nil {
		t.Fatal(err)
	}
	var tmpl map[string]any
	if err := json.Unmarshal(show, &tmpl); err != nil {
		t.Fatal(err)
	}
	res := tmpl["resources"].([]any)
	vault := res[0]
	for name, tc := range map[string]struct {
		resources []any
		want      string
	}{
		"two vaults": {[]any{vault, vault}, "resources[1]: not supported: a second Microsoft.KeyVault/vaults resource"},
		"no vault":   {res[3:], "resources: required: the template has no Microsoft.KeyVault/vaults resource"},
		"access policies resource": {[]any{vault, map[string]any{"type": "Microsoft.KeyVault/vaults/accessPolicies", "name": "contoso-vault/add",
			"properties": map[string]any{"accessPolicies": []any{}}}}, "resources[1]: not supported: Microsoft.KeyVault/vaults/accessPolicies resources"},
		"role assignment resource": {[]any{vault, map[string]any{"type": "Microsoft.Authorization/roleAssignments", "name": "x"}},
			"resources[1]: not supported: role assignments are read from az role assignment list output"},
	} {
		tmpl["resources"] = tc.resources
		data, _ := json.Marshal(tmpl)
		_, err := config.Parse("t.json", data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}
}

// rbacVault is a vaultwall file whose roleAssignments are pasted from
// `az role assignment list --scope <vault> --include-inherited`.
func rbacVault(t *testing.T, edit func([]map[string]any)) []byte {
	t.Helper()
	raw, err := os.ReadFile("testdata/azure/role-assignments.json")
	if err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(list)
	}
	pasted, _ := json.MarshalIndent(list, "  ", "  ")
	return []byte(`vault:
  name: contoso-rbac
  tenantId: ` + azTenant + `
  location: westeurope
  subscriptionId: 11111111-2222-3333-4444-555555555555
  resourceGroup: vault-rg
properties:
  enableRbacAuthorization: true
  roleAssignments: ` + string(pasted) + "\n")
}

// `az role assignment list` output: full ARM scopes and role ids, inherited
// assignments at the resource group, metadata ignored, and Owner (no data
// actions) listed as ignored rather than refused.
func TestRoleAssignmentListOutput(t *testing.T) {
	c, err := config.Parse("rbac.yaml", rbacVault(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	ra := c.Properties.RoleAssignments
	if len(ra) != 3 {
		t.Fatalf("assignments = %+v", ra)
	}
	for i, want := range []struct{ principal, scope string }{
		{"6b0c3a2e-1f4d-4e5a-9b7c-2d8e9f0a1b2c", ""},
		{"4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d", "/secrets/db-password"},
		{"9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a", ""}, // inherited from the resource group
	} {
		if ra[i].PrincipalID != want.principal || ra[i].Scope != want.scope {
			t.Errorf("roleAssignments[%d] = %+v, want %+v", i, ra[i], want)
		}
	}
	if !strings.HasSuffix(ra[0].ID, "/roleAssignments/3f1a9c52-7b8e-4d01-9c6a-2e5f8b7d4a13") {
		t.Errorf("id = %s", ra[0].ID)
	}
	hasAll(t, "ignored", c.Ignored(), "properties.roleAssignments[0].principalType", "properties.roleAssignments[1].roleDefinitionName",
		"properties.roleAssignments[3] (Owner: no data actions)")
}

func TestRoleAssignmentRefusals(t *testing.T) {
	for name, tc := range map[string]struct {
		edit     func([]map[string]any)
		sentinel error
		want     string
	}{
		"a condition": {func(l []map[string]any) {
			l[1]["condition"] = "((!(ActionMatches{'Microsoft.KeyVault/vaults/secrets/getSecret/action'})) OR (@Resource[Microsoft.KeyVault/vaults/secrets:name] StringEquals 'db-password'))"
			l[1]["conditionVersion"] = "2.0"
		}, config.ErrUnsupported, "properties.roleAssignments[1].condition: not supported: role assignment conditions (ABAC) are not supported"},
		"a condition after a dropped Owner keeps its own index": {func(l []map[string]any) {
			l[0], l[3] = l[3], l[0]
			l[3]["condition"] = "@Principal[Microsoft.Directory/CustomSecurityAttributes/Id:team] StringEquals 'ops'"
		}, config.ErrUnsupported, "properties.roleAssignments[3].condition"},
		"another vault's scope": {func(l []map[string]any) {
			l[0]["scope"] = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/vault-rg/providers/Microsoft.KeyVault/vaults/other-vault"
		}, config.ErrInvalidValue, "properties.roleAssignments[0].scope"},
		"a management group": {func(l []map[string]any) {
			l[2]["scope"] = "/providers/Microsoft.Management/managementGroups/contoso-root"
		}, config.ErrInvalidValue, "management-group scope is not supported"},
		"a role with data actions vaultwall does not know": {func(l []map[string]any) {
			l[0]["roleDefinitionId"] = "/subscriptions/11111111-2222-3333-4444-555555555555/providers/Microsoft.Authorization/roleDefinitions/2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
		}, config.ErrUnresolved, "properties.roleAssignments[0].roleDefinitionId"},
	} {
		_, err := config.Parse("rbac.yaml", rbacVault(t, tc.edit))
		if !errors.Is(err, tc.sentinel) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %v naming %q", name, err, tc.sentinel, tc.want)
		}
	}
}

// The properties block of `az keyvault show`, pasted whole under a
// vaultwall file's properties, loads: every field a real vault has.
func TestPastedPropertiesBlock(t *testing.T) {
	raw, err := os.ReadFile("testdata/azure/keyvault-show.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	props, _ := json.Marshal(doc["properties"])
	c, err := config.Parse("vault.yaml", []byte(`vault: {name: contoso-vault, tenantId: `+azTenant+`, location: westeurope}
network:
  subnets:
    - {id: /subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/net-rg/providers/Microsoft.Network/virtualNetworks/app/subnets/backend, addressPrefixes: [10.1.2.0/24]}
  privateEndpoints:
    - {id: /subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/net-rg/providers/Microsoft.Network/privateEndpoints/vault-pe, linkId: 1}
    - {id: /subscriptions/99999999-8888-7777-6666-555555555555/resourceGroups/partner-rg/providers/Microsoft.Network/privateEndpoints/partner-pe, linkId: 2}
properties: `+string(props)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	pe := c.Network.PrivateEndpoints
	if !pe[0].Approved() || pe[1].Approved() {
		t.Errorf("approved: vault-pe %v, partner-pe (Pending) %v", pe[0].Approved(), pe[1].Approved())
	}
	hasAll(t, "ignored", c.Ignored(), "properties.createMode", "properties.hsmPoolResourceId")
	hasAll(t, "notes", c.Notes(), "network.privateEndpoints[1]: /subscriptions/99999999-8888-7777-6666-555555555555/resourceGroups/partner-rg/providers/Microsoft.Network/privateEndpoints/partner-pe: connection Pending: not approved")
}

func jsonMarshalIndent(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }

// Child resources declared inside the vault resource, and languageVersion
// 2.0's symbolic resource names, read as the flat list does; a child whose
// name is an expression is refused, not taken for another vault's.
func TestARMTemplateNestedAndSymbolic(t *testing.T) {
	raw, err := os.ReadFile("testdata/azure/group-export.json")
	if err != nil {
		t.Fatal(err)
	}
	load := func() map[string]any {
		var tmpl map[string]any
		if err := json.Unmarshal(raw, &tmpl); err != nil {
			t.Fatal(err)
		}
		return tmpl
	}
	statuses := func(c *config.Config) string {
		var out []string
		for _, pc := range c.Properties.PrivateEndpointConnections {
			out = append(out, pc.PrivateLinkServiceConnectionState.Status)
		}
		return strings.Join(out, ",")
	}

	nested := load()
	res := nested["resources"].([]any)
	vault := res[0].(map[string]any)
	pe := res[2].(map[string]any) // the Pending one, declared inside the vault with its short type and name
	pe["type"], pe["name"] = "privateEndpointConnections", "partner-pe.0a7b3c9d-6e2f-4d18-b5a4-9c3e1f7d2b60"
	vault["resources"] = []any{pe}
	nested["resources"] = []any{vault, res[1], res[3]}
	data, _ := json.Marshal(nested)
	c, err := config.Parse("nested.json", data)
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(c); got != "Approved,Pending" { // top-level children, then nested ones
		t.Errorf("nested: connections %s, want Approved,Pending", got)
	}

	symbolic := load()
	res = symbolic["resources"].([]any)
	symbolic["languageVersion"] = "2.0"
	symbolic["resources"] = map[string]any{"vault": res[0], "vaultPe": res[1], "partnerPe": res[2], "secret": res[3]}
	data, _ = json.Marshal(symbolic)
	if c, err = config.Parse("symbolic.json", data); err != nil {
		t.Fatal(err)
	}
	if got := statuses(c); got != "Pending,Approved" || c.Vault.Name != "contoso-vault" {
		t.Errorf("symbolic: connections %s, vault %q", got, c.Vault.Name)
	}
	hasAll(t, "ignored", c.Ignored(), "resources.secret (Microsoft.KeyVault/vaults/secrets)", "languageVersion")

	expr := load()
	res = expr["resources"].([]any)
	res[1].(map[string]any)["name"] = "[concat(parameters('vault'), '/vault-pe')]"
	data, _ = json.Marshal(expr)
	if _, err := config.Parse("expr.json", data); !errors.Is(err, config.ErrUnsupported) || !strings.Contains(err.Error(), "resources[1].name") {
		t.Errorf("a connection named by an expression: %v", err)
	}
}

// A document without the vault's tenant names the field where Azure keeps
// it; a connection naming no endpoint approves none and is not refused.
func TestAzureDocumentFieldNames(t *testing.T) {
	_, err := config.Parse("show.yaml", []byte("type: Microsoft.KeyVault/vaults\nname: contoso-vault\nlocation: westeurope\nproperties: {sku: {family: A, name: standard}}\n"))
	if !errors.Is(err, config.ErrRequired) || !strings.Contains(err.Error(), "properties.tenantId: required") {
		t.Errorf("missing tenant: %v", err)
	}
	c, err := config.Parse("show.yaml", []byte(`type: Microsoft.KeyVault/vaults
name: contoso-vault
location: westeurope
properties:
  tenantId: `+azTenant+`
  privateEndpointConnections:
    - {id: /subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso-vault/privateEndpointConnections/x, privateEndpoint: {}, privateLinkServiceConnectionState: {status: Approved}}
`))
	if err != nil {
		t.Fatal(err)
	}
	hasAll(t, "notes", c.Notes(), "properties.privateEndpointConnections[0].privateEndpoint.id: missing: the connection approves no endpoint")
}

// A template's notes and refusals name the template's own fields, once.
func TestARMTemplatePathsInMessages(t *testing.T) {
	c := mustLoad(t, "testdata/azure/group-export.json")
	hasAll(t, "notes", c.Notes(), "resources[0].properties.networkAcls.virtualNetworkRules[0].id: ", "resources[1]: ")
	hasAll(t, "ignored", c.Ignored(), "resources[1].properties.provisioningState")
	_, err := config.Load("testdata/azure/invalid-template-parameters.json")
	if n := strings.Count(err.Error(), "resources[0].name:"); n != 1 {
		t.Errorf("resources[0].name named %d times:\n%v", n, err)
	}
}

// Another resource's document is named for what it is, alone.
func TestForeignDocumentRefused(t *testing.T) {
	_, err := config.Parse("hsm.json", []byte(`{"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/managedHSMs/h", "name": "h", "type": "Microsoft.KeyVault/managedHSMs", "properties": {"tenantId": "`+azTenant+`"}}`))
	if !errors.Is(err, config.ErrUnsupported) || !strings.Contains(err.Error(), `type: not supported: "Microsoft.KeyVault/managedHSMs"`) || strings.Contains(err.Error(), "unknown field") {
		t.Errorf("a managed HSM document: %v", err)
	}
}
