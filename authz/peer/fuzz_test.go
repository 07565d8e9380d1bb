package peer

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/config"
)

// subPath is an independent oracle for "valid SPIFFE path below a base".
var subPath = regexp.MustCompile(`^(/[A-Za-z0-9._-]+)+$`)

func oracleBelow(rest string) bool {
	if !subPath.MatchString(rest) {
		return false
	}
	for _, seg := range strings.Split(rest[1:], "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// FuzzPattern: parsing never panics; a pattern that parses is canonical
// (its String parses back to it), matches its own identity, and never
// matches a different principal that merely starts like it. The Matcher's
// indexes agree with Pattern.Match.
func FuzzPattern(f *testing.F) {
	for _, s := range []string{
		"spiffe://trusted.example/azure-backup", "spiffe://trusted.example/ns/*", "spiffe://td/*",
		"dns:backup.trusted.example", "dns:Backup.Example", "subject:CN=backup,O=Trusted",
		`subject:CN=a\,b+OU=c,O=caf\C3\A9`, "subject:CN=#0c03616263", "subject:1.2.3.4=x",
		"spiffe://TD/a", "spiffe://td//a", "dns:a.b.", "subject:CN=a;O=b", "",
	} {
		for _, suffix := range []string{"", "-evil", "/", "/x", "//x", "/..", ".", " ", "%2F", "?a", "#a", ",O=x", "+CN=y", `\`} {
			f.Add(s, suffix)
		}
	}
	f.Fuzz(func(t *testing.T, pattern, suffix string) {
		p, err := ParsePattern(pattern)
		if err != nil {
			if !errors.Is(err, ErrPrincipal) {
				t.Fatalf("error %v does not wrap ErrPrincipal", err)
			}
			return
		}
		again, err := ParsePattern(p.String())
		if err != nil || again != p {
			t.Fatalf("%q: canonical form %q does not parse back: %v", pattern, p, err)
		}
		m, err := New(config.TrustedServices{Services: []config.TrustedService{{Name: "Backup", Principals: []string{pattern}}}})
		if err != nil {
			t.Fatalf("%q parses but New refuses it: %v", pattern, err)
		}
		check := func(principal string, want bool) {
			t.Helper()
			if got := p.Match(principal); got != want {
				t.Fatalf("%s.Match(%q) = %v, want %v", p, principal, got, want)
			}
			if got := m.fromPrincipal(principal) >= 0; got != want {
				t.Fatalf("Matcher with %s recognises %q: %v, want %v", p, principal, got, want)
			}
		}
		var self string
		switch p.Kind() {
		case KindSPIFFE:
			self = p.key
		case KindSPIFFEPrefix:
			check(p.key, false) // strictly below
			self = p.key + "/x"
			if len(self) <= maxSPIFFEIDLen {
				check(self, true)
			}
			look := p.key + suffix
			check(look, len(look) <= maxSPIFFEIDLen && oracleBelow(suffix))
			return
		case KindDNS:
			self = p.key
			check(strings.ToUpper(self), true)
		case KindSubject:
			self = p.envoy
		default:
			t.Fatalf("kind %v", p.Kind())
		}
		check(self, true)
		if suffix != "" {
			check(self+suffix, false)
		}
	})
}

// FuzzRecognize: over any principal and any certificate bytes, Recognize
// never panics, never reports a scope without a service, and recognises
// only what an independent reading says it should; with a caFile, only a
// certificate that verifies against it.
func FuzzRecognize(f *testing.F) {
	ca := authztest.NewTestCA(f)
	other := authztest.NewTestCA(f)
	services := []config.TrustedService{
		svc("Backup", "spiffe://trusted.example/azure-backup"),
		svc("Storage", "spiffe://trusted.example/storage/*"),
		svc("AppService", "dns:appservice.trusted.example"),
		svc("DiskEncryption", "subject:CN=disk-encryption,O=Trusted"),
	}
	plain := mustMatcher(f, config.TrustedServices{Services: services})
	withCA := mustMatcher(f, config.TrustedServices{CAFile: ca.WriteBundle(), Services: services})

	principals := []string{"", "spiffe://trusted.example/azure-backup", "spiffe://trusted.example/azure-backup-evil",
		"spiffe://trusted.example/storage/eu", "spiffe://trusted.example/storage/../x", "appservice.trusted.example",
		"APPSERVICE.trusted.example.", "CN=disk-encryption,O=Trusted", `CN=disk-encryption\,O=Trusted`}
	certs := []string{"", "garbage", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://trusted.example/azure-backup"}}).PEM(),
		ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://trusted.example/storage/eu"}}).PEM(),
		ca.Issue(authztest.CertOptions{DNSNames: []string{"AppService.trusted.example"}}).PEM(),
		ca.Issue(authztest.CertOptions{Subject: pkix.Name{CommonName: "disk-encryption", Organization: []string{"Trusted"}}}).PEM(),
		ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://trusted.example/azure-backup-evil"}}).PEM(),
		ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://trusted.example/azure-backup"}, Expired: true}).PEM(),
		other.Issue(authztest.CertOptions{URIs: []string{"spiffe://trusted.example/azure-backup"}}).PEM(),
	}
	for _, p := range principals {
		for _, c := range certs {
			f.Add(p, []byte(c))
		}
	}
	op := &authz.Operation{Plane: authz.PlaneData, Resource: "keys", Permission: "get"}
	f.Fuzz(func(t *testing.T, principal string, cert []byte) {
		req := &authz.Request{Principal: principal, CertificatePEM: string(cert)}
		for _, m := range []*Matcher{plain, withCA} {
			name, in := m.Recognize(req, &authz.Caller{}, op)
			if in && name == "" {
				t.Fatal("in scope of no service")
			}
			if name == "" {
				continue
			}
			if len(cert) == 0 {
				if m.roots != nil {
					t.Fatalf("recognised %q from a principal alone despite the caFile", name)
				}
				if want := oraclePrincipal(principal); name != want {
					t.Fatalf("principal %q recognised as %q, oracle says %q", principal, name, want)
				}
				continue
			}
			c := oracleCert(t, cert, m.roots)
			if c == nil {
				t.Fatalf("recognised %q from a certificate that does not parse or verify: %q", name, cert)
			}
			if want := oracleCertName(c); name != want {
				t.Fatalf("certificate recognised as %q, oracle says %q", name, want)
			}
		}
	})
}

func oraclePrincipal(p string) string {
	switch {
	case p == "spiffe://trusted.example/azure-backup":
		return "Backup"
	case strings.HasPrefix(p, "spiffe://trusted.example/storage/") && len(p) <= 2048 &&
		oracleBelow(strings.TrimPrefix(p, "spiffe://trusted.example/storage")):
		return "Storage"
	case strings.EqualFold(p, "appservice.trusted.example") && isASCII(p):
		return "AppService"
	}
	if rdns, err := parseDN(p); err == nil && dnKey(rdns) == "2.5.4.3=disk-encryption,2.5.4.10=Trusted" {
		return "DiskEncryption"
	}
	return ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// oracleCert parses the leaf as plainly as possible and, with roots,
// verifies it; nil when either fails.
func oracleCert(t *testing.T, data []byte, roots *x509.CertPool) *x509.Certificate {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil
	}
	if roots != nil {
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			return nil
		}
	}
	return c
}

func oracleCertName(c *x509.Certificate) string {
	var names []string
	if len(c.URIs) > 1 {
		return "" // not an SVID: never recognised
	}
	if len(c.URIs) == 1 {
		if n := oraclePrincipal(c.URIs[0].String()); n == "Backup" || n == "Storage" {
			names = append(names, n)
		}
	}
	for _, d := range c.DNSNames {
		if oraclePrincipal(d) == "AppService" {
			names = append(names, "AppService")
			break
		}
	}
	if c.Subject.String() == "CN=disk-encryption,O=Trusted" {
		names = append(names, "DiskEncryption")
	}
	if len(names) != 1 {
		return "" // none, or ambiguous
	}
	return names[0]
}
