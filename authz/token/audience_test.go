package token_test

import (
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz/authztest"
)

// The audience is compared byte for byte (RFC 7519 §4.1.3: a StringOrURI is
// compared case-sensitively): a token for "https://VAULT.azure.net" is not a
// token for this vault, whatever an IdP or a client library did to its case.
func TestAudienceIsCaseSensitive(t *testing.T) {
	f := newFixture(t)
	with := func(aud any) string {
		c := f.iss.Claims()
		c["aud"] = aud
		return f.iss.Mint(c)
	}
	for _, tc := range []struct {
		name string
		aud  any
	}{
		{"upper case", strings.ToUpper(authztest.DefaultAudience)},
		{"title case host", "https://Vault.Azure.Net"},
		{"upper-case scheme", "HTTPS://vault.azure.net"},
		{"list of case variants only", []string{"HTTPS://VAULT.AZURE.NET", "https://vault.Azure.net"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustDeny(t, f.authn, bearer(with(tc.aud)), "AKV10022: Invalid audience. Expected https://vault.azure.net, found: ")
		})
	}
	// The exact spelling passes, alone or in a list with a case variant.
	mustAllow(t, f.authn, bearer(with(authztest.DefaultAudience)))
	mustAllow(t, f.authn, bearer(with([]string{"HTTPS://VAULT.AZURE.NET", authztest.DefaultAudience})))
}
