package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/vaultwall/vaultwall/controlplane/api/vaultwall/v1"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/admin/*.golden")

const goldenVaultID = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/vault-rg/providers/Microsoft.KeyVault/vaults/contoso-vault"

// goldenVault is what GetVault returns for a vault with the usual rules.
func goldenVault() *v1.Vault {
	return &v1.Vault{
		Name: "contoso-vault", TenantId: "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", Location: "westeurope",
		ResourceId: goldenVaultID, Etag: "7",
		Properties: &v1.VaultProperties{
			PublicNetworkAccess: v1.PublicNetworkAccess_PUBLIC_NETWORK_ACCESS_ENABLED,
			NetworkAcls: &v1.NetworkAcls{
				DefaultAction: v1.DefaultAction_DEFAULT_ACTION_DENY, Bypass: v1.Bypass_BYPASS_AZURE_SERVICES,
				IpRules: []*v1.IpRule{{Value: "203.0.113.0/24"}, {Value: "198.51.100.7"}, {Value: "2001:db8:1::/48"}},
				VirtualNetworkRules: []*v1.VirtualNetworkRule{{
					Id: "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/net-rg/providers/Microsoft.Network/virtualNetworks/app/subnets/backend"}},
			},
			AccessPolicies: []*v1.AccessPolicy{{
				TenantId: "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", ObjectId: "6b0c3a2e-1f4d-4e5a-9b7c-2d8e9f0a1b2c",
				Permissions: &v1.Permissions{Secrets: []string{"get", "list"}, Keys: []string{"get", "wrapKey", "unwrapKey"}},
			}},
			RoleDefinitions:        []*v1.RoleDefinition{{Id: "custom-reader", RoleName: "Contoso Secret Reader", DataActions: []string{"secrets/getSecret/action"}}},
			ControlPlaneProperties: []string{"networkAcls"},
		},
	}
}

func goldenAssignments() []*v1.RoleAssignment {
	return []*v1.RoleAssignment{
		{Id: "3f1a9c52-7b8e-4d01-9c6a-2e5f8b7d4a13", PrincipalId: "6b0c3a2e-1f4d-4e5a-9b7c-2d8e9f0a1b2c", RoleDefinitionId: "Key Vault Secrets User", Scope: "/"},
		{Id: "8d2e4f60-1a3b-4c5d-9e7f-0a1b2c3d4e5f", PrincipalId: "4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d", RoleDefinitionId: "b86a8fe4-44ce-4948-aee5-eccb2c155cd7", Scope: "/secrets/db-password"},
		{Id: "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9", PrincipalId: "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a", RoleDefinitionId: "Contoso Secret Reader", Scope: "/secrets/app"},
	}
}

// Each admin result in each output format, against a golden file: the
// shapes az prints for the same verbs.
func TestAdminOutputGolden(t *testing.T) {
	v := goldenVault()
	ras := mapList(goldenAssignments(), func(ra *v1.RoleAssignment) any { return armRoleAssignment(ra, v) })
	results := map[string]struct {
		result any
		view   func() tableView
	}{
		"show":                 {armVault(v), vaultTable(v)},
		"network-rule-list":    {armNetworkRules(v), networkRulesTable(v)},
		"role-assignment-list": {ras, roleAssignmentsTable(ras)},
	}
	for name, r := range results {
		for _, format := range []string{"json", "jsonc", "yaml", "table", "tsv", "none"} {
			t.Run(name+"."+format, func(t *testing.T) {
				var out bytes.Buffer
				if err := (&printer{format: format}).printView(&out, r.result, r.view); err != nil {
					t.Fatal(err)
				}
				golden(t, filepath.Join("testdata/admin", name+"."+format+".golden"), out.Bytes())
			})
		}
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestAdminOutputGolden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// The fields az users script against, in ARM's spelling.
func TestAdminOutputIsARMShaped(t *testing.T) {
	v := goldenVault()
	for q, want := range map[string]string{
		"properties.networkAcls.defaultAction":          "Deny\n",
		"properties.networkAcls.bypass":                 "AzureServices\n",
		"properties.publicNetworkAccess":                "Enabled\n",
		"type":                                          "Microsoft.KeyVault/vaults\n",
		"resourceGroup":                                 "vault-rg\n",
		"properties.networkAcls.ipRules[1].value":       "198.51.100.7/32\n", // ARM echoes a full-length prefix
		"properties.accessPolicies[0].applicationId":    "\n",
		"properties.accessPolicies[0].permissions.keys": "get\nwrapKey\nunwrapKey\n", // a list: one value a line, as az
	} {
		var out bytes.Buffer
		if err := (&printer{format: "tsv", query: q}).print(&out, armVault(v)); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Errorf("--query %s -o tsv = %q, want %q", q, out.String(), want)
		}
	}
	var out bytes.Buffer
	if err := (&printer{format: "json"}).print(&out, armVault(&v1.Vault{Name: "v", ResourceId: goldenVaultID,
		Properties: &v1.VaultProperties{PublicNetworkAccess: v1.PublicNetworkAccess_PUBLIC_NETWORK_ACCESS_DISABLED}})); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"networkAcls": null`) || !strings.Contains(out.String(), `"publicNetworkAccess": "Disabled"`) {
		t.Errorf("a vault without rules:\n%s", out.String())
	}
}

// --query is JMESPath as az evaluates it: projections, filters,
// multiselect hashes, functions; and a bad query or format is refused
// before anything is sent.
func TestAdminQuery(t *testing.T) {
	v := goldenVault()
	ras := mapList(goldenAssignments(), func(ra *v1.RoleAssignment) any { return armRoleAssignment(ra, v) })
	for _, tc := range []struct {
		result        any
		query, format string
		want          string
	}{
		{armNetworkRules(v), "ipRules[].value", "tsv", "203.0.113.0/24\n198.51.100.7/32\n2001:db8:1::/48\n"},
		{armNetworkRules(v), "length(ipRules)", "json", "3\n"},
		{armVault(v), "properties.networkAcls.{Default:defaultAction, Bypass:bypass}", "table", "Default  Bypass\n-------  -------------\nDeny     AzureServices\n"},
		{armVault(v), "properties.networkAcls.{\"z, a\":defaultAction, b:bypass}", "tsv", "Deny\tAzureServices\n"},
		{ras, "[].{Scope:scope, Role:roleDefinitionName}", "tsv", goldenVaultID + "\tKey Vault Secrets User\n" + goldenVaultID + "/secrets/db-password\tKey Vault Secrets Officer\n" + goldenVaultID + "/secrets/app\tContoso Secret Reader\n"},
		{ras, "[?roleDefinitionName=='Key Vault Secrets Officer'].scope", "tsv", goldenVaultID + "/secrets/db-password\n"},
		{ras, "[?contains(scope, '/secrets/')].{principal:principalId, role:roleDefinitionName}", "json",
			"[\n  {\n    \"principal\": \"4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d\",\n    \"role\": \"Key Vault Secrets Officer\"\n  },\n  {\n    \"principal\": \"9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a\",\n    \"role\": \"Contoso Secret Reader\"\n  }\n]\n"},
		{ras, "[0].name", "yaml", "3f1a9c52-7b8e-4d01-9c6a-2e5f8b7d4a13\n"},
		{ras, "[].principalId", "table", "Result\n------------------------------------\n6b0c3a2e-1f4d-4e5a-9b7c-2d8e9f0a1b2c\n4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d\n9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a\n"},
		{ras, "[?principalId=='nobody']", "json", "[]\n"},
	} {
		var out bytes.Buffer
		if err := (&printer{format: tc.format, query: tc.query}).print(&out, tc.result); err != nil {
			t.Errorf("%s: %v", tc.query, err)
			continue
		}
		if out.String() != tc.want {
			t.Errorf("--query %q -o %s:\n%q\nwant\n%q", tc.query, tc.format, out.String(), tc.want)
		}
	}
	for _, p := range []printer{{format: "json", query: "properties.["}, {format: "xml"}} {
		if err := p.validate(); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}
