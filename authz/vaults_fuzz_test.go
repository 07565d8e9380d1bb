package authz_test

import (
	"context"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
)

// FuzzVaultsSelect: whatever the host and pin a client or proxy sends,
// selection never panics and never picks a vault the host does not name:
// a selected vault's hostnames include the host's normal form, a pin that
// names another vault always refuses, and the host's ASCII case never
// changes the answer. A refusal is the 400 of the vault stage.
func FuzzVaultsSelect(f *testing.F) {
	for _, s := range [][2]string{
		{"contoso-vault.vault.azure.net", ""}, {"CONTOSO-VAULT.vault.azure.net:443", "contoso-vault"},
		{"fabrikam.private.example.", "fabrikam-vault"}, {"[fd00::1]:8443", ""}, {"contoso-vault.vault.azure.net", "fabrikam-vault"},
		{"", ""}, {"contoso-vault.vault.azure.net\x00", ""}, {"kontoso\u212a.vault.azure.net", ""}, {"a:b:c", ""},
	} {
		f.Add(s[0], s[1])
	}
	a, b := vaultPipeline("contoso-vault"), vaultPipeline("fabrikam-vault")
	hosts := map[*authz.Pipeline][]string{
		a: {"contoso-vault.vault.azure.net", "[fd00::1]"},
		b: {"fabrikam-vault.vault.azure.net", "fabrikam.private.example"},
	}
	v, err := authz.NewVaults([]authz.VaultEntry{{Pipeline: a, Hostnames: hosts[a]}, {Pipeline: b, Hostnames: hosts[b]}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, host, pin string) {
		p, why := v.Select(host, pin)
		if p == nil {
			if why == "" {
				t.Fatal("a refusal without a reason")
			}
			var d authz.Decision
			v.DecideInto(context.Background(), &d, &authz.Request{Host: host, ContextExtensions: map[string]string{"vault": pin}})
			if d.Allowed || d.Stage != authz.StageVault || d.Denial == nil || d.Denial.Status != 400 {
				t.Fatalf("refusal %+v", d)
			}
			return
		}
		n, ok := authz.NormalizeHost(host)
		if !ok {
			t.Fatalf("host %q is not a host name, yet selected %s", host, p.Vault.Name)
		}
		found := false
		for _, h := range hosts[p] {
			found = found || h == n
		}
		if !found {
			t.Fatalf("host %q (%q) selected %s, which does not answer to it", host, n, p.Vault.Name)
		}
		if pin != "" && !strings.EqualFold(pin, p.Vault.Name) {
			t.Fatalf("pin %q selected %s", pin, p.Vault.Name)
		}
		if q, _ := v.Select(asciiUpper(host), pin); q != p {
			t.Fatalf("the host's case changed the vault: %q", host)
		}
	})
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}
