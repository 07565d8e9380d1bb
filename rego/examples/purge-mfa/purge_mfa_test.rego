# Run with the shipped policy: vaultwall policy test rego/examples/purge-mfa
package vaultwall.operator_test

import data.vaultwall.authz
import data.vaultwall.authz.fixtures as f

# Alice and the backend may purge secrets and keys through access policies.
entries := [
	f.entry(f.alice, "", {"secrets": {"all"}, "keys": {"purge"}}),
	f.entry(f.backend_sp, "", {"secrets": {"purge", "get"}}),
]

decide(caller, operation) := d if {
	d := authz.decision with input as f.request_input(caller, operation, false)
		with data.vaultwall.access_policies as f.access_policies(entries)
}

with_amr(caller, amr) := object.union(object.remove(caller, ["claims"]), {"claims": {"amr": amr}})

without_claims(caller) := object.union(object.remove(caller, ["claims"]), {"claims": {}})

test_purge_after_mfa_is_allowed if {
	decide(with_amr(f.user([]), ["pwd", "mfa"]), f.purge_secret).allowed == true
	decide(with_amr(f.user([]), ["mfa"]), f.purge_key).allowed == true
}

test_purge_with_a_password_alone_is_refused if {
	d := decide(with_amr(f.user([]), ["pwd"]), f.purge_secret)
	d.allowed == false
	d.code == "ForbiddenByPolicy"
	d.rule == "data.vaultwall.operator.deny[purge-mfa]"
	d.message == "Purging needs a token from a multi-factor sign-in (the amr claim must include \"mfa\")."
	d.access_policy_match == true
}

test_purge_without_amr_is_refused if {
	decide(without_claims(f.user([])), f.purge_secret).allowed == false
}

test_applications_cannot_purge if {
	decide(f.backend, f.purge_secret).allowed == false
}

test_amr_of_the_wrong_type_is_refused if {
	decide(with_amr(f.user([]), "mfa"), f.purge_secret).allowed == false
}

test_other_operations_need_no_mfa if {
	decide(with_amr(f.user([]), ["pwd"]), f.get_secret).allowed == true
	decide(f.backend, f.get_secret).allowed == true
}

test_the_rule_applies_under_rbac_too if {
	d := authz.decision with input as f.request_input(with_amr(f.user([]), ["pwd"]), f.purge_secret, true)
		with data.vaultwall.role_assignments as f.role_assignments([f.assignment(f.alice, "Key Vault Secrets Officer", "")])
		with data.vaultwall.role_definitions as f.builtin_roles
	d.allowed == false
	d.model == "rbac"
	d.code == "ForbiddenByPolicy"
}
