package config_test

import (
	"encoding/json"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/network"
	"github.com/vaultwall/vaultwall/config"
)

// fillPlaceholders does what the operator does after an import: give the
// subnet its prefixes and the approved endpoint its Envoy-side identity.
func fillPlaceholders(t *testing.T, yaml string) string {
	t.Helper()
	yaml = strings.ReplaceAll(yaml, "addressPrefixes: []  # "+config.ImportMarker, "addressPrefixes: [10.1.2.0/24]")
	yaml = strings.ReplaceAll(yaml, "linkId: null  # "+config.ImportMarker, "linkId: 305419896")
	return yaml
}

// Import → placeholders filled → validate passes, and every decision the
// Azure document carries is the same: vault identity, properties, and the
// firewall's verdicts.
func TestImportRoundTrip(t *testing.T) {
	for _, tc := range []struct{ doc, roles string }{
		{"testdata/azure/keyvault-show.json", ""},
		{"testdata/azure/group-export.json", ""},
		{"testdata/azure/keyvault-show-rbac.yaml", "testdata/azure/role-assignments.json"},
	} {
		t.Run(tc.doc, func(t *testing.T) {
			data, err := os.ReadFile(tc.doc)
			if err != nil {
				t.Fatal(err)
			}
			var roles []byte
			var orig *config.Config
			if tc.roles != "" {
				if roles, err = os.ReadFile(tc.roles); err != nil {
					t.Fatal(err)
				}
			}
			out, err := config.Import(tc.doc, data, roles)
			if err != nil {
				t.Fatal(err)
			}
			imported := string(out)
			if tc.roles == "" {
				orig = mustLoad(t, tc.doc)
			} else {
				// The same document with the assignments laid into its
				// properties, and the assignments pasted by hand into a
				// vaultwall file.
				var list []any
				if err := json.Unmarshal(roles, &list); err != nil {
					t.Fatal(err)
				}
				merged, err := config.SetProperties(data, map[string]any{"roleAssignments": list})
				if err != nil {
					t.Fatal(err)
				}
				if orig, err = config.Parse(tc.doc, merged); err != nil {
					t.Fatal(err)
				}
				pasted, err := config.Parse("pasted.yaml", rbacVault(t, nil))
				if err != nil {
					t.Fatal(err)
				}
				if !sameJSON(orig.Properties.RoleAssignments, pasted.Properties.RoleAssignments) {
					t.Errorf("assignments laid in differ from the pasted ones")
				}
			}

			if strings.Contains(imported, "vnet") || strings.Contains(imported, "virtualNetworkRules") {
				if _, err := config.Parse("imported.yaml", out); err == nil {
					t.Error("the imported file validates with its placeholders unfilled")
				}
			}
			got, err := config.Parse("imported.yaml", []byte(fillPlaceholders(t, imported)))
			if err != nil {
				t.Fatalf("%v\n%s", err, imported)
			}
			if got.Format() != config.FormatVaultwall {
				t.Errorf("imported format = %q", got.Format())
			}
			if tc.roles == "" && !reflect.DeepEqual(got.Vault, orig.Vault) {
				t.Errorf("vault %+v, want %+v", got.Vault, orig.Vault)
			}
			if !sameJSON(got.Properties, orig.Properties) {
				t.Errorf("properties differ:\n%s\nwant\n%s", jsonOf(got.Properties), jsonOf(orig.Properties))
			}
			if got.ChallengeHeader() != orig.ChallengeHeader() {
				t.Errorf("challenge %s, want %s", got.ChallengeHeader(), orig.ChallengeHeader())
			}
			fwGot, err := network.New(got.FirewallConfig())
			if err != nil {
				t.Fatal(err)
			}
			fwOrig, err := network.New(orig.FirewallConfig())
			if err != nil {
				t.Fatal(err)
			}
			for _, addr := range []string{"203.0.113.9", "198.51.100.7", "198.51.100.8", "192.0.2.1", "2001:db8::1"} {
				r := &authz.Request{Method: "GET", Path: "/secrets/db", Headers: map[string]string{}, Peer: netip.AddrPortFrom(netip.MustParseAddr(addr), 40000)}
				a, b := verdict(fwGot, r), verdict(fwOrig, r)
				if a.Allowed != b.Allowed || a.Code != b.Code || a.Rule != b.Rule {
					t.Errorf("%s: imported %+v, original %+v", addr, a, b)
				}
			}
		})
	}
}

func verdict(fw *network.Firewall, r *authz.Request) authz.NetworkVerdict {
	d := &authz.Decision{Request: r}
	d.Network.Connection = fw.Connect(r)
	return fw.Evaluate(d)
}

func jsonOf(v any) string {
	b, _ := jsonMarshalIndent(v)
	return string(b)
}

func TestImportRefusals(t *testing.T) {
	for name, tc := range map[string]struct {
		file, roles string
		want        string
	}{
		"a vaultwall file":            {"testdata/config/valid-minimal.yaml", "", "already a vaultwall configuration"},
		"a template with expressions": {"testdata/azure/invalid-template-parameters.json", "", "resources[0].name: not supported"},
		"not a list of assignments":   {"testdata/azure/keyvault-show-rbac.yaml", "testdata/azure/keyvault-show-rbac.yaml", "az role assignment list output"},
		"role assignments for a template without a vault": {"testdata/azure/invalid-template-no-vault.json", "testdata/azure/role-assignments.json",
			"resources: required: the template has no Microsoft.KeyVault/vaults resource"},
	} {
		data, _ := os.ReadFile(tc.file)
		var roles []byte
		if tc.roles != "" {
			roles, _ = os.ReadFile(tc.roles)
		}
		if _, err := config.Import(tc.file, data, roles); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// A template does not say where the vault lives; the role assignments'
// scopes do, so an import of both resolves their full scopes.
func TestImportTemplateWithRoleAssignments(t *testing.T) {
	data, err := os.ReadFile("testdata/azure/group-export.json")
	if err != nil {
		t.Fatal(err)
	}
	roles, err := os.ReadFile("testdata/azure/role-assignments.json")
	if err != nil {
		t.Fatal(err)
	}
	roles = []byte(strings.ReplaceAll(string(roles), "contoso-rbac", "contoso-vault"))
	out, err := config.Import("group-export.json", data, roles)
	if err != nil {
		t.Fatal(err)
	}
	const id = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/vault-rg/providers/Microsoft.KeyVault/vaults/contoso-vault"
	if !strings.Contains(string(out), "  resourceId: "+id+"\n") {
		t.Errorf("the vault's id was not taken from the scopes:\n%s", out)
	}
	c, err := config.Parse("imported.yaml", []byte(fillPlaceholders(t, string(out))))
	if err != nil {
		t.Fatal(err)
	}
	if ra := c.Properties.RoleAssignments; len(ra) != 3 || ra[1].Scope != "/secrets/db-password" {
		t.Errorf("assignments: %+v", ra)
	}
}

// A template whose vault resource already carries its ARM id keeps it: the
// role assignments' scopes name the vault only when the template does not,
// and an assignment scoped to a vault of that name in another subscription
// never moves the vault there.
func TestImportTemplateKeepsItsVaultID(t *testing.T) {
	data, err := os.ReadFile("testdata/azure/group-export.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	const own = "/subscriptions/99999999-9999-4999-8999-999999999999/resourceGroups/own-rg/providers/Microsoft.KeyVault/vaults/contoso-vault"
	for _, r := range doc["resources"].([]any) {
		if m := r.(map[string]any); m["type"] == "Microsoft.KeyVault/vaults" {
			m["id"] = own
		}
	}
	if data, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	roles, err := os.ReadFile("testdata/azure/role-assignments.json")
	if err != nil {
		t.Fatal(err)
	}
	roles = []byte(strings.ReplaceAll(string(roles), "contoso-rbac", "contoso-vault"))
	out, err := config.Import("group-export.json", data, roles)
	if err == nil {
		t.Fatalf("assignments scoped to another subscription's vault were imported (the vault moved to their id?):\n%s", out)
	}
	if !strings.Contains(err.Error(), "roleAssignments[0].scope") || !strings.Contains(err.Error(), "11111111-2222-3333-4444-555555555555") {
		t.Errorf("refusal does not name the foreign scope: %v", err)
	}
}
