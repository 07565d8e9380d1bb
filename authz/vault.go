package authz

import "strings"

// Vault is the protected vault's identity, as Key Vault's messages and audit
// records name it.
type Vault struct {
	Name     string
	TenantID string
	Location string
	// ResourceID is the vault's ARM id, e.g.
	// /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.KeyVault/vaults/<name>.
	ResourceID string
	// RBAC is enableRbacAuthorization: data actions are authorized by role
	// assignments, and access policies are ignored.
	RBAC bool
	// Challenge is the WWW-Authenticate value every 401 carries:
	// Bearer authorization="<authority>/<tenantId>", resource="<resource>".
	Challenge string
}

// Label is "<vault>;location=<location>", the way Key Vault's 403 messages
// end.
func (v *Vault) Label() string { return v.Name + ";location=" + v.Location }

// RBACResource is the lower-cased vault id plus the operation's scope, the
// Resource line of a ForbiddenByRbac message.
func (v *Vault) RBACResource(op *Operation) string {
	return strings.ToLower(v.ResourceID) + op.Scope
}

// AccessPolicy is one entry of the vault's accessPolicies, ARM-shaped.
type AccessPolicy struct {
	TenantID      string      `json:"tenantId"`
	ObjectID      string      `json:"objectId"`
	ApplicationID string      `json:"applicationId,omitempty"`
	Permissions   Permissions `json:"permissions"`
}

// Permissions lists the permissions an access policy grants per family.
type Permissions struct {
	Keys         []string `json:"keys,omitempty"`
	Secrets      []string `json:"secrets,omitempty"`
	Certificates []string `json:"certificates,omitempty"`
	Storage      []string `json:"storage,omitempty"`
}

// RoleAssignment grants a role to a principal at a scope (RBAC vaults).
type RoleAssignment struct {
	// ID names the assignment in messages and headers; generated if empty.
	ID          string `json:"id,omitempty"`
	PrincipalID string `json:"principalId"`
	// RoleDefinitionID is a role's id (GUID) or name ("Key Vault Secrets User").
	RoleDefinitionID string `json:"roleDefinitionId"`
	// Scope is "/" (the whole vault) or "/secrets/<name>", "/keys/<name>",
	// "/certificates/<name>"; empty means the vault. An ARM id may be
	// given: the vault's own (with an object's path), or the vault's
	// resource group or subscription, which mean the whole vault.
	Scope string `json:"scope,omitempty"`
}

// RoleDefinition is a custom role: a name and the data actions it allows.
type RoleDefinition struct {
	ID       string `json:"id"`
	RoleName string `json:"roleName"`
	// DataActions are relative to Microsoft.KeyVault/vaults/ or written in
	// full ("secrets/getSecret/action", "keys/*", "*/read"); "*" is the
	// only wildcard.
	DataActions []string `json:"dataActions"`
	// NotDataActions, written as DataActions, subtract from this role.
	NotDataActions []string `json:"notDataActions,omitempty"`
}
