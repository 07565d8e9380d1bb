# Azure RBAC (keyvault-spec §5): in force when enableRbacAuthorization is true.
#
# data.vaultwall.role_assignments holds the assignments, indexed at load:
#   entries[i]            = {"index", "name", "id", "principal_id", "role", "scope"}
#   by_principal[id]      = the indexes of the assignments to that principal
# data.vaultwall.role_definitions[role id] = {"id", "name", "data_actions",
#   "not_data_actions"}: the built-in roles and the configuration's custom ones.
# Data actions are lower-case and relative to Microsoft.KeyVault/vaults/;
# a scope is "" (the vault) or "/secrets|keys|certificates/<name>", lower-case.
# input.operation.scope is lower case too (object names are case-insensitive
# in Key Vault and vaultwall canonicalises them); lower() keeps hand-written
# inputs honest.
package vaultwall.authz.rbac

prefix := "microsoft.keyvault/vaults/"

# action is the operation's data action, lower-case, relative to the prefix.
# An operation that is not a vault data action has none, and nothing allows it.
action := trim_prefix(lower(input.operation.data_action), prefix) if {
	startswith(lower(input.operation.data_action), prefix)
}

# An assignment at the vault ("") covers every object; one at an object
# covers only operations on that object.
scopes := {"", lower(input.operation.scope)}

# The token must come from the vault's tenant (checked inline in verdict, on
# the hot path; this rule explains a refusal).
tenant_matches if lower(input.caller.tenant_id) == lower(input.vault.tenant_id)

# granting holds the assignments to the caller, whose scope covers the
# operation and whose role allows its data action. An assignment names the
# caller by its object id or by a group in its token. Compound identity
# does not exist under RBAC: the application is ignored.
granting contains i if {
	some i in data.vaultwall.role_assignments.by_principal[lower(input.caller.object_id)]
	allows(data.vaultwall.role_assignments.entries[i])
}

granting contains i if {
	some g in input.caller.groups
	some i in data.vaultwall.role_assignments.by_principal[lower(g)]
	allows(data.vaultwall.role_assignments.entries[i])
}

# A role allows an action that one of its dataActions matches and none of its
# notDataActions does. notDataActions subtract within the role only: another
# role can still allow the action.
allows(a) if {
	a.scope in scopes
	role := data.vaultwall.role_definitions[a.role]
	some p in role.data_actions
	action_matches(p, action)
	not excluded(role)
}

excluded(role) if {
	some p in role.not_data_actions
	action_matches(p, action)
}

# Azure's wildcard: "*" matches any run of characters, "/" included, and the
# pattern must match the whole action. So "*/read" matches "keys/read" and
# "certificatecas/read" but not "secrets/readmetadata/action", and
# "secrets/*" matches every secrets action. Patterns hold no other glob
# metacharacter (checked at load), so glob.match without delimiters means
# exactly that.
action_matches(pattern, act) if pattern == act

action_matches(pattern, act) if {
	contains(pattern, "*")
	glob.match(pattern, null, act)
}

verdict := {
	"allowed": true,
	"model": "rbac",
	"code": "",
	"rule": a.name,
	"reason": concat("", [
		a.name, " gives ", a.principal_id, " the role '", data.vaultwall.role_definitions[a.role].name,
		"' at ", scope_name(a.scope), ", which allows ", action,
	]),
	"message": "",
	"access_policy_match": false,
	"assignment_id": a.id,
	"decision_reason": "",
} if {
	lower(input.caller.tenant_id) == lower(input.vault.tenant_id)
	a := data.vaultwall.role_assignments.entries[min(granting)]
} else := {
	"allowed": false,
	"model": "rbac",
	"code": "ForbiddenByRbac",
	"rule": "",
	"reason": denial_reason,
	"message": "",
	"access_policy_match": false,
	"assignment_id": "",
	"decision_reason": "DeniedWithNoValidRBAC",
}

scope_name(s) := "the vault" if s == ""

scope_name(s) := s if s != ""

denial_reason := sprintf("the caller's tenant %q is not the vault's tenant %q", [input.caller.tenant_id, input.vault.tenant_id]) if {
	not tenant_matches
} else := concat("", ["'", input.operation.data_action, "' is not a Key Vault data action"]) if {
	not action
} else := concat("", [
	"no role assignment names the caller (oid ", input.caller.object_id,
	") or one of its ", format_int(count(input.caller.groups), 10), " groups",
]) if {
	count(assigned) == 0
} else := concat("", [
	concat(", ", [describe(data.vaultwall.role_assignments.entries[i]) | some i in sort(assigned)]),
	" do not allow ", action, " at ", scope_name(lower(input.operation.scope)),
])

# assigned holds every assignment to the caller, whatever it allows.
assigned contains i if {
	some i in data.vaultwall.role_assignments.by_principal[lower(input.caller.object_id)]
}

assigned contains i if {
	some g in input.caller.groups
	some i in data.vaultwall.role_assignments.by_principal[lower(g)]
}

describe(a) := concat("", [a.name, " ('", data.vaultwall.role_definitions[a.role].name, "' at ", scope_name(a.scope), ")"])
