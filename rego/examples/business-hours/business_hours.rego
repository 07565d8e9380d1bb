# Example operator rule: secrets are read only during business hours.
#
# Put this file in policy.dir. It narrows what the shipped policy allows: a
# caller who may read a secret may do so on working days from 08:00 to 18:00,
# Amsterdam time, and is refused (403 ForbiddenByPolicy, with the message
# below) at any other time. input.time is the decision's clock, in UTC.
package vaultwall.operator

business_zone := "Europe/Amsterdam"

# The schema annotation lets `opa check -s rego/schema` and editors type-check
# the rule as vaultwall does (vaultwall checks every rule without it).
#
# METADATA
# schemas:
#   - input: schema.input
deny contains {
	"rule": "business-hours",
	"message": "Secrets can be read only on working days between 08:00 and 18:00 (Europe/Amsterdam).",
} if {
	input.operation.resource == "secrets"
	input.operation.permission in {"get", "list"}
	not business_hours
}

business_hours if {
	now := [time.parse_rfc3339_ns(input.time), business_zone]
	not time.weekday(now) in {"Saturday", "Sunday"}
	[hour, _, _] := time.clock(now)
	hour >= 8
	hour < 18
}
