package authz

import "strings"

// Permission families of an access policy.
const (
	FamilyKeys         = "keys"
	FamilySecrets      = "secrets"
	FamilyCertificates = "certificates"
	FamilyStorage      = "storage"
)

// KnownPermissions lists every access-policy permission Key Vault defines,
// per family, in the spec's casing (keyvault-spec §4). "all" grants every
// permission of its family.
var KnownPermissions = map[string][]string{
	FamilyKeys: {"all", "encrypt", "decrypt", "wrapKey", "unwrapKey", "sign", "verify", "get", "list",
		"create", "update", "import", "delete", "backup", "restore", "recover", "purge", "release",
		"rotate", "getrotationpolicy", "setrotationpolicy"},
	FamilySecrets: {"all", "get", "list", "set", "delete", "backup", "restore", "recover", "purge"},
	FamilyCertificates: {"all", "get", "list", "delete", "create", "import", "update", "managecontacts",
		"getissuers", "listissuers", "setissuers", "deleteissuers", "manageissuers", "recover", "purge",
		"backup", "restore"},
	FamilyStorage: {"all", "get", "list", "delete", "set", "update", "regeneratekey", "recover", "purge",
		"backup", "restore", "setsas", "listsas", "getsas", "deletesas"},
}

// CanonicalPermission returns the spec casing of a permission of family,
// matched case-insensitively, and whether it exists.
func CanonicalPermission(family, perm string) (string, bool) {
	for _, p := range KnownPermissions[family] {
		if strings.EqualFold(p, perm) {
			return p, true
		}
	}
	return "", false
}

// DataActionPrefix prefixes every vault data action.
const DataActionPrefix = "Microsoft.KeyVault/vaults/"

// BuiltinRoles are Key Vault's built-in data-plane roles (keyvault-spec §5).
// Data actions are relative to DataActionPrefix.
var BuiltinRoles = []RoleDefinition{
	{ID: "00482a5a-887f-4fb3-b363-3b7fe8e74483", RoleName: "Key Vault Administrator", DataActions: []string{"*"}},
	{ID: "21090545-7ca7-4776-b22c-e363652d74d2", RoleName: "Key Vault Reader", DataActions: []string{"*/read", "secrets/readMetadata/action"}},
	{ID: "b86a8fe4-44ce-4948-aee5-eccb2c155cd7", RoleName: "Key Vault Secrets Officer", DataActions: []string{"secrets/*"}},
	{ID: "4633458b-17de-408a-b874-0445c86b69e6", RoleName: "Key Vault Secrets User", DataActions: []string{"secrets/getSecret/action", "secrets/readMetadata/action"}},
	{ID: "14b46e9e-c2b7-41b4-b07b-48a6ebf60603", RoleName: "Key Vault Crypto Officer", DataActions: []string{"keys/*", "keyrotationpolicies/*"}},
	{ID: "12338af0-0e69-4776-bea7-57ae8d297424", RoleName: "Key Vault Crypto User", DataActions: []string{"keys/read",
		"keys/update/action", "keys/backup/action", "keys/encrypt/action", "keys/decrypt/action",
		"keys/wrap/action", "keys/unwrap/action", "keys/sign/action", "keys/verify/action"}},
	{ID: "e147488a-f6f5-4113-8e2d-b22465e65bf6", RoleName: "Key Vault Crypto Service Encryption User", DataActions: []string{"keys/read", "keys/wrap/action", "keys/unwrap/action"}},
	{ID: "08bbd89e-9f13-488c-ac41-acfcb10c90ab", RoleName: "Key Vault Crypto Service Release User", DataActions: []string{"keys/release/action"}},
	{ID: "a4417e6f-fecd-4de8-b567-7b0420556985", RoleName: "Key Vault Certificates Officer", DataActions: []string{"certificatecas/*", "certificates/*", "certificatecontacts/write"}},
	{ID: "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba", RoleName: "Key Vault Certificate User", DataActions: []string{"certificates/read", "secrets/getSecret/action", "secrets/readMetadata/action", "keys/read"}},
	{ID: "f25e0fa2-a7c8-4377-a976-54943a77a395", RoleName: "Key Vault Contributor"},
	{ID: "8b54135c-b56d-4d72-a534-26097cfdc8d8", RoleName: "Key Vault Data Access Administrator"},
}

// LookupRole finds a role by id or by name (case-insensitively) among the
// built-in roles and the given custom ones.
func LookupRole(idOrName string, custom []RoleDefinition) (RoleDefinition, bool) {
	for _, set := range [][]RoleDefinition{custom, BuiltinRoles} {
		for _, r := range set {
			if strings.EqualFold(r.ID, idOrName) || strings.EqualFold(r.RoleName, idOrName) {
				return r, true
			}
		}
	}
	return RoleDefinition{}, false
}
