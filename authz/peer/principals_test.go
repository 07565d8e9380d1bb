package peer

import (
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/config"
)

// TestPrincipals: the flat principal set of the control plane matches
// certificates with the trusted-service rules and names them by their raw
// bytes; bad patterns are all reported with their field.
func TestPrincipals(t *testing.T) {
	_, err := NewPrincipals("controlPlane.adminPrincipals", []string{"spiffe://ops.example/admin", "SPIFFE://x/y", "dns:*.example"})
	var fe *config.FieldError
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
