# Key Vault access policies (keyvault-spec §4): the default model, in force
# when enableRbacAuthorization is false.
#
# data.vaultwall.access_policies holds the vault's entries, indexed when the
# configuration is loaded so that a lookup costs the same for 10 entries or
# 10,000:
#   entries[i]      = {"index", "name", "object_id", "application_id",
#                      "tenant_id", "permissions": {family: {permission}}}
#   by_object[oid]  = the entries whose objectId is oid
# Ids, tenants and permissions are lower-case in the data; the input is
# lowered here, so every comparison is case-insensitive.
package vaultwall.authz.accesspolicy

# granting holds [index, how] for each entry that matches the caller's
# identity, carries the vault's tenant and grants the operation's permission.
# A caller's permissions are the union of all the entries it matches.

# App-only or user-only: objectId is the token's oid, no applicationId.
granting contains [e.index, "objectId"] if {
	some e in data.vaultwall.access_policies.by_object[lower(input.caller.object_id)]
	e.application_id == ""
	grants(e)
}

# Compound identity (application plus user): objectId is the user's oid and
# applicationId the client application (appid, or azp in v2 tokens).
granting contains [e.index, "compound identity"] if {
	some e in data.vaultwall.access_policies.by_object[lower(input.caller.object_id)]
	e.application_id != ""
	e.application_id == lower(input.caller.application_id)
	grants(e)
}

# A group the token lists. On a groups overage the token lists none, and
# group entries cannot match (vaultwall does not call Microsoft Graph).
granting contains [e.index, "group"] if {
	some g in input.caller.groups
	some e in data.vaultwall.access_policies.by_object[lower(g)]
	e.application_id == ""
	grants(e)
}

# An entry grants the operation when it carries the vault's tenant and lists
# the permission, or "all", or manageissuers for an issuer permission
# (keyvault-spec §6, note 3).
grants(e) if {
	e.tenant_id == lower(input.vault.tenant_id)
	e.permissions[input.operation.resource][lower(input.operation.permission)]
}

grants(e) if {
	e.tenant_id == lower(input.vault.tenant_id)
	e.permissions[input.operation.resource].all
}

grants(e) if {
	e.tenant_id == lower(input.vault.tenant_id)
	e.permissions.certificates.manageissuers
	input.operation.resource == "certificates"
	lower(input.operation.permission) in {"getissuers", "listissuers", "setissuers", "deleteissuers"}
}

# The token must come from the vault's tenant (checked inline in verdict, on
# the hot path; this rule explains a refusal).
tenant_matches if lower(input.caller.tenant_id) == lower(input.vault.tenant_id)

verdict := {
	"allowed": true,
	"model": "accessPolicy",
	"code": "",
	"rule": entry.name,
	"reason": concat("", [
		entry.name, " (", how, " ", entry.object_id, ") grants ",
		input.operation.resource, " ", input.operation.permission,
	]),
	"message": "",
	"access_policy_match": true,
	"assignment_id": "",
	"decision_reason": "",
} if {
	lower(input.caller.tenant_id) == lower(input.vault.tenant_id)
	[i, how] := min(granting)
	entry := data.vaultwall.access_policies.entries[i]
} else := {
	"allowed": false,
	"model": "accessPolicy",
	"code": "AccessDenied",
	"rule": "",
	"reason": denial_reason,
	"message": "",
	"access_policy_match": false,
	"assignment_id": "",
	"decision_reason": "",
}

# --- Explaining a refusal (evaluated only on a deny) ------------------------------

# matching holds the entries whose identity matches the caller, whatever
# they grant.
matching contains e.index if {
	some e in data.vaultwall.access_policies.by_object[lower(input.caller.object_id)]
	e.application_id in {"", lower(input.caller.application_id)}
}

matching contains e.index if {
	some g in input.caller.groups
	some e in data.vaultwall.access_policies.by_object[lower(g)]
	e.application_id == ""
}

denial_reason := sprintf("the caller's tenant %q is not the vault's tenant %q", [input.caller.tenant_id, input.vault.tenant_id]) if {
	not tenant_matches
} else := concat("", [
	"no access-policy entry names the caller (oid ", input.caller.object_id,
	", appid ", input.caller.application_id,
	") or one of its ", format_int(count(input.caller.groups), 10), " groups",
	overage_note,
]) if {
	count(matching) == 0
} else := concat("", [
	concat(", ", [data.vaultwall.access_policies.entries[i].name | some i in sort(matching)]),
	" match the caller but none grants ", input.operation.resource, " ", input.operation.permission,
])

overage_note := "; the token has a groups overage, so group entries could not be matched" if {
	input.caller.groups_overage == true
} else := ""
