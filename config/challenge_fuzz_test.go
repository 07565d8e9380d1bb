package config_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/config"
)

// Whatever authority is configured, an accepted one resolves to an https
// URL whose path is exactly the vault's tenant: the Azure SDKs that take the
// whole path as the tenant get a token.
func FuzzChallengeAuthority(f *testing.F) {
	const tenant = "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	for _, s := range []string{
		"https://login.microsoftonline.com/{tenantId}", "https://login.microsoftonline.com/" + tenant,
		"https://login.microsoftonline.com", "https://login.microsoftonline.com/" + tenant + "/" + tenant,
		"https://login.microsoftonline.com/{tenantId}/v2.0", "https://h/%7BtenantId%7D", "https://h//" + tenant,
		"https://h/" + tenant + "?x", "https://h/" + tenant + "#f", "https://u@h/", "https://h:443/{tenantId}/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, auth string) {
		got, err := config.Challenge{Authorization: auth}.Authority(tenant)
		if err != nil {
			return
		}
		u, perr := url.Parse(got)
		if perr != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			t.Fatalf("%q → %q: not a plain https authority", auth, got)
		}
		if !strings.EqualFold(u.Path, "/"+tenant) || strings.Count(got, "/") != 3 {
			t.Fatalf("%q → %q: the path is not exactly the tenant", auth, got)
		}
	})
}
