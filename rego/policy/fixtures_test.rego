# Fixtures for the shipped policy's tests: identities, inputs, and data in
# exactly the shape vaultwall builds from its configuration (rego/data.go).
# A Go test checks builtin_roles against authz.BuiltinRoles.
package vaultwall.authz.fixtures

tenant := "00000000-0000-0000-0000-000000000001"

other_tenant := "99999999-0000-0000-0000-000000000009"

# A user, the application she signs in through, another application, the
# service principal of an application, and two groups.
alice := "a11ce000-0000-4000-8000-000000000001"

web_app := "a9900000-0000-4000-8000-000000000001"

other_app := "a9900000-0000-4000-8000-000000000002"

backend_sp := "5e000000-0000-4000-8000-000000000001"

backend_app := "a9900000-0000-4000-8000-000000000003"

ops_group := "9a000000-0000-4000-8000-000000000001"

dev_group := "9a000000-0000-4000-8000-000000000002"

vault_id := "/subscriptions/00000000-0000-0000-0000-00000000000a/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/contoso"

vault(rbac) := {
	"name": "contoso",
	"tenant_id": tenant,
	"location": "westeurope",
	"resource_id": vault_id,
	"rbac": rbac,
}

# user(groups): alice signed in through web_app.
user(groups) := {
	"tenant_id": tenant,
	"object_id": alice,
	"application_id": web_app,
	"issuer": concat("", ["https://sts.windows.net/", tenant, "/"]),
	"idtyp": "user",
	"appidacr": "0",
	"is_user": true,
	"groups": groups,
	"groups_overage": false,
	"roles": [],
	"scopes": ["user_impersonation"],
	"subject": "alice",
	"mi_resource_id": "",
	"az_resource_id": "",
	"claims": {"amr": ["pwd", "mfa"]},
}

# backend: an application signed in as itself. (object.union merges objects
# deeply, so the user's claims are removed first.)
backend := object.union(object.remove(user([]), ["claims"]), {
	"object_id": backend_sp,
	"application_id": backend_app,
	"idtyp": "app",
	"appidacr": "2",
	"is_user": false,
	"scopes": [],
	"subject": backend_sp,
	"claims": {},
})

op(resource, permission, action, object) := {
	"plane": "data",
	"resource": resource,
	"permission": permission,
	"data_action": concat("", ["Microsoft.KeyVault/vaults/", action]),
	"name": "",
	"object": object,
	"version": "",
	"scope": scope(resource, object),
	"method": "GET",
	"api_version": "7.5",
}

scope(_, "") := ""

scope(resource, object) := concat("", ["/", resource, "/", object]) if {
	object != ""
	resource in {"secrets", "keys", "certificates"}
}

scope(resource, object) := "" if {
	object != ""
	not resource in {"secrets", "keys", "certificates"}
}

# Operations used across the tests (keyvault-spec §6).
get_secret := op("secrets", "get", "secrets/getSecret/action", "db")

list_secrets := op("secrets", "list", "secrets/readMetadata/action", "")

set_secret := op("secrets", "set", "secrets/setSecret/action", "db")

purge_secret := op("secrets", "purge", "secrets/purge/action", "db")

get_key := op("keys", "get", "keys/read", "k1")

wrap_key := op("keys", "wrapKey", "keys/wrap/action", "k1")

sign_key := op("keys", "sign", "keys/sign/action", "k1")

encrypt_key := op("keys", "encrypt", "keys/encrypt/action", "k1")

delete_key := op("keys", "delete", "keys/delete", "k1")

purge_key := op("keys", "purge", "keys/purge/action", "k1")

release_key := op("keys", "release", "keys/release/action", "k1")

set_rotation_policy := op("keys", "setrotationpolicy", "keyrotationpolicies/write", "k1")

get_certificate := op("certificates", "get", "certificates/read", "web")

delete_certificate := op("certificates", "delete", "certificates/delete", "web")

purge_certificate := op("certificates", "purge", "certificates/purge/action", "web")

get_issuer := op("certificates", "getissuers", "certificatecas/read", "")

set_issuer := op("certificates", "setissuers", "certificatecas/write", "")

set_contacts := op("certificates", "managecontacts", "certificatecontacts/write", "")

request_input(caller, operation, rbac) := {
	"operation": operation,
	"caller": caller,
	"source": {
		"client_addr": "198.51.100.7",
		"peer_addr": "198.51.100.7",
		"subnet_id": "",
		"private_endpoint_id": "",
		"firewall": {"evaluated": true, "allowed": true, "auth_type": "PublicIP", "rule": "defaultAction=Allow"},
		"trusted_service": {"name": "", "in_scope": false},
		"tls": true,
		"principal": "",
		"sni": "contoso.vault.azure.net",
	},
	"vault": vault(rbac),
	"request": {
		"id": "r1", "method": operation.method, "path": "/", "host": "contoso.vault.azure.net",
		"scheme": "https", "protocol": "HTTP/1.1", "headers": {},
	},
	"time": "2026-01-05T10:00:00Z",
	"decision_id": "d1",
}

# --- Access policies ------------------------------------------------------------

no_permissions := {"keys": set(), "secrets": set(), "certificates": set(), "storage": set()}

# entry(objectId, applicationId, permissions) is an access-policy entry of the
# vault's tenant; permissions are written lower-case, as vaultwall stores them.
entry(object_id, application_id, permissions) := {
	"object_id": object_id,
	"application_id": lower(application_id),
	"tenant_id": tenant,
	"permissions": object.union(no_permissions, permissions),
}

# access_policies(list) indexes entries the way vaultwall does at load.
access_policies(list) := {"entries": entries, "by_object": by_object} if {
	entries := [object.union(e, {"index": i, "name": sprintf("accessPolicies[%d]", [i])}) | some i, e in list]
	by_object := {k: [e | some e in entries; lower(e.object_id) == k] |
		some e0 in entries
		k := lower(e0.object_id)
	}
}

# --- RBAC -------------------------------------------------------------------------

# builtin_roles: authz.BuiltinRoles as vaultwall loads them.
builtin_roles := {
	"00482a5a-887f-4fb3-b363-3b7fe8e74483": role("00482a5a-887f-4fb3-b363-3b7fe8e74483", "Key Vault Administrator", ["*"]),
	"21090545-7ca7-4776-b22c-e363652d74d2": role("21090545-7ca7-4776-b22c-e363652d74d2", "Key Vault Reader", ["*/read", "secrets/readmetadata/action"]),
	"b86a8fe4-44ce-4948-aee5-eccb2c155cd7": role("b86a8fe4-44ce-4948-aee5-eccb2c155cd7", "Key Vault Secrets Officer", ["secrets/*"]),
	"4633458b-17de-408a-b874-0445c86b69e6": role("4633458b-17de-408a-b874-0445c86b69e6", "Key Vault Secrets User", ["secrets/getsecret/action", "secrets/readmetadata/action"]),
	"14b46e9e-c2b7-41b4-b07b-48a6ebf60603": role("14b46e9e-c2b7-41b4-b07b-48a6ebf60603", "Key Vault Crypto Officer", ["keys/*", "keyrotationpolicies/*"]),
	"12338af0-0e69-4776-bea7-57ae8d297424": role("12338af0-0e69-4776-bea7-57ae8d297424", "Key Vault Crypto User", [
		"keys/read", "keys/update/action", "keys/backup/action", "keys/encrypt/action", "keys/decrypt/action",
		"keys/wrap/action", "keys/unwrap/action", "keys/sign/action", "keys/verify/action",
	]),
	"e147488a-f6f5-4113-8e2d-b22465e65bf6": role("e147488a-f6f5-4113-8e2d-b22465e65bf6", "Key Vault Crypto Service Encryption User", ["keys/read", "keys/wrap/action", "keys/unwrap/action"]),
	"08bbd89e-9f13-488c-ac41-acfcb10c90ab": role("08bbd89e-9f13-488c-ac41-acfcb10c90ab", "Key Vault Crypto Service Release User", ["keys/release/action"]),
	"a4417e6f-fecd-4de8-b567-7b0420556985": role("a4417e6f-fecd-4de8-b567-7b0420556985", "Key Vault Certificates Officer", ["certificatecas/*", "certificates/*", "certificatecontacts/write"]),
	"db79e9a7-68ee-4b58-9aeb-b90e7c24fcba": role("db79e9a7-68ee-4b58-9aeb-b90e7c24fcba", "Key Vault Certificate User", ["certificates/read", "secrets/getsecret/action", "secrets/readmetadata/action", "keys/read"]),
	"f25e0fa2-a7c8-4377-a976-54943a77a395": role("f25e0fa2-a7c8-4377-a976-54943a77a395", "Key Vault Contributor", []),
	"8b54135c-b56d-4d72-a534-26097cfdc8d8": role("8b54135c-b56d-4d72-a534-26097cfdc8d8", "Key Vault Data Access Administrator", []),
}

role(id, name, actions) := {"id": id, "name": name, "data_actions": actions, "not_data_actions": []}

role_id(name) := id if {
	some id, r in builtin_roles
	r.name == name
}

# assignment(principal, role name or id, scope) as configured.
assignment(principal, r, s) := {"principal_id": principal, "role": lower(role_ref(r)), "scope": lower(s)}

role_ref(r) := role_id(r) if role_id(r)

role_ref(r) := r if not role_id(r)

# role_assignments(list) indexes assignments the way vaultwall does at load.
role_assignments(list) := {"entries": entries, "by_principal": by_principal} if {
	entries := [object.union(a, {
		"index": i,
		"name": sprintf("roleAssignments[%d]", [i]),
		"id": object.get(a, "id", sprintf("roleAssignments[%d]", [i])),
	}) |
		some i, a in list
	]
	by_principal := {k: [i | some i, e in entries; lower(e.principal_id) == k] |
		some e0 in entries
		k := lower(e0.principal_id)
	}
}
