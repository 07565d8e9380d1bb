package vaultwall.authz.accesspolicy_test

import data.vaultwall.authz.accesspolicy
import data.vaultwall.authz.fixtures as f

# decide evaluates the access-policy model for a caller, an operation and the
# vault's entries.
decide(caller, operation, entries) := v if {
	v := accesspolicy.verdict with input as f.request_input(caller, operation, false)
		with data.vaultwall.access_policies as f.access_policies(entries)
}

secrets_get := {"secrets": {"get"}}

# --- identity kinds ---------------------------------------------------------------

test_user_only_entry_allows_the_user_through_any_application if {
	v := decide(f.user([]), f.get_secret, [f.entry(f.alice, "", secrets_get)])
	v.allowed == true
	v.code == ""
	v.rule == "accessPolicies[0]"
	v.access_policy_match == true
	v.reason == sprintf("accessPolicies[0] (objectId %s) grants secrets get", [f.alice])
}

test_app_only_entry_allows_the_application if {
	v := decide(f.backend, f.get_secret, [f.entry(f.backend_sp, "", secrets_get)])
	v.allowed == true
	v.rule == "accessPolicies[0]"
}

test_entry_for_someone_else_denies if {
	v := decide(f.user([]), f.get_secret, [f.entry(f.backend_sp, "", secrets_get)])
	v.allowed == false
	v.code == "AccessDenied"
	v.rule == ""
	v.access_policy_match == false
	startswith(v.reason, "no access-policy entry names the caller")
	contains(v.reason, f.alice)
}

test_compound_identity_allows_the_user_through_that_application if {
	v := decide(f.user([]), f.get_secret, [f.entry(f.alice, f.web_app, secrets_get)])
	v.allowed == true
	v.reason == sprintf("accessPolicies[0] (compound identity %s) grants secrets get", [f.alice])
}

test_compound_identity_refuses_the_user_through_another_application if {
	caller := object.union(f.user([]), {"application_id": f.other_app})
	v := decide(caller, f.get_secret, [f.entry(f.alice, f.web_app, secrets_get)])
	v.allowed == false
	v.code == "AccessDenied"
}

test_compound_identity_refuses_the_application_alone if {
	app := object.union(f.backend, {"application_id": f.web_app})
	v := decide(app, f.get_secret, [f.entry(f.alice, f.web_app, secrets_get)])
	v.allowed == false
}

test_compound_identity_needs_an_application_id if {
	# An entry with an empty applicationId is app-only or user-only.
	v := decide(object.union(f.user([]), {"application_id": ""}), f.get_secret, [f.entry(f.alice, "", secrets_get)])
	v.allowed == true
	v.reason == sprintf("accessPolicies[0] (objectId %s) grants secrets get", [f.alice])
}

test_compound_identity_refuses_a_token_without_application if {
	caller := object.union(f.user([]), {"application_id": ""})
	v := decide(caller, f.get_secret, [f.entry(f.alice, f.web_app, secrets_get)])
	v.allowed == false
}

test_application_id_compared_case_insensitively if {
	caller := object.union(f.user([]), {"application_id": upper(f.web_app)})
	v := decide(caller, f.get_secret, [f.entry(f.alice, f.web_app, secrets_get)])
	v.allowed == true
}

test_group_entry_allows_a_member if {
	v := decide(f.user([f.dev_group, f.ops_group]), f.get_secret, [f.entry(f.ops_group, "", secrets_get)])
	v.allowed == true
	v.rule == "accessPolicies[0]"
	v.reason == sprintf("accessPolicies[0] (group %s) grants secrets get", [f.ops_group])
}

test_group_entry_refuses_a_non_member if {
	v := decide(f.user([f.dev_group]), f.get_secret, [f.entry(f.ops_group, "", secrets_get)])
	v.allowed == false
	contains(v.reason, "or one of its 1 groups")
}

test_group_entry_with_application_is_not_compound if {
	# Compound identity names the user's own object id, not a group's.
	v := decide(f.user([f.ops_group]), f.get_secret, [f.entry(f.ops_group, f.web_app, secrets_get)])
	v.allowed == false
}

test_groups_overage_cannot_match_group_entries if {
	caller := object.union(f.user([]), {"groups_overage": true})
	v := decide(caller, f.get_secret, [f.entry(f.ops_group, "", secrets_get)])
	v.allowed == false
	endswith(v.reason, "the token has a groups overage, so group entries could not be matched")
}

test_object_id_compared_case_insensitively if {
	caller := object.union(f.user([]), {"object_id": upper(f.alice)})
	v := decide(caller, f.get_secret, [f.entry(f.alice, "", secrets_get)])
	v.allowed == true
}

# --- permissions ------------------------------------------------------------------

test_missing_permission_denies_naming_the_matching_entries if {
	entries := [
		f.entry(f.alice, "", {"secrets": {"list"}}),
		f.entry(f.backend_sp, "", secrets_get),
		f.entry(f.ops_group, "", {"keys": {"get"}}),
	]
	v := decide(f.user([f.ops_group]), f.get_secret, entries)
	v.allowed == false
	v.code == "AccessDenied"
	v.reason == "accessPolicies[0], accessPolicies[2] match the caller but none grants secrets get"
}

test_permission_compared_case_insensitively if {
	v := decide(f.backend, f.wrap_key, [f.entry(f.backend_sp, "", {"keys": {"wrapkey"}})])
	v.allowed == true
	upper_op := object.union(f.get_secret, {"permission": "GET"})
	decide(f.backend, upper_op, [f.entry(f.backend_sp, "", secrets_get)]).allowed == true
}

test_all_grants_every_permission_of_its_family if {
	entries := [f.entry(f.alice, "", {"secrets": {"all"}})]
	decide(f.user([]), f.get_secret, entries).allowed == true
	decide(f.user([]), f.purge_secret, entries).allowed == true
	decide(f.user([]), f.get_key, entries).allowed == false
}

test_permission_of_another_family_does_not_grant if {
	v := decide(f.user([]), f.get_key, [f.entry(f.alice, "", secrets_get)])
	v.allowed == false
}

test_permissions_are_the_union_of_matching_entries if {
	entries := [
		f.entry(f.alice, "", {"secrets": {"list"}}),
		f.entry(f.alice, f.web_app, {"secrets": {"set"}}),
		f.entry(f.ops_group, "", secrets_get),
	]
	caller := f.user([f.ops_group])
	decide(caller, f.list_secrets, entries).rule == "accessPolicies[0]"
	decide(caller, f.set_secret, entries).rule == "accessPolicies[1]"
	decide(caller, f.get_secret, entries).rule == "accessPolicies[2]"
	decide(caller, f.purge_secret, entries).allowed == false
}

test_the_first_granting_entry_is_named if {
	entries := [
		f.entry(f.backend_sp, "", secrets_get),
		f.entry(f.ops_group, "", secrets_get),
		f.entry(f.alice, "", secrets_get),
	]
	decide(f.user([f.ops_group]), f.get_secret, entries).rule == "accessPolicies[1]"
}

test_manageissuers_covers_the_issuer_permissions if {
	entries := [f.entry(f.alice, "", {"certificates": {"manageissuers"}})]
	decide(f.user([]), f.get_issuer, entries).allowed == true
	decide(f.user([]), f.set_issuer, entries).allowed == true
	decide(f.user([]), f.get_certificate, entries).allowed == false
}

test_operation_without_a_family_is_denied if {
	operation := object.union(f.get_secret, {"resource": "", "permission": ""})
	v := decide(f.user([]), operation, [f.entry(f.alice, "", {"secrets": {"all"}})])
	v.allowed == false
}

# --- tenants -----------------------------------------------------------------------

test_caller_from_another_tenant_is_denied if {
	caller := object.union(f.user([]), {"tenant_id": f.other_tenant})
	v := decide(caller, f.get_secret, [f.entry(f.alice, "", secrets_get)])
	v.allowed == false
	v.code == "AccessDenied"
	v.reason == sprintf("the caller's tenant %q is not the vault's tenant %q", [f.other_tenant, f.tenant])
}

test_entry_of_another_tenant_grants_nothing if {
	e := object.union(f.entry(f.alice, "", secrets_get), {"tenant_id": f.other_tenant})
	v := decide(f.user([]), f.get_secret, [e])
	v.allowed == false
	v.reason == "accessPolicies[0] match the caller but none grants secrets get"
}

# Every way an entry grants — the permission, "all", manageissuers for an
# issuer permission — needs the entry to carry the vault's tenant.
test_entry_of_another_tenant_grants_nothing_by_any_rule[name] if {
	some name, c in {
		"the permission": [{"secrets": {"get"}}, f.get_secret],
		"all": [{"secrets": {"all"}}, f.get_secret],
		"manageissuers": [{"certificates": {"manageissuers"}}, f.set_issuer],
	}
	[perms, operation] := c
	e := object.union(f.entry(f.alice, "", perms), {"tenant_id": f.other_tenant})
	decide(f.user([]), operation, [e]).allowed == false
	decide(f.user([]), operation, [f.entry(f.alice, "", perms)]).allowed == true
}

test_tenant_compared_case_insensitively if {
	caller := object.union(f.user([]), {"tenant_id": upper(f.tenant)})
	decide(caller, f.get_secret, [f.entry(f.alice, "", secrets_get)]).allowed == true
}

test_no_entries_denies if {
	v := decide(f.user([]), f.get_secret, [])
	v.allowed == false
	v.reason == sprintf("no access-policy entry names the caller (oid %s, appid %s) or one of its 0 groups", [f.alice, f.web_app])
}
