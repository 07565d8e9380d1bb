package config_test

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/config"
)

// ValidateDataAction accepts a role's data action relative to
// Microsoft.KeyVault/vaults/ or written in full (the prefix in any case),
// wildcards included, and refuses what cannot be one: nothing after the
// prefix, whitespace, a leading or trailing slash.
func TestValidateDataAction(t *testing.T) {
	for _, a := range []string{
		"secrets/getSecret/action", "keys/*", "*/read", "*", "secrets/readMetadata/action",
		"Microsoft.KeyVault/vaults/keys/read", "microsoft.keyvault/VAULTS/keys/*", "MICROSOFT.KEYVAULT/VAULTS/*/read",
		"keyrotationpolicies/write", "certificatecas/*", "a",
		// The prefix is stripped once: what follows is judged as written.
		"Microsoft.KeyVault/vaults/Microsoft.KeyVault/vaults/keys/read",
	} {
		if err := config.ValidateDataAction(a); err != nil {
			t.Errorf("%q refused: %v", a, err)
		}
	}
	for _, a := range []string{
		"", "Microsoft.KeyVault/vaults/", "microsoft.keyvault/vaults/",
		"/keys/read", "keys/read/", "/", "Microsoft.KeyVault/vaults//keys/read", "Microsoft.KeyVault/vaults/keys/",
		"keys/ read", "keys/read ", " keys/read", "keys\t/read", "keys read",
	} {
		err := config.ValidateDataAction(a)
		if err == nil {
			t.Errorf("%q accepted", a)
			continue
		}
		// The message quotes the value and shows what a data action looks like.
		if !strings.Contains(err.Error(), "is not a data action such as secrets/getSecret/action, keys/* or */read") {
			t.Errorf("%q: message %q", a, err)
		}
	}
}

// Azure's data actions have one wildcard, '*'. Any other glob
// metacharacter — or any character outside ASCII letters, digits, '/',
// '.', '_' and '-' — is refused: Azure takes no such action, and the
// policy's glob matcher would read "secrets/get?" as a pattern matching
// "secrets/getx", or "\u212aeys/read" (a Kelvin sign) as keys/read once
// lower-cased. The message names the character and the one wildcard.
func TestValidateDataActionRefusesOtherPatterns(t *testing.T) {
	for _, a := range []string{
		"secrets/get?", "keys/[ab]", "keys/]", "keys/[!a]/action", "secrets/{get,set}", `keys\*`, `keys/read\`,
		"keys/read,keys/write", "keys/r!ead", "keys/read^", "Microsoft.KeyVault/vaults/secrets/*?",
		"\u212aeys/read", "keys/re\u0430d", "keys/read\x00", "keys/read\n", "keys/\u00a0read",
	} {
		err := config.ValidateDataAction(a)
		if err == nil {
			t.Errorf("%q accepted", a)
			continue
		}
		if !strings.Contains(err.Error(), "'*' is its only wildcard") {
			t.Errorf("%q: message %q", a, err)
		}
	}
}

// A refused data action or not-data action is named by its own field —
// dataActions[i] or notDataActions[i], each list indexed from 0 — with the
// line it is on, in vaultwall's YAML and in the Azure document shapes
// config reads, whose errors name the document's own path.
func TestRoleDefinitionActionFields(t *testing.T) {
	const role = `[{"id": "c0570000-0000-4000-8000-000000000001", "roleName": "Custom",
    "dataActions": [
      "secrets/getSecret/action",
      "secrets/get?"
    ],
    "notDataActions": [
      "secrets/purge/action",
      "keys/[ab]",
      "/keys/read"
    ]}]`
	vaultID := "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/vault-rg/providers/Microsoft.KeyVault/vaults/contoso-vault"
	for _, tc := range []struct {
		name, doc, base string
	}{
		{"v.yaml", `vault: {name: contoso-vault, tenantId: ` + azTenant + `, location: westeurope}
properties:
  enableRbacAuthorization: true
  roleDefinitions: ` + role + "\n", "properties"},
		{"show.json", `{"id": "` + vaultID + `", "name": "contoso-vault", "type": "Microsoft.KeyVault/vaults", "location": "westeurope",
  "properties": {"tenantId": "` + azTenant + `", "enableRbacAuthorization": true,
  "roleDefinitions": ` + role + "}}\n", "properties"},
		{"template.json", `{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "resources": [
    {"type": "Microsoft.Network/virtualNetworks", "name": "app", "apiVersion": "2024-01-01"},
    {"type": "Microsoft.KeyVault/vaults", "name": "contoso-vault", "location": "westeurope", "apiVersion": "2024-11-01",
     "properties": {"tenantId": "` + azTenant + `", "enableRbacAuthorization": true,
     "roleDefinitions": ` + role + "}}]}\n", "resources[1].properties"},
	} {
		_, err := config.Parse(tc.name, []byte(tc.doc))
		if !errors.Is(err, config.ErrInvalidValue) {
			t.Fatalf("%s: %v, want %v", tc.name, err, config.ErrInvalidValue)
		}
		lines := strings.Split(tc.doc, "\n")
		lineOf := func(value string) int {
			return slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, `"`+value+`"`) }) + 1
		}
		msgs := strings.Split(err.Error(), "\n")
		for _, want := range []struct{ field, value string }{
			{"dataActions[1]", "secrets/get?"},
			{"notDataActions[1]", "keys/[ab]"},
			{"notDataActions[2]", "/keys/read"},
		} {
			loc := fmt.Sprintf("%s:%d: %s.roleDefinitions[0].%s: ", tc.name, lineOf(want.value), tc.base, want.field)
			if !slices.ContainsFunc(msgs, func(m string) bool {
				return strings.HasPrefix(m, loc) && strings.Contains(m, strconv.Quote(want.value))
			}) {
				t.Errorf("%s: no error at %q about %q:\n%v", tc.name, loc, want.value, err)
			}
		}
		if len(msgs) != 3 {
			t.Errorf("%s: %d errors, want 3:\n%v", tc.name, len(msgs), err)
		}
	}
}

// A value of the wrong type in a list is named with its indices and map
// keys too (encoding/json names properties.roleDefinitions.notDataActions),
// in each document shape.
func TestTypeErrorNamesTheEntry(t *testing.T) {
	const role = `[{"id": "c0570000-0000-4000-8000-000000000001", "roleName": "Custom", "dataActions": ["secrets/*"]},
    {"id": "c0570000-0000-4000-8000-000000000002", "roleName": "Other", "dataActions": ["keys/*"],
     "notDataActions": [
       "keys/purge/action",
       5
    ]}]`
	vaultID := "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/vault-rg/providers/Microsoft.KeyVault/vaults/contoso-vault"
	for want, doc := range map[string]string{
		"v.yaml:8: properties.roleDefinitions[1].notDataActions[1]: wrong type: got number, want a string": `vault: {name: contoso-vault, tenantId: ` + azTenant + `, location: westeurope}
properties:
  enableRbacAuthorization: true
  roleDefinitions: ` + role + "\n",
		"show.json:7: properties.roleDefinitions[1].notDataActions[1]: wrong type: got number, want a string": `{"id": "` + vaultID + `", "name": "contoso-vault", "type": "Microsoft.KeyVault/vaults", "location": "westeurope",
  "properties": {"tenantId": "` + azTenant + `", "enableRbacAuthorization": true,
  "roleDefinitions": ` + role + "}}\n",
		"template.json:10: resources[0].properties.roleDefinitions[1].notDataActions[1]: wrong type: got number, want a string": `{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  "resources": [
    {"type": "Microsoft.KeyVault/vaults", "name": "contoso-vault", "location": "westeurope", "apiVersion": "2024-11-01",
     "properties": {"tenantId": "` + azTenant + `", "enableRbacAuthorization": true,
     "roleDefinitions": ` + role + "}}]}\n",
		// encoding/json names no map key either.
		"scope.yaml:6: trustedServices.services[1].scope.secrets[1]: wrong type: got number, want a string": `vault: {name: contoso-vault, tenantId: ` + azTenant + `, location: westeurope}
trustedServices:
  services:
    - {name: a, principals: [a]}
    - {name: b, principals: [b],
       scope: {keys: [get], secrets: [get, 5]}}
`,
	} {
		file, _, _ := strings.Cut(want, ":")
		_, err := config.Parse(file, []byte(doc))
		if !errors.Is(err, config.ErrType) || err.Error() != want {
			t.Errorf("%s: got %v, want %s", file, err, want)
		}
	}
}
