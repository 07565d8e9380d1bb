package controlplane

import "github.com/vaultwall/vaultwall/authz"

type (
	accessPolicy   = authz.AccessPolicy
	roleAssignment = authz.RoleAssignment
)
