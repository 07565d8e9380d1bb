package vaultwall.authz.rbac_test

import data.vaultwall.authz.fixtures as f
import data.vaultwall.authz.rbac

decide(caller, operation, assignments) := v if {
	v := rbac.verdict with input as f.request_input(caller, operation, true)
		with data.vaultwall.role_assignments as f.role_assignments(assignments)
		with data.vaultwall.role_definitions as f.builtin_roles
}

decide_custom(caller, operation, assignments, custom) := v if {
	v := rbac.verdict with input as f.request_input(caller, operation, true)
		with data.vaultwall.role_assignments as f.role_assignments(assignments)
		with data.vaultwall.role_definitions as object.union(f.builtin_roles, custom)
}

# --- wildcards ----------------------------------------------------------------------

# Azure's "*" matches any run of characters, "/" included; the whole action
# must match.
wildcard_cases := {
	"star matches a secrets action": ["*", "secrets/getsecret/action", true],
	"star matches a key read": ["*", "keys/read", true],
	"*/read matches keys/read": ["*/read", "keys/read", true],
	"*/read matches certificatecas/read": ["*/read", "certificatecas/read", true],
	"*/read matches keyrotationpolicies/read": ["*/read", "keyrotationpolicies/read", true],
	"*/read spans segments": ["*/read", "storageaccounts/sas/read", true],
	"*/read does not match readMetadata": ["*/read", "secrets/readmetadata/action", false],
	"*/read does not match a write": ["*/read", "keys/write", false],
	"*/read does not match a suffix of a word": ["*/read", "keys/reread", false],
	"secrets/* matches getSecret": ["secrets/*", "secrets/getsecret/action", true],
	"secrets/* matches delete": ["secrets/*", "secrets/delete", true],
	"secrets/* does not match keys": ["secrets/*", "keys/read", false],
	"secrets/* does not match another resource with the prefix": ["secrets/*", "secretsx/read", false],
	"keys/* does not match key rotation policies": ["keys/*", "keyrotationpolicies/read", false],
	"keys/* matches purge": ["keys/*", "keys/purge/action", true],
	"a middle star": ["keys/*/action", "keys/wrap/action", true],
	"a middle star needs the suffix": ["keys/*/action", "keys/read", false],
	"exact match": ["keys/read", "keys/read", true],
	"exact needs the whole action": ["keys/read", "keys/read/x", false],
	"no prefix match without a star": ["keys", "keys/read", false],
	"a star matches the empty run": ["keys/read*", "keys/read", true],
	"two stars": ["*/*/action", "secrets/getsecret/action", true],
	"two stars need two slashes": ["*/*/action", "secrets/action", false],
}

test_wildcards[name] if {
	some name, c in wildcard_cases
	[pattern, action, want] := c
	matches(pattern, action) == want
}

matches(pattern, action) if {
	rbac.action_matches(pattern, action)
} else := false

# --- built-in roles: a permitted and a forbidden operation each --------------------

role_cases := {
	"Key Vault Administrator": [f.purge_secret, object.union(f.get_secret, {"data_action": "Microsoft.Storage/storageAccounts/read"})],
	"Key Vault Reader": [f.get_key, f.get_secret],
	"Key Vault Reader lists secrets": [f.list_secrets, f.set_secret],
	"Key Vault Reader reads issuers": [f.get_issuer, f.set_issuer],
	"Key Vault Secrets Officer": [f.purge_secret, f.get_key],
	"Key Vault Secrets User": [f.get_secret, f.set_secret],
	"Key Vault Crypto Officer": [f.purge_key, f.get_secret],
	"Key Vault Crypto Officer rotation policies": [f.set_rotation_policy, f.get_certificate],
	"Key Vault Crypto User": [f.encrypt_key, f.delete_key],
	"Key Vault Crypto Service Encryption User": [f.wrap_key, f.sign_key],
	"Key Vault Crypto Service Release User": [f.release_key, f.get_key],
	"Key Vault Certificates Officer": [f.purge_certificate, f.get_secret],
	"Key Vault Certificates Officer issuers and contacts": [f.set_contacts, f.purge_key],
	"Key Vault Certificates Officer issuers": [f.set_issuer, f.set_secret],
	"Key Vault Certificate User": [f.get_certificate, f.delete_certificate],
	"Key Vault Certificate User private key": [f.get_secret, f.set_secret],
}

role_of(case_name) := name if {
	some name in {r.name | some r in f.builtin_roles}
	startswith(case_name, name)
	not longer_role_name(case_name, name)
}

longer_role_name(case_name, name) if {
	some r in f.builtin_roles
	r.name != name
	startswith(r.name, name)
	startswith(case_name, r.name)
}

test_builtin_role_permits[name] if {
	some name, c in role_cases
	v := decide(f.backend, c[0], [f.assignment(f.backend_sp, role_of(name), "")])
	v.allowed == true
	v.code == ""
	v.assignment_id == "roleAssignments[0]"
	v.rule == "roleAssignments[0]"
}

test_builtin_role_forbids[name] if {
	some name, c in role_cases
	v := decide(f.backend, c[1], [f.assignment(f.backend_sp, role_of(name), "")])
	v.allowed == false
	v.code == "ForbiddenByRbac"
	v.decision_reason == "DeniedWithNoValidRBAC"
	v.assignment_id == ""
}

test_roles_without_data_actions_forbid[name] if {
	some name in {"Key Vault Contributor", "Key Vault Data Access Administrator"}
	v := decide(f.backend, f.get_secret, [f.assignment(f.backend_sp, name, "")])
	v.allowed == false
	v.reason == sprintf("roleAssignments[0] ('%s' at the vault) do not allow secrets/getsecret/action at /secrets/db", [name])
}

test_allow_reason_names_assignment_role_and_scope if {
	v := decide(f.backend, f.get_secret, [f.assignment(f.backend_sp, "Key Vault Secrets User", "")])
	v.reason == sprintf("roleAssignments[0] gives %s the role 'Key Vault Secrets User' at the vault, which allows secrets/getsecret/action", [f.backend_sp])
}

test_configured_assignment_id_is_reported if {
	a := object.union(f.assignment(f.backend_sp, "Key Vault Secrets User", ""), {"id": "ra-backend"})
	v := decide(f.backend, f.get_secret, [a])
	v.assignment_id == "ra-backend"
	v.rule == "roleAssignments[0]"
}

test_role_referenced_by_id if {
	v := decide(f.backend, f.get_secret, [f.assignment(f.backend_sp, "4633458b-17de-408a-b874-0445c86b69e6", "")])
	v.allowed == true
}

# --- scopes ----------------------------------------------------------------------------

test_object_scoped_assignment_covers_its_object if {
	v := decide(f.backend, f.get_secret, [f.assignment(f.backend_sp, "Key Vault Secrets User", "/secrets/db")])
	v.allowed == true
	contains(v.reason, "at /secrets/db")
}

test_object_scope_compared_case_insensitively if {
	operation := object.union(f.get_secret, {"object": "DB", "scope": "/secrets/DB"})
	v := decide(f.backend, operation, [f.assignment(f.backend_sp, "Key Vault Secrets User", "/secrets/Db")])
	v.allowed == true
}

test_object_scoped_assignment_does_not_cover_another_object if {
	operation := object.union(f.get_secret, {"object": "other", "scope": "/secrets/other"})
	v := decide(f.backend, operation, [f.assignment(f.backend_sp, "Key Vault Secrets User", "/secrets/db")])
	v.allowed == false
	v.reason == "roleAssignments[0] ('Key Vault Secrets User' at /secrets/db) do not allow secrets/getsecret/action at /secrets/other"
}

test_object_scoped_assignment_does_not_cover_the_collection if {
	v := decide(f.backend, f.list_secrets, [f.assignment(f.backend_sp, "Key Vault Secrets User", "/secrets/db")])
	v.allowed == false
}

test_object_scope_of_another_kind_does_not_cover if {
	v := decide(f.backend, f.get_key, [f.assignment(f.backend_sp, "Key Vault Reader", "/secrets/k1")])
	v.allowed == false
}

test_vault_scope_covers_every_object if {
	v := decide(f.backend, f.get_key, [f.assignment(f.backend_sp, "Key Vault Reader", "")])
	v.allowed == true
}

# An object scope is matched exactly, never as a prefix in either direction:
# an assignment on /secrets/db grants neither /secrets/db2 nor /secrets/d, and
# a scope with a trailing slash is another scope (the router never produces
# one and the configuration refuses one; the policy must not paper over it).
exact_scope_cases := {
	"secret: a longer name with the assigned name as prefix": ["secrets", "secrets/getSecret/action", "Key Vault Secrets User", "/secrets/db", "db2"],
	"secret: a shorter name that prefixes the assigned one": ["secrets", "secrets/getSecret/action", "Key Vault Secrets User", "/secrets/db2", "db"],
	"secret: the assigned name with a suffix after a dash": ["secrets", "secrets/getSecret/action", "Key Vault Secrets User", "/secrets/db", "db-old"],
	"key: a longer name with the assigned name as prefix": ["keys", "keys/read", "Key Vault Crypto User", "/keys/k", "k2"],
	"key: a shorter name that prefixes the assigned one": ["keys", "keys/read", "Key Vault Crypto User", "/keys/k2", "k"],
}

test_object_scope_is_an_exact_match[name] if {
	some name, c in exact_scope_cases
	[resource, action, role, scope, object] := c
	operation := f.op(resource, "get", action, object)
	v := decide(f.backend, operation, [f.assignment(f.backend_sp, role, scope)])
	v.allowed == false
	v.code == "ForbiddenByRbac"
}

# The same requests on the assigned object itself are allowed: the refusals
# above are about the scope, not about the role.
test_object_scope_exact_match_allows_the_object_itself[name] if {
	some name, c in exact_scope_cases
	[resource, action, role, scope, _] := c
	object := substring(scope, count(resource) + 2, -1)
	operation := f.op(resource, "get", action, object)
	v := decide(f.backend, operation, [f.assignment(f.backend_sp, role, scope)])
	v.allowed == true
}

test_object_scope_with_a_trailing_slash_is_another_scope if {
	operation := object.union(f.get_secret, {"scope": "/secrets/db/"})
	v := decide(f.backend, operation, [f.assignment(f.backend_sp, "Key Vault Secrets User", "/secrets/db")])
	v.allowed == false
}

test_assignment_scope_with_a_trailing_slash_does_not_cover_the_object if {
	v := decide(f.backend, f.get_secret, [f.assignment(f.backend_sp, "Key Vault Secrets User", "/secrets/db/")])
	v.allowed == false
}

test_collection_scope_does_not_cover_its_objects if {
	v := decide(f.backend, f.get_secret, [f.assignment(f.backend_sp, "Key Vault Secrets User", "/secrets")])
	v.allowed == false
}

# --- principals ---------------------------------------------------------------------------

test_group_assignment_allows_a_member if {
	v := decide(f.user([f.dev_group, f.ops_group]), f.get_secret, [f.assignment(f.ops_group, "Key Vault Secrets User", "")])
	v.allowed == true
}

test_group_assignment_refuses_a_non_member if {
	v := decide(f.user([f.dev_group]), f.get_secret, [f.assignment(f.ops_group, "Key Vault Secrets User", "")])
	v.allowed == false
	v.reason == sprintf("no role assignment names the caller (oid %s) or one of its 1 groups", [f.alice])
}

test_principal_compared_case_insensitively if {
	v := decide(f.backend, f.get_secret, [f.assignment(upper(f.backend_sp), "Key Vault Secrets User", "")])
	v.allowed == true
}

test_no_compound_identity_under_rbac if {
	# An assignment to the application's id is not an assignment to a user
	# signed in through it.
	v := decide(f.user([]), f.get_secret, [f.assignment(f.web_app, "Key Vault Secrets User", "")])
	v.allowed == false
}

test_roles_add_up_across_assignments if {
	assignments := [
		f.assignment(f.alice, "Key Vault Reader", ""),
		f.assignment(f.ops_group, "Key Vault Secrets User", "/secrets/db"),
	]
	caller := f.user([f.ops_group])
	decide(caller, f.get_key, assignments).assignment_id == "roleAssignments[0]"
	decide(caller, f.get_secret, assignments).assignment_id == "roleAssignments[1]"
	decide(caller, f.set_secret, assignments).allowed == false
}

test_first_granting_assignment_is_reported if {
	assignments := [
		f.assignment(f.alice, "Key Vault Reader", ""),
		f.assignment(f.alice, "Key Vault Secrets Officer", ""),
		f.assignment(f.alice, "Key Vault Administrator", ""),
	]
	decide(f.user([]), f.set_secret, assignments).assignment_id == "roleAssignments[1]"
}

# --- custom roles and notDataActions ------------------------------------------------------

custom_roles := {
	"c0570000-0000-4000-8000-000000000001": {
		"id": "c0570000-0000-4000-8000-000000000001",
		"name": "Secrets reader without purge",
		"data_actions": ["secrets/*"],
		"not_data_actions": ["secrets/purge/action", "secrets/delete"],
	},
	"c0570000-0000-4000-8000-000000000002": {
		"id": "c0570000-0000-4000-8000-000000000002",
		"name": "Everything but keys",
		"data_actions": ["*"],
		"not_data_actions": ["keys/*"],
	},
}

test_custom_role_allows_its_data_actions if {
	v := decide_custom(f.backend, f.set_secret, [f.assignment(f.backend_sp, "c0570000-0000-4000-8000-000000000001", "")], custom_roles)
	v.allowed == true
	contains(v.reason, "'Secrets reader without purge'")
}

test_not_data_actions_subtract if {
	v := decide_custom(f.backend, f.purge_secret, [f.assignment(f.backend_sp, "c0570000-0000-4000-8000-000000000001", "")], custom_roles)
	v.allowed == false
	v.code == "ForbiddenByRbac"
}

test_not_data_actions_with_wildcards if {
	a := [f.assignment(f.backend_sp, "c0570000-0000-4000-8000-000000000002", "")]
	decide_custom(f.backend, f.get_secret, a, custom_roles).allowed == true
	decide_custom(f.backend, f.get_key, a, custom_roles).allowed == false
	decide_custom(f.backend, f.set_rotation_policy, a, custom_roles).allowed == true
}

test_not_data_actions_do_not_cross_roles if {
	# notDataActions narrow their own role; another role can still allow.
	a := [
		f.assignment(f.backend_sp, "c0570000-0000-4000-8000-000000000001", ""),
		f.assignment(f.backend_sp, "Key Vault Secrets Officer", ""),
	]
	v := decide_custom(f.backend, f.purge_secret, a, custom_roles)
	v.allowed == true
	v.assignment_id == "roleAssignments[1]"
}

# --- refusals --------------------------------------------------------------------------------

test_caller_from_another_tenant_is_denied if {
	caller := object.union(f.backend, {"tenant_id": f.other_tenant})
	v := decide(caller, f.get_secret, [f.assignment(f.backend_sp, "Key Vault Administrator", "")])
	v.allowed == false
	v.code == "ForbiddenByRbac"
	v.decision_reason == "DeniedWithNoValidRBAC"
	v.reason == sprintf("the caller's tenant %q is not the vault's tenant %q", [f.other_tenant, f.tenant])
}

test_action_outside_key_vault_is_denied if {
	operation := object.union(f.get_secret, {"data_action": "Microsoft.Storage/storageAccounts/read"})
	v := decide(f.backend, operation, [f.assignment(f.backend_sp, "Key Vault Administrator", "")])
	v.allowed == false
	v.reason == "'Microsoft.Storage/storageAccounts/read' is not a Key Vault data action"
}

test_data_action_compared_case_insensitively if {
	operation := object.union(f.get_secret, {"data_action": "MICROSOFT.KEYVAULT/VAULTS/SECRETS/GETSECRET/ACTION"})
	decide(f.backend, operation, [f.assignment(f.backend_sp, "Key Vault Secrets User", "")]).allowed == true
}

test_no_assignments_denies if {
	v := decide(f.backend, f.get_secret, [])
	v.allowed == false
	v.rule == ""
	v.access_policy_match == false
}
