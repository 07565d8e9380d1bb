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
