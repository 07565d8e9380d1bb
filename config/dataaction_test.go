package config_test

import (
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/config"
)

// ValidateDataAction accepts a role's data action relative to
// Microsoft.KeyVault/vaults/ or written in full (the prefix in any case),
// wildcards included, and refuses what cannot be one: nothing after the
// prefix, whitespace, a leading or trailing slash.
func TestValidateDataAction(t *testing.T) {
	for _, a := range []string{
		"secrets/getSecret/action", "keys/*", "*/read", "*", "secrets/readMetadata/action",
		"Microsoft.KeyVault/vaults/keys/read", "microsoft.keyvault/VAULTS/keys/*", "MICROSOFT.KEYVAULT/VAULTS/*/read",
		"keyrotationpolicies/write", "certificatecas/*", "a",
		// The prefix is stripped once: what follows is judged as written.
		"Microsoft.KeyVault/vaults/Microsoft.KeyVault/vaults/keys/read",
	} {
		if err := config.ValidateDataAction(a); err != nil {
			t.Errorf("%q refused: %v", a, err)
		}
	}
	for _, a := range []string{
		"", "Microsoft.KeyVault/vaults/", "microsoft.keyvault/vaults/",
		"/keys/read", "keys/read/", "/", "Microsoft.KeyVault/vaults//keys/read", "Microsoft.KeyVault/vaults/keys/",
		"keys/ read", "keys/read ", " keys/read", "keys\t/read", "keys read",
	} {
		err := config.ValidateDataAction(a)
		if err == nil {
			t.Errorf("%q accepted", a)
			continue
		}
		// The message quotes the value and shows what a data action looks like.
		if !strings.Contains(err.Error(), "is not a data action such as secrets/getSecret/action, keys/* or */read") {
			t.Errorf("%q: message %q", a, err)
		}
	}
}

// Azure's data actions have one wildcard, '*'. Any other glob
// metacharacter — or any character outside ASCII letters, digits, '/',
// '.', '_' and '-' — is refused: Azure takes no such action, and the
// policy's glob matcher would read "secrets/get?" as a pattern matching
// "secrets/getx", or "\u212aeys/read" (a Kelvin sign) as keys/read once
// lower-cased. The message names the character and the one wildcard.
func TestValidateDataActionRefusesOtherPatterns(t *testing.T) {
	for _, a := range []string{
		"secrets/get?", "keys/[ab]", "keys/]", "keys/[!a]/action", "secrets/{get,set}", `keys\*`, `keys/read\`,
		"keys/read,keys/write", "keys/r!ead", "keys/read^", "Microsoft.KeyVault/vaults/secrets/*?",
		"\u212aeys/read", "keys/re\u0430d", "keys/read\x00", "keys/read\n", "keys/\u00a0read",
	} {
		err := config.ValidateDataAction(a)
		if err == nil {
			t.Errorf("%q accepted", a)
			continue
		}
		if !strings.Contains(err.Error(), "'*' is its only wildcard") {
			t.Errorf("%q: message %q", a, err)
		}
	}
}
