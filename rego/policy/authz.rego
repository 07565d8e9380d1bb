# vaultwall's shipped authorization policy: Azure Key Vault's data-plane access
# model (keyvault-spec §4, §5). vaultwall queries data.vaultwall.authz.decision
# once per request that passed authentication and the firewall.
#
# The input document and the data are described in rego/README.md.
package vaultwall.authz

import data.vaultwall.authz.accesspolicy
import data.vaultwall.authz.rbac

# model is the authorization model in force: enableRbacAuthorization selects
# Azure RBAC, and access policies are then ignored entirely.
model := "rbac" if input.vault.rbac == true

model := "accessPolicy" if input.vault.rbac == false

# verdict is the shipped model's answer, before operator rules. A vault.rbac
# that is not a boolean leaves it undefined, which vaultwall refuses.
verdict := accesspolicy.verdict if {
	input.vault.rbac == false
	input.operation.plane == "data"
} else := rbac.verdict if {
	input.vault.rbac == true
	input.operation.plane == "data"
} else := control_plane_denial if {
	input.operation.plane != "data"
}

# The data-plane policy never authorizes the control plane.
control_plane_denial := {
	"allowed": false,
	"model": model,
	"code": "ForbiddenByPolicy",
	"rule": "",
	"reason": concat("", ["the ", input.operation.plane, " plane is not authorized by the vault's data-plane policy"]),
	"message": "The vault's data-plane policy does not authorize control-plane operations.",
	"access_policy_match": false,
	"assignment_id": "",
	"decision_reason": "",
}

# --- Operator rules -----------------------------------------------------------
#
# Files in policy.dir declare package vaultwall.operator (or a sub-package).
# Two rules there count, both sets:
#   deny  contains <message string> or {"rule": <name>, "message": <text>}
#   grant contains <anything naming why>
# The decision is
#   (shipped allow OR (grants enabled AND a grant AND same tenant)) AND no deny.
# So an operator rule narrows access unless policy.allowOperatorGrants is set,
# and no rule ever opens the vault to another tenant.

denials := {d | some d in data.vaultwall.operator.deny}

any_denial if count(data.vaultwall.operator.deny) > 0

grant_applies if {
	data.vaultwall.settings.allow_operator_grants == true
	lower(input.caller.tenant_id) == lower(input.vault.tenant_id)
	count(data.vaultwall.operator.grant) > 0
}

# In order: a shipped allow that no deny refuses stands; a shipped refusal
# that no grant overrides stands, with its own code; then any operator deny
# refuses; then a grant allows what the shipped policy refused. A verdict
# that is neither leaves the decision undefined, which vaultwall refuses.
decision := verdict if {
	verdict.allowed == true
	not any_denial
} else := verdict if {
	verdict.allowed == false
	not grant_applies
} else := operator_denial if {
	any_denial
} else := operator_grant if {
	grant_applies
}

operator_denial := object.union(verdict, {
	"allowed": false,
	"code": "ForbiddenByPolicy",
	"rule": concat(", ", sort({denial_rule(d) | some d in denials})),
	"reason": concat("", ["denied by operator rule: ", concat("; ", messages)]),
	"message": concat(" ", messages),
	"assignment_id": "",
	"decision_reason": "",
}) if {
	messages := sort({denial_message(d) | some d in denials})
}

operator_grant := object.union(verdict, {
	"allowed": true,
	"code": "",
	"rule": "data.vaultwall.operator.grant",
	"reason": concat("", [
		"granted by operator rule (policy.allowOperatorGrants) although the shipped policy refused: ",
		verdict.reason,
	]),
	"message": "",
	"decision_reason": "",
})

# A deny element is a message, or an object with a message and a rule name.
# Anything else still denies, with the element printed as its message.
denial_message(d) := d if is_string(d)

denial_message(d) := d.message if has_message(d)

denial_message(d) := json.marshal(d) if {
	not is_string(d)
	not has_message(d)
}

has_message(d) if {
	is_object(d)
	is_string(d.message)
}

denial_rule(d) := concat("", ["data.vaultwall.operator.deny[", d.rule, "]"]) if {
	is_object(d)
	is_string(d.rule)
} else := "data.vaultwall.operator.deny"
