package vaultwall.control_test

import rego.v1

import data.vaultwall.control

admin_token := {"objectId": "o1", "roles": ["Vault.Admin"]}

reader_token := {"objectId": "o2", "roles": ["Vault.Reader"]}

plain_token := {"objectId": "o3", "roles": ["Something.Else"]}

test_admin_role_writes if {
	control.decision.allow with input as {"action": "networkAcls/write", "readOnly": false, "token": admin_token}
}

test_reader_role_reads if {
	control.decision.allow with input as {"action": "vault/read", "readOnly": true, "token": reader_token}
}

test_reader_role_cannot_write if {
	not control.decision.allow with input as {"action": "accessPolicies/write", "readOnly": false, "token": reader_token}
}

test_no_role_refused_with_reason if {
	d := control.decision with input as {"action": "vault/read", "readOnly": true, "token": plain_token}
	not d.allow
	contains(d.reason, "oid o3")
}

test_admin_certificate if {
	control.decision.allow with input as {"action": "roleAssignments/write", "certificate": {"principal": "spiffe://ops/admin", "admin": true}}
}

test_other_certificate_refused if {
	d := control.decision with input as {"action": "vault/read", "readOnly": true, "certificate": {"principal": "spiffe://ops/x", "admin": false}}
	not d.allow
	contains(d.reason, "spiffe://ops/x")
}

test_nobody_refused if {
	not control.decision.allow with input as {"action": "vault/read", "readOnly": true}
}

test_role_claim_must_be_exact if {
	not control.decision.allow with input as {"action": "vault/read", "readOnly": false, "token": {"objectId": "o", "roles": ["vault.admin", "Vault.Admin "]}}
}
