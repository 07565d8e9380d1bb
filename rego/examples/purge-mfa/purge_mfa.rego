# Example operator rule: purging needs a multi-factor sign-in.
#
# Put this file in policy.dir. A purge (secrets, keys, certificates or storage)
# is refused unless the caller's token says it came from a sign-in with
# multi-factor authentication: Entra lists "mfa" in the amr claim. Tokens of
# applications carry no amr, so no application can purge: a person must.
package vaultwall.operator

deny contains {
	"rule": "purge-mfa",
	"message": "Purging needs a token from a multi-factor sign-in (the amr claim must include \"mfa\").",
} if {
	input.operation.permission == "purge"
	not signed_in_with_mfa
}

signed_in_with_mfa if {
	is_array(input.caller.claims.amr)
	"mfa" in input.caller.claims.amr
}
