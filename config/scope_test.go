package config_test

import (
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/config"
)

// scopeCase is one row of testdata/role-assignment-scopes.json: a scope as
// written, with {vault} (the vault's ARM id), {sub}, {rg} and {name} (its
// parts, upper-cased when the placeholder is), and the scope it is stored
// as, "/" for the whole vault, or "" when it is refused. The control
// plane's tests read the same table: both planes accept and refuse the
// same scopes, with the same meaning.
type scopeCase struct{ Scope, Stored, Why string }

func scopeCases(t *testing.T, vaultID string) []scopeCase {
	t.Helper()
	raw, err := os.ReadFile("testdata/role-assignment-scopes.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []scopeCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(vaultID, "/") // "", subscriptions, sub, resourceGroups, rg, …, vaults, name
	sub, rg, name := parts[2], parts[4], parts[len(parts)-1]
	r := strings.NewReplacer("{vault}", vaultID, "{VAULT}", strings.ToUpper(vaultID), "{sub}", sub,
		"{rg}", rg, "{RG}", strings.ToUpper(rg), "{name}", name)
	for i := range cases {
		cases[i].Scope = r.Replace(cases[i].Scope)
	}
	return cases
}

// TestRoleAssignmentScopeTable: the configuration file accepts a scope of
// the shared table as the whole vault or one object, and refuses the
// others, naming the assignment's scope field.
func TestRoleAssignmentScopeTable(t *testing.T) {
	const vaultID = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/vault-rg/providers/Microsoft.KeyVault/vaults/contoso-vault"
	base := `vault: {name: contoso-vault, tenantId: 00000000-0000-0000-0000-000000000001, location: westeurope, resourceId: ` + vaultID + `}
properties:
  enableRbacAuthorization: true
  roleAssignments: [{principalId: 5a5a5a5a-0000-4000-8000-00000000000a, roleDefinitionId: Key Vault Secrets User, scope: SCOPE}]
`
	for _, tc := range scopeCases(t, vaultID) {
		c, err := config.Parse("v.yaml", []byte(strings.Replace(base, "SCOPE", strconv.Quote(tc.Scope), 1)))
		if tc.Stored == "" {
			if !errors.Is(err, config.ErrInvalidValue) || !strings.Contains(err.Error(), "properties.roleAssignments[0].scope: ") {
				t.Errorf("%q (%s): %v, want %v on properties.roleAssignments[0].scope", tc.Scope, tc.Why, err, config.ErrInvalidValue)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q (%s): %v", tc.Scope, tc.Why, err)
			continue
		}
		got := c.Properties.RoleAssignments[0].Scope
		if got == "" {
			got = "/"
		}
		if got != tc.Stored {
			t.Errorf("%q (%s) stored as %q, want %q", tc.Scope, tc.Why, got, tc.Stored)
		}
	}
}
