package peer

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/authztest"
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
		m, err := New(TrustedServices{Services: []TrustedService{{Name: "Backup", Principals: []string{pattern}}}})
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

// FuzzRecognize: over any principal, any certificate bytes and any
// operation, Recognize never panics, never reports a scope without a
// service, recognises only what an independent reading says it should (a
// DN oracle of its own, not the product's parser), with a caFile only a
// certificate that verifies against it, and reports a service in scope
// exactly when the operation lies in that service's scope as the trusted
// services reference lists it (recognizeScopes: literals, not the catalog),
// narrowed where the binding narrows it.
func FuzzRecognize(f *testing.F) {
	ca := authztest.NewTestCA(f)
	other := authztest.NewTestCA(f)
	services := []TrustedService{
		svc("Backup", "spiffe://trusted.example/azure-backup"),
		svc("Storage", "spiffe://trusted.example/storage/*"),
		svc("AppService", "dns:appservice.trusted.example"),
		svc("DiskEncryption", "subject:CN=disk-encryption,O=Trusted"),
	}
	narrowed := slices.Clone(services)
	narrowed[0].Scope = map[string][]string{"keys": {"get"}}
	narrowed[3].Scope = map[string][]string{"Secrets": {"GET"}}
	matchers := []struct {
		m      *Matcher
		scopes map[string]map[string][]string
	}{
		{mustMatcher(f, TrustedServices{Services: services}), recognizeScopes},
		{mustMatcher(f, TrustedServices{CAFile: ca.WriteBundle(), Services: services}), recognizeScopes},
		{mustMatcher(f, TrustedServices{Services: narrowed}), map[string]map[string][]string{
			"Backup": {"keys": {"get"}}, "Storage": recognizeScopes["Storage"],
			"AppService": recognizeScopes["AppService"], "DiskEncryption": {"secrets": {"get"}},
		}},
	}

	principals := []string{"", "spiffe://trusted.example/azure-backup", "spiffe://trusted.example/azure-backup-evil",
		"spiffe://trusted.example/storage/eu", "spiffe://trusted.example/storage/../x", "appservice.trusted.example",
		"APPSERVICE.trusted.example.", "CN=disk-encryption,O=Trusted", `CN=disk-encryption\,O=Trusted`,
		// Hostile shapes: look-alikes, case, padding, escapes, raw bytes.
		"spiffe://TRUSTED.example/azure-backup", "spiffe://trusted.example/azure-backup/", "spiffe://trusted.example//azure-backup",
		"spiffe://trusted.example/azure-backup%00", "spiffe://trusted.example/storage", "spiffe://trusted.example/storage/",
		"spiffe://trusted.example/storageX/eu", "spiffe://trusted.example/storage/eu/../../azure-backup",
		"appservice.trusted.example.evil", "app\u0455ervice.trusted.example", "appservice.trusted.example ",
		"cn=disk-encryption,o=Trusted", "2.5.4.3=disk-encryption,2.5.4.10=Trusted", "CN=disk-encryption,O=trusted",
		"CN=disk-encryption, O=Trusted", "CN=disk-encryption,O=Trusted,C=US", "CN=disk-encryption+O=Trusted",
		"CN=#0c0f6469736b2d656e6372797074696f6e,O=Trusted", `CN=disk\2dencryption,O=Trusted`, "O=Trusted,CN=disk-encryption",
		"CN=disk-encryption\x00,O=Trusted", "CN=disk-encryption,O=Trusted\xff", "CN= disk-encryption,O=Trusted",
	}
	certs := []string{"", "garbage", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://trusted.example/azure-backup"}}).PEM(),
		ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://trusted.example/storage/eu"}}).PEM(),
		ca.Issue(authztest.CertOptions{DNSNames: []string{"AppService.trusted.example"}}).PEM(),
		ca.Issue(authztest.CertOptions{Subject: pkix.Name{CommonName: "disk-encryption", Organization: []string{"Trusted"}}}).PEM(),
		ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://trusted.example/azure-backup-evil"}}).PEM(),
		ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://trusted.example/azure-backup"}, Expired: true}).PEM(),
		other.Issue(authztest.CertOptions{URIs: []string{"spiffe://trusted.example/azure-backup"}}).PEM(),
	}
	ops := [][2]string{{"keys", "get"}, {"keys", "wrapKey"}, {"keys", "purge"}, {"secrets", "get"}, {"secrets", "set"},
		{"secrets", "backup"}, {"certificates", "get"}, {"certificates", "import"}, {"keys", "all"}, {"Keys", "get"},
		{"keys", "GET"}, {"storage", "get"}, {"", ""}, {"secrets", "get "}}
	n := 0
	for _, p := range principals {
		for _, c := range certs {
			op := ops[n%len(ops)]
			n++
			f.Add(p, []byte(c), op[0], op[1], n%7 == 0)
		}
	}
	// Every operation against each service, and the control plane.
	for _, p := range []string{"spiffe://trusted.example/azure-backup", "spiffe://trusted.example/storage/eu",
		"appservice.trusted.example", "CN=disk-encryption,O=Trusted"} {
		for _, op := range ops {
			f.Add(p, []byte{}, op[0], op[1], false)
		}
		f.Add(p, []byte{}, "keys", "get", true)
		f.Add(p, []byte{}, "secrets", "get", true)
	}
	f.Fuzz(func(t *testing.T, principal string, cert []byte, resource, permission string, control bool) {
		req := &authz.Request{Principal: principal, CertificatePEM: string(cert)}
		op := &authz.Operation{Plane: authz.PlaneData, Resource: resource, Permission: permission}
		if control {
			op.Plane = authz.PlaneControl
		}
		for _, mm := range matchers {
			m := mm.m
			name, in := m.Recognize(req, &authz.Caller{}, op)
			if in && name == "" {
				t.Fatal("in scope of no service")
			}
			if len(cert) == 0 && m.roots == nil {
				if want := oracleCanonical(principal); want != "" && name != want {
					t.Fatalf("canonical principal %q recognised as %q, want %q", principal, name, want)
				}
			}
			if name == "" {
				continue
			}
			if want := oracleInScope(mm.scopes[name], op); in != want {
				t.Fatalf("%s: operation %s/%q (plane %v) in scope %v, the reference says %v", name, resource, permission, op.Plane, in, want)
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

// recognizeScopes are the catalog scopes of the services FuzzRecognize
// binds, copied from the trusted-services reference table (not read from
// the catalog under test).
var recognizeScopes = map[string]map[string][]string{
	"Backup":         {"keys": {"get", "list", "backup", "restore"}, "secrets": {"get", "list", "backup", "restore"}},
	"Storage":        {"keys": {"get", "wrapKey", "unwrapKey"}},
	"AppService":     {"certificates": {"get"}, "secrets": {"get"}},
	"DiskEncryption": {"secrets": {"get", "set"}, "keys": {"get", "wrapKey", "unwrapKey"}},
}

// oracleInScope: a data-plane operation whose family is listed (as the
// router spells families, lower-case) and whose permission is listed
// (permissions compare case-insensitively, as Key Vault's do).
func oracleInScope(scope map[string][]string, op *authz.Operation) bool {
	if op.Plane != authz.PlaneData {
		return false
	}
	for _, p := range scope[op.Resource] {
		if strings.EqualFold(p, op.Permission) {
			return true
		}
	}
	return false
}

// oracleCanonical names the service a principal in its plainest spelling
// must be recognised as: the forms an operator writes and Envoy reports.
func oracleCanonical(p string) string {
	switch p {
	case "spiffe://trusted.example/azure-backup":
		return "Backup"
	case "spiffe://trusted.example/storage/eu":
		return "Storage"
	case "appservice.trusted.example", "AppService.trusted.example":
		return "AppService"
	case "CN=disk-encryption,O=Trusted", "cn=disk-encryption,o=Trusted", "2.5.4.3=disk-encryption,2.5.4.10=Trusted":
		return "DiskEncryption"
	}
	return ""
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
	if oracleIsDiskEncryptionDN(p) {
		return "DiskEncryption"
	}
	return ""
}

// oracleIsDiskEncryptionDN reads p as an RFC 4514 name by its own rules —
// RDNs split at unescaped ',', no multi-valued RDN, the type a
// case-insensitive name or its OID, the value with \X and \HH escapes or
// '#' and the hex of a DER UTF8/Printable/IA5/T61 string — and says whether
// it is exactly CN=disk-encryption followed by O=Trusted, values compared
// byte for byte. It is lenient where the product is strict (a spelling it
// refuses only fails to recognise); it never folds a value.
func oracleIsDiskEncryptionDN(p string) bool {
	var rdns []string
	var cur strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\' && i+1 < len(p):
			cur.WriteByte(c)
			cur.WriteByte(p[i+1])
			i++
		case c == '+':
			return false
		case c == ',':
			rdns = append(rdns, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	rdns = append(rdns, cur.String())
	if len(rdns) != 2 {
		return false
	}
	want := [2][3]string{{"CN", "2.5.4.3", "disk-encryption"}, {"O", "2.5.4.10", "Trusted"}}
	for k, rdn := range rdns {
		typ, raw, ok := strings.Cut(rdn, "=")
		if !ok || !strings.EqualFold(typ, want[k][0]) && typ != want[k][1] {
			return false
		}
		v, ok := oracleDNValue(raw)
		if !ok || v != want[k][2] {
			return false
		}
	}
	return true
}

func oracleDNValue(raw string) (string, bool) {
	if h, ok := strings.CutPrefix(raw, "#"); ok {
		der, err := hex.DecodeString(h)
		if err != nil {
			return "", false
		}
		var v asn1.RawValue
		if rest, err := asn1.Unmarshal(der, &v); err != nil || len(rest) != 0 || v.Class != 0 || v.IsCompound {
			return "", false
		}
		switch v.Tag {
		case 12, 19, 20, 22: // UTF8String, PrintableString, T61String, IA5String
			return string(v.Bytes), true
		}
		return "", false
	}
	var b []byte
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			b = append(b, raw[i])
			continue
		}
		if i+2 < len(raw) {
			if x, err := hex.DecodeString(raw[i+1 : i+3]); err == nil {
				b = append(b, x[0])
				i += 2
				continue
			}
		}
		if i+1 >= len(raw) {
			return "", false
		}
		b = append(b, raw[i+1])
		i++
	}
	return string(b), true
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
