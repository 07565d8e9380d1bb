# vaultwall's control-plane policy: who may call the management API
# (proto/vaultwall/v1/admin.proto). The network firewall never applies to
# the control plane, as Key Vault's never applies to its own; this policy is
# the whole of its authorization.
#
# Input (built by the controlplane package for every call):
#   input.method       the RPC, e.g. "UpdateAccessPolicies"
#   input.action       "vault/read", "networkAcls/write", "accessPolicies/write",
#                      "roleAssignments/write", "explain/action", …
#   input.readOnly     true for methods that change nothing
#   input.token        the verified management token's caller, when one was sent:
#                      {objectId, applicationId, tenantId, roles, groups, scopes, claims}
#   input.certificate  the verified client certificate, when one was sent:
#                      {principal, admin} (admin: it matches controlPlane.adminPrincipals)
#
# Its JSON Schema is rego/schema/control_input.json (generated from
# rego.ControlInput); a policy reading any other field does not load.
#
# The answer is data.vaultwall.control.decision = {"allow": bool, "reason": string}.
# Operators replace this file with controlPlane.policyDir.
package vaultwall.control

import rego.v1

# App roles (the token's roles claim) that manage the vault, and that read it.
admin_roles := {"Vault.Admin"}

reader_roles := {"Vault.Reader"}

decision := {"allow": true, "reason": sprintf("admin certificate %s", [input.certificate.principal])} if {
	input.certificate.admin == true
} else := {"allow": true, "reason": sprintf("token role %s", [role])} if {
	some role in input.token.roles
	role in admin_roles
} else := {"allow": true, "reason": sprintf("token role %s (read-only method)", [role])} if {
	input.readOnly == true
	some role in input.token.roles
	role in reader_roles
} else := {"allow": false, "reason": refusal}

refusal := sprintf("the caller (oid %s) holds none of the roles %v for %s", [input.token.objectId, admin_roles, input.action]) if {
	input.token
} else := sprintf("the client certificate %s is not an admin principal", [input.certificate.principal]) if {
	input.certificate
} else := "no authenticated caller"
