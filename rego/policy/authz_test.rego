package vaultwall.authz_test

import data.vaultwall.authz
import data.vaultwall.authz.fixtures as f

secrets_get := {"secrets": {"get"}}

# Alice may read secrets through an access policy and holds the Secrets User
# role; which one counts depends on the vault's model.
alice_entries := f.access_policies([f.entry(f.alice, "", secrets_get)])

alice_assignments := f.role_assignments([f.assignment(f.alice, "Key Vault Secrets User", "")])

decide(operation, rbac, denies, grants, grants_enabled) := d if {
	d := authz.decision with input as f.request_input(f.user([]), operation, rbac)
		with data.vaultwall.access_policies as alice_entries
		with data.vaultwall.role_assignments as alice_assignments
		with data.vaultwall.role_definitions as f.builtin_roles
		with data.vaultwall.operator.deny as denies
		with data.vaultwall.operator.grant as grants
		with data.vaultwall.settings.allow_operator_grants as grants_enabled
}

plain(operation, rbac) := decide(operation, rbac, set(), set(), false)

# --- models ---------------------------------------------------------------------------

test_access_policies_by_default if {
	d := plain(f.get_secret, false)
	d.allowed == true
	d.model == "accessPolicy"
	d.rule == "accessPolicies[0]"
}

test_rbac_when_enabled if {
	d := plain(f.get_secret, true)
	d.allowed == true
	d.model == "rbac"
	d.assignment_id == "roleAssignments[0]"
}

test_rbac_ignores_access_policies if {
	d := authz.decision with input as f.request_input(f.user([]), f.get_secret, true)
		with data.vaultwall.access_policies as alice_entries
		with data.vaultwall.role_assignments as f.role_assignments([])
		with data.vaultwall.role_definitions as f.builtin_roles
	d.allowed == false
	d.code == "ForbiddenByRbac"
}

test_access_policies_ignore_role_assignments if {
	d := authz.decision with input as f.request_input(f.user([]), f.get_secret, false)
		with data.vaultwall.access_policies as f.access_policies([])
		with data.vaultwall.role_assignments as alice_assignments
		with data.vaultwall.role_definitions as f.builtin_roles
	d.allowed == false
	d.code == "AccessDenied"
}

test_no_decision_without_a_boolean_rbac if {
	not authz.decision with input as object.union(f.request_input(f.user([]), f.get_secret, false), {"vault": {"rbac": "yes"}})
	not authz.decision with input as object.remove(f.request_input(f.user([]), f.get_secret, false), ["vault"])
}

test_control_plane_is_not_authorized_here[model] if {
	some model, rbac in {"accessPolicy": false, "rbac": true}
	d := plain(object.union(f.get_secret, {"plane": "control"}), rbac)
	d.allowed == false
	d.code == "ForbiddenByPolicy"
	d.model == model
	d.reason == "the control plane is not authorized by the vault's data-plane policy"
}

# --- operator rules -----------------------------------------------------------------

test_operator_deny_refuses_what_the_policy_allows[model] if {
	some model, rbac in {"accessPolicy": false, "rbac": true}
	d := decide(f.get_secret, rbac, {"reads are closed"}, set(), false)
	d.allowed == false
	d.model == model
	d.code == "ForbiddenByPolicy"
	d.message == "reads are closed"
	d.rule == "data.vaultwall.operator.deny"
	d.reason == "denied by operator rule: reads are closed"
	d.assignment_id == ""
}

test_operator_deny_keeps_the_access_policy_match if {
	d := decide(f.get_secret, false, {"no"}, set(), false)
	d.access_policy_match == true
}

test_operator_deny_names_its_rules if {
	denies := {
		{"rule": "purge-mfa", "message": "Purge needs MFA."},
		{"rule": "business-hours", "message": "Outside business hours."},
	}
	d := decide(f.get_secret, false, denies, set(), false)
	d.rule == "data.vaultwall.operator.deny[business-hours], data.vaultwall.operator.deny[purge-mfa]"
	d.message == "Outside business hours. Purge needs MFA."
}

test_operator_deny_of_any_shape_still_denies if {
	d := decide(f.get_secret, false, {{"why": 1}, 42}, set(), false)
	d.allowed == false
	d.code == "ForbiddenByPolicy"
	d.message == "42 {\"why\":1}"
}

test_operator_deny_leaves_a_shipped_refusal_alone if {
	d := decide(f.set_secret, false, {"no"}, set(), false)
	d.allowed == false
	d.code == "AccessDenied"
}

test_no_operator_rules_changes_nothing if {
	d := decide(f.get_secret, false, set(), set(), false)
	d == plain(f.get_secret, false)
}

test_operator_grant_counts_only_when_enabled if {
	d := decide(f.set_secret, false, set(), {"break glass"}, false)
	d.allowed == false
	d.code == "AccessDenied"
}

test_operator_grant_allows_when_enabled[model] if {
	some model, rbac in {"accessPolicy": false, "rbac": true}
	d := decide(f.set_secret, rbac, set(), {"break glass"}, true)
	d.allowed == true
	d.model == model
	d.code == ""
	d.decision_reason == ""
	d.rule == "data.vaultwall.operator.grant"
	startswith(d.reason, "granted by operator rule (policy.allowOperatorGrants) although the shipped policy refused: ")
}

test_operator_grant_never_crosses_tenants if {
	stranger := object.union(f.user([]), {"tenant_id": f.other_tenant})
	d := authz.decision with input as f.request_input(stranger, f.set_secret, false)
		with data.vaultwall.access_policies as alice_entries
		with data.vaultwall.operator.grant as {"everyone"}
		with data.vaultwall.settings.allow_operator_grants as true
	d.allowed == false
	d.code == "AccessDenied"
}

test_operator_deny_beats_operator_grant if {
	d := decide(f.set_secret, false, {"no"}, {"yes"}, true)
	d.allowed == false
	d.code == "ForbiddenByPolicy"
}

test_operator_grant_is_not_needed_for_a_shipped_allow if {
	d := decide(f.get_secret, false, set(), {"yes"}, true)
	d.rule == "accessPolicies[0]"
}
