package authz_test

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vaultwall/vaultwall/authz"
)

func TestNormalizeHost(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"contoso-vault.vault.azure.net", "contoso-vault.vault.azure.net", true},
		{"Contoso-Vault.VAULT.azure.net", "contoso-vault.vault.azure.net", true},
		{"contoso-vault.vault.azure.net:443", "contoso-vault.vault.azure.net", true},
		{"contoso-vault.vault.azure.net.", "contoso-vault.vault.azure.net", true},
		{"contoso-vault.vault.azure.net.:8443", "contoso-vault.vault.azure.net", true},
		{"[::1]:8443", "[::1]", true},
		{"[FD00::1]", "[fd00::1]", true},
		{"10.0.0.23", "10.0.0.23", true},
		{"", "", false},
		{".", "", false},
		{":443", "", false},
		{"host:", "", false},
		{"host:44x", "", false},
		{"host:1234567", "", false},
		{"::1", "", false},
		{"[::1", "", false},
		{"[::1]x", "", false},
		{"user@contoso-vault.vault.azure.net", "", false},
		{"contoso-vault.vault.azure.net/secrets", "", false},
		{"contoso vault", "", false},
		{"contoso-vault\x00.vault.azure.net", "", false},
		{"contoso-vault.vault.azure.net\r\nx: y", "", false},
		{"kontoso\u212a.vault.azure.net", "", false}, // Kelvin sign: never folds to k
	} {
		got, ok := authz.NormalizeHost(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("NormalizeHost(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func vaultPipeline(name string) *authz.Pipeline {
	return &authz.Pipeline{Vault: authz.Vault{Name: name, Location: "westeurope"}, Classifier: nil}
}

func TestVaultsSelect(t *testing.T) {
	a, b := vaultPipeline("contoso-vault"), vaultPipeline("fabrikam-vault")
	v, err := authz.NewVaults([]authz.VaultEntry{
		{Pipeline: a, Hostnames: []string{"contoso-vault.vault.azure.net"}},
		{Pipeline: b, Hostnames: []string{"fabrikam-vault.vault.azure.net", "Fabrikam.Privatelink.Example"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host, pin string
		want      *authz.Pipeline
	}{
		{"contoso-vault.vault.azure.net", "", a},
		{"CONTOSO-VAULT.vault.azure.net:443", "", a},
		{"fabrikam-vault.vault.azure.net.", "", b},
		{"fabrikam.privatelink.example", "", b},
		{"contoso-vault.vault.azure.net", "contoso-vault", a},
		{"contoso-vault.vault.azure.net", "Contoso-Vault", a},
		// Refused: an unknown or missing host, a pin naming another vault,
		// a host that only looks like a vault's.
		{"other.vault.azure.net", "", nil},
		{"", "", nil},
		{"contoso-vault.vault.azure.net", "fabrikam-vault", nil},
		{"contoso-vault.vault.azure.net", "contoso-vault ", nil},
		{"contoso-vault.vault.azure.net.evil.example", "", nil},
		{"xcontoso-vault.vault.azure.net", "", nil},
		{"other.vault.azure.net", "contoso-vault", nil},
	} {
		got, why := v.Select(tc.host, tc.pin)
		if got != tc.want {
			t.Errorf("Select(%q, %q) = %v (%s), want %v", tc.host, tc.pin, got, why, tc.want)
		}
		if (got == nil) != (why != "") {
			t.Errorf("Select(%q, %q): refusal %q with pipeline %v", tc.host, tc.pin, why, got)
		}
	}
	if v.Named("FABRIKAM-vault") != b || v.Named("nope") != nil || v.Len() != 2 {
		t.Errorf("Named/Len wrong")
	}
}

func TestNewVaultsRefusesAClaimedHostOrName(t *testing.T) {
	a, b := vaultPipeline("contoso-vault"), vaultPipeline("fabrikam-vault")
	if _, err := authz.NewVaults([]authz.VaultEntry{
		{Pipeline: a, Hostnames: []string{"shared.example"}},
		{Pipeline: b, Hostnames: []string{"SHARED.example:443"}},
	}); err == nil || !strings.Contains(err.Error(), "shared.example") {
		t.Errorf("two vaults on one host: err = %v", err)
	}
	if _, err := authz.NewVaults([]authz.VaultEntry{
		{Pipeline: a, Hostnames: []string{"a.example"}},
		{Pipeline: vaultPipeline("Contoso-Vault"), Hostnames: []string{"b.example"}},
	}); err == nil {
		t.Error("two vaults of one name accepted")
	}
	if _, err := authz.NewVaults([]authz.VaultEntry{{Pipeline: a, Hostnames: []string{"a b"}}}); err == nil {
		t.Error("a hostname with a space accepted")
	}
}

// A single vault that lists no hostnames answers every host, as before
// hosts were read; a pin must still name it.
func TestSingleVaultAnswersEveryHost(t *testing.T) {
	a := vaultPipeline("contoso-vault")
	v := authz.SingleVault(a)
	for _, h := range []string{"contoso-vault.vault.azure.net", "localhost:8443", "", "anything"} {
		if got, _ := v.Select(h, ""); got != a {
			t.Errorf("Select(%q) = %v", h, got)
		}
	}
	if got, _ := v.Select("contoso-vault.vault.azure.net", "fabrikam-vault"); got != nil {
		t.Error("a pin naming another vault was accepted")
	}
	if authz.SingleVault(nil) != nil {
		t.Error("SingleVault(nil) must be nil: nothing loaded refuses")
	}
}

// A request no vault answers is refused before any stage runs, with Key
// Vault's 400 and no challenge; the host is echoed sanitised.
func TestUnknownHostIsRefusedBeforeAnyStage(t *testing.T) {
	a := vaultPipeline("contoso-vault") // no stages: running it would fail closed with 500
	v, err := authz.NewVaults([]authz.VaultEntry{{Pipeline: a, Hostnames: []string{"contoso-vault.vault.azure.net"}}})
	if err != nil {
		t.Fatal(err)
	}
	var nilVaults *authz.Vaults
	for _, tc := range []struct {
		name string
		v    *authz.Vaults
		req  authz.Request
	}{
		{"unknown host", v, authz.Request{Host: "other.vault.azure.net\x01\xff", Method: "GET", Path: "/secrets/x?api-version=7.5"}},
		{"no host", v, authz.Request{Method: "GET", Path: "/healthstatus"}},
		{"pinned elsewhere", v, authz.Request{Host: "contoso-vault.vault.azure.net", ContextExtensions: map[string]string{"vault": "fabrikam-vault"}}},
		{"nothing loaded", nilVaults, authz.Request{Host: "contoso-vault.vault.azure.net"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d authz.Decision
			tc.v.DecideInto(context.Background(), &d, &tc.req)
			if d.Allowed || d.Stage != authz.StageVault || d.Denial == nil || d.Denial.Status != 400 ||
				d.Denial.ErrorCode() != "VaultNotFound" || d.Denial.Challenge || d.Err != nil || d.ID == "" {
				t.Fatalf("decision = %+v denial %+v", d, d.Denial)
			}
			if d.Vault == nil || d.Vault.Name != "" {
				t.Errorf("the refusal names a vault: %+v", d.Vault)
			}
			r := d.Response()
			if strings.Contains(r.Body, "\x01") || !utf8.ValidString(r.Body) || !strings.Contains(r.Body, `"code":"BadRequest"`) {
				t.Errorf("body = %s", r.Body)
			}
			for _, h := range r.Headers {
				if h.Name == "www-authenticate" || h.Name == "x-ms-keyvault-region" {
					t.Errorf("header %s on a refusal that names no vault", h.Name)
				}
			}
			if steps := d.Explain(); steps[0].Stage != authz.StageVault || steps[0].Outcome != "deny" || steps[1].Outcome != "not reached" {
				t.Errorf("explain = %+v", steps)
			}
		})
	}
}

// Selecting a vault by an already-normal host allocates nothing: the cost
// of a check does not grow with vaults.
func TestSelectDoesNotAllocate(t *testing.T) {
	var entries []authz.VaultEntry
	for i := range 1000 {
		name := "vault-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "-" + itoa(i)
		entries = append(entries, authz.VaultEntry{Pipeline: vaultPipeline(name), Hostnames: []string{name + ".vault.azure.net"}})
	}
	v, err := authz.NewVaults(entries)
	if err != nil {
		t.Fatal(err)
	}
	host := entries[500].Pipeline.Vault.Name + ".vault.azure.net:443"
	if n := testing.AllocsPerRun(100, func() {
		if p, _ := v.Select(host, ""); p != entries[500].Pipeline {
			t.Fatal("wrong vault")
		}
	}); n != 0 {
		t.Errorf("Select allocates %v times", n)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func BenchmarkVaultsSelect(b *testing.B) {
	var entries []authz.VaultEntry
	for i := range 1000 {
		name := "vault" + itoa(i)
		entries = append(entries, authz.VaultEntry{Pipeline: vaultPipeline(name), Hostnames: []string{name + ".vault.azure.net"}})
	}
	v, err := authz.NewVaults(entries)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if p, _ := v.Select("vault"+"500.vault.azure.net", ""); p == nil {
			b.Fatal("no vault")
		}
	}
}
