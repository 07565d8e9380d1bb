# Run with the shipped policy: vaultwall policy test rego/examples/business-hours
package vaultwall.operator_test

import data.vaultwall.authz
import data.vaultwall.authz.fixtures as f
import data.vaultwall.operator

# Alice may read and write secrets through an access policy.
decide(operation, at) := d if {
	d := authz.decision with input as object.union(f.request_input(f.user([]), operation, false), {"time": at})
		with data.vaultwall.access_policies as f.access_policies([f.entry(f.alice, "", {"secrets": {"get", "list", "set"}})])
}

# 2026-01-05 is a Monday; Amsterdam is UTC+1 in January and UTC+2 in July.
test_reads_on_a_working_day_are_allowed if {
	d := decide(f.get_secret, "2026-01-05T07:00:00Z") # 08:00 local
	d.allowed == true
	d.rule == "accessPolicies[0]"
}

test_reads_late_in_the_afternoon_are_allowed if {
	decide(f.list_secrets, "2026-01-05T16:59:59Z").allowed == true # 17:59:59 local
}

test_reads_after_hours_are_refused if {
	d := decide(f.get_secret, "2026-01-05T17:00:00Z") # 18:00 local
	d.allowed == false
	d.code == "ForbiddenByPolicy"
	d.rule == "data.vaultwall.operator.deny[business-hours]"
	d.message == "Secrets can be read only on working days between 08:00 and 18:00 (Europe/Amsterdam)."
}

test_reads_before_hours_are_refused if {
	decide(f.get_secret, "2026-01-05T06:59:59Z").allowed == false # 07:59:59 local
}

test_reads_on_a_weekend_are_refused if {
	decide(f.get_secret, "2026-01-03T11:00:00Z").allowed == false # Saturday noon
}

test_summer_time_is_followed if {
	decide(f.get_secret, "2026-07-06T06:30:00Z").allowed == true # Monday 08:30 CEST
	decide(f.get_secret, "2026-07-06T16:30:00Z").allowed == false # 18:30 CEST
}

test_writes_are_not_limited if {
	decide(f.set_secret, "2026-01-03T11:00:00Z").allowed == true
}

test_the_rule_never_allows_what_the_policy_refuses if {
	d := decide(f.purge_secret, "2026-01-05T10:00:00Z")
	d.allowed == false
	d.code == "AccessDenied"
}

test_deny_names_the_rule if {
	some d in operator.deny with input as object.union(f.request_input(f.user([]), f.get_secret, false), {"time": "2026-01-04T10:00:00Z"})
	d.rule == "business-hours"
}
