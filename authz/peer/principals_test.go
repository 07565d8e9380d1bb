package peer

import (
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/section"
)

// TestPrincipals: the flat principal set of the control plane matches
// certificates with the trusted-service rules and names them by their raw
// bytes; bad patterns are all reported with their field.
func TestPrincipals(t *testing.T) {
	_, err := NewPrincipals("controlPlane.adminPrincipals", []string{"spiffe://ops.example/admin", "SPIFFE://x/y", "dns:*.example"})
	var fe *section.Error
	if !errors.Is(err, ErrPrincipal) || !errors.As(err, &fe) ||
		!strings.Contains(err.Error(), "controlPlane.adminPrincipals[1]") || !strings.Contains(err.Error(), "controlPlane.adminPrincipals[2]") {
		t.Fatalf("bad patterns: %v", err)
	}
	p, err := NewPrincipals("f", []string{"spiffe://ops.example/admin", "spiffe://ops.example/admin", "dns:admin.ops.example",
		"subject:CN=admin,O=Ops", "spiffe://ops.example/team/*"})
	if err != nil {
		t.Fatal(err)
	}
	ca := authztest.NewTestCA(t)
	for _, tc := range []struct {
		name string
		opts authztest.CertOptions
		want string
		ok   bool
	}{
		{"SPIFFE ID", authztest.CertOptions{URIs: []string{"spiffe://ops.example/admin"}}, "spiffe://ops.example/admin", true},
		{"below a prefix", authztest.CertOptions{URIs: []string{"spiffe://ops.example/team/a"}}, "spiffe://ops.example/team/a", true},
		{"DNS SAN behind another URI SAN", authztest.CertOptions{URIs: []string{"spiffe://ops.example/x"}, DNSNames: []string{"Admin.Ops.Example"}},
			"Admin.Ops.Example", true},
		{"subject", authztest.CertOptions{Subject: pkix.Name{CommonName: "admin", Organization: []string{"Ops"}}}, "CN=admin,O=Ops", true},
		{"upper-case scheme, named as written", authztest.CertOptions{URIs: []string{"SPIFFE://ops.example/admin"}}, "SPIFFE://ops.example/admin", false},
		{"DNS SAN spelled as the SPIFFE ID", authztest.CertOptions{DNSNames: []string{"spiffe://ops.example/admin"}}, "spiffe://ops.example/admin", false},
		{"two URI SANs", authztest.CertOptions{URIs: []string{"spiffe://ops.example/admin", "spiffe://ops.example/x"}}, "spiffe://ops.example/admin", false},
		{"no names", authztest.CertOptions{}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, ok := p.MatchCertificate(ca.Issue(tc.opts).Cert)
			if name != tc.want || ok != tc.ok {
				t.Fatalf("got (%q, %v), want (%q, %v)", name, ok, tc.want, tc.ok)
			}
		})
	}
	var none *Principals
	if _, ok := none.MatchCertificate(ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://ops.example/admin"}}).Cert); ok {
		t.Fatal("a nil set matched")
	}
}

// TestMatchDNSBounds: the DNS lookup is total on its own, whatever its
// caller checked first: a name longer than a host name may be (253) is no
// match and never overruns its fixed lower-casing buffer; a name of exactly
// 253 bytes is still looked up. Today both callers pass only names that
// validHostname accepted; this pins the lookup's own bound for the next one.
func TestMatchDNSBounds(t *testing.T) {
	label := strings.Repeat("a", 63)
	name253 := label + "." + label + "." + label + "." + strings.Repeat("b", 61) // 253 bytes
	if len(name253) != maxDNSNameLen {
		t.Fatalf("test name is %d bytes", len(name253))
	}
	p, err := NewPrincipals("f", []string{"dns:" + name253})
	if err != nil {
		t.Fatal(err)
	}
	if b := p.idx.matchDNS(strings.ToUpper(name253)); b != 0 {
		t.Errorf("a 253-byte name in another case: %d, want a match", b)
	}
	for _, n := range []string{name253 + "c", strings.Repeat("a", 4096)} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("a %d-byte name panicked the lookup: %v", len(n), r)
				}
			}()
			if b := p.idx.matchDNS(n); b != -1 {
				t.Errorf("a %d-byte name matched %d", len(n), b)
			}
		}()
	}
	var empty principalIndex
	if b := empty.matchDNS(name253); b != -1 {
		t.Errorf("an index without DNS patterns matched %d", b)
	}
}
