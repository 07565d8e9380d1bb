package authztest

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// CertOptions describe a leaf certificate for TestCA.Issue. The zero value
// is a client certificate with an empty subject and no SANs, valid from an
// hour ago for a day.
type CertOptions struct {
	// Subject of the certificate; may be empty when SANs are present.
	// RawSubject, when set, is used verbatim instead (multi-valued RDNs,
	// unusual string types).
	Subject    pkix.Name
	RawSubject []byte
	// SANs, written byte for byte into the subjectAltName extension in the
	// order given, so tests can mint look-alikes (userinfo, percent-encoding,
	// trailing dots, upper case) that a URL parser would normalise.
	URIs     []string
	DNSNames []string
	IPs      []string // parsed with netip.ParseAddr
	Emails   []string
	// NotBefore and NotAfter default to an hour ago and a day from now.
	NotBefore, NotAfter time.Time
	// Expired makes a certificate that expired a day ago (unless NotAfter
	// is set).
	Expired bool
	// Server makes a server certificate (serverAuth) instead of a client
	// one (clientAuth). ExtKeyUsage, when set, overrides both.
	Server      bool
	ExtKeyUsage []x509.ExtKeyUsage
	// NoExtKeyUsage omits the extended-key-usage extension entirely.
	NoExtKeyUsage bool
}

// TestCert is a leaf certificate and its private key.
type TestCert struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	CA   *TestCA
}

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// Issue mints a leaf certificate signed by ca.
func (ca *TestCA) Issue(opts CertOptions) *TestCert {
	if ca.tb != nil {
		ca.tb.Helper()
	}
	c, err := ca.Mint(opts)
	if err != nil {
		ca.fatal(err)
	}
	return c
}

// IssueServer mints a server certificate for names (the first is also the
// subject's common name, "localhost" without names) and for localhost,
// 127.0.0.1 and ::1, so that a test may also dial it by address.
func (ca *TestCA) IssueServer(names ...string) *TestCert {
	if ca.tb != nil {
		ca.tb.Helper()
	}
	cn := "localhost"
	if len(names) > 0 {
		cn = names[0]
	}
	return ca.Issue(CertOptions{
		Subject:  pkix.Name{CommonName: cn},
		DNSNames: append([]string{"localhost"}, names...),
		IPs:      []string{"127.0.0.1", "::1"},
		Server:   true,
	})
}

// Mint is Issue returning its error instead of failing the test: for a CA
// made by NewCA.
func (ca *TestCA) Mint(opts CertOptions) (*TestCert, error) {
	now := time.Now()
	if opts.NotBefore.IsZero() {
		opts.NotBefore = now.Add(-time.Hour)
		if opts.Expired {
			opts.NotBefore = now.Add(-48 * time.Hour)
		}
	}
	if opts.NotAfter.IsZero() {
		opts.NotAfter = now.Add(24 * time.Hour)
		if opts.Expired {
			opts.NotAfter = now.Add(-24 * time.Hour)
		}
	}
	key, sn, err := newKeyAndSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      opts.Subject,
		RawSubject:   opts.RawSubject,
		NotBefore:    opts.NotBefore,
		NotAfter:     opts.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	switch {
	case opts.NoExtKeyUsage:
	case opts.ExtKeyUsage != nil:
		tmpl.ExtKeyUsage = opts.ExtKeyUsage
	case opts.Server:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	default:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	san, err := rawSAN(opts)
	if err != nil {
		return nil, err
	}
	if san != nil {
		// RFC 5280 4.2.1.6: critical when the subject is empty.
		tmpl.ExtraExtensions = []pkix.Extension{{
			Id: oidSubjectAltName, Critical: opts.RawSubject == nil && len(opts.Subject.ToRDNSequence()) == 0, Value: san,
		}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("authztest: create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		// Go refuses some malformed SANs; tests that need those bytes use
		// IssueDER.
		return nil, fmt.Errorf("authztest: parse certificate: %w", err)
	}
	return &TestCert{Cert: cert, Key: key, CA: ca}, nil
}

// IssueDER is Issue for certificates Go's parser may refuse (a URI SAN that
// does not parse, say): it returns the DER without parsing it.
func (ca *TestCA) IssueDER(opts CertOptions) []byte {
	if ca.tb != nil {
		ca.tb.Helper()
	}
	key, sn, err := newKeyAndSerial()
	if err != nil {
		ca.fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      opts.Subject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	san, err := rawSAN(opts)
	if err != nil {
		ca.fatal(err)
	}
	if san != nil {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: oidSubjectAltName, Value: san}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		ca.fatal(fmt.Errorf("authztest: create certificate: %w", err))
	}
	return der
}

// rawSAN encodes the subjectAltName extension value, nil when there are no
// names. GeneralName tags: rfc822Name 1, dNSName 2, URI 6, iPAddress 7.
func rawSAN(opts CertOptions) ([]byte, error) {
	var names []asn1.RawValue
	add := func(tag int, b []byte) {
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tag, Bytes: b})
	}
	for _, s := range opts.Emails {
		add(1, []byte(s))
	}
	for _, s := range opts.DNSNames {
		add(2, []byte(s))
	}
	for _, s := range opts.URIs {
		add(6, []byte(s))
	}
	for _, s := range opts.IPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("authztest: IP SAN %q: %w", s, err)
		}
		add(7, a.AsSlice())
	}
	if names == nil {
		return nil, nil
	}
	b, err := asn1.Marshal(names)
	if err != nil {
		return nil, fmt.Errorf("authztest: marshal SAN: %w", err)
	}
	return b, nil
}

// PEM is the certificate in PEM form, with the trailing newline Envoy keeps.
func (c *TestCert) PEM() string { return CertPEM(c.Cert) }

// KeyPEM is the private key in PKCS #8 PEM form.
func (c *TestCert) KeyPEM() string {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		c.CA.fatal(fmt.Errorf("authztest: marshal key: %w", err))
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// TLS is the certificate as crypto/tls wants it, for real TLS servers and
// clients in tests.
func (c *TestCert) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.Cert.Raw}, PrivateKey: c.Key, Leaf: c.Cert}
}

// WriteKeyPair writes a certificate chain and its private key as the PEM
// files name.crt and name.key (PKCS #8) in dir and returns their paths:
// what Envoy's and vaultwall's certificate and key settings name.
func WriteKeyPair(tb testing.TB, dir, name string, c tls.Certificate) (certFile, keyFile string) {
	tb.Helper()
	var chain []byte
	for _, der := range c.Certificate {
		chain = append(chain, DERToPEM(der)...)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		tb.Fatalf("authztest: marshal key: %v", err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	for path, data := range map[string][]byte{certFile: chain, keyFile: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			tb.Fatalf("authztest: %v", err)
		}
	}
	return certFile, keyFile
}

// EnvoyPrincipal is the source.principal Envoy would report for this
// certificate.
func (c *TestCert) EnvoyPrincipal() string { return EnvoyPrincipal(c.Cert) }

// EnvoyCertificate is the source.certificate Envoy would send for this
// certificate (URL-encoded PEM).
func (c *TestCert) EnvoyCertificate() string { return EnvoyEncodeCert(c.PEM()) }

// CertPEM encodes a certificate as PEM.
func CertPEM(cert *x509.Certificate) string { return DERToPEM(cert.Raw) }

// DERToPEM encodes certificate DER as PEM.
func DERToPEM(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// ParseCertPEM decodes the first certificate of a PEM string.
func ParseCertPEM(tb testing.TB, s string) *x509.Certificate {
	tb.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil || b.Type != "CERTIFICATE" {
		tb.Fatalf("authztest: no CERTIFICATE block in %q", s)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		tb.Fatalf("authztest: parse certificate: %v", err)
	}
	return cert
}

// envoyEscaper is Envoy's encoding of source.certificate: exactly these
// five characters, nothing else (not even '%').
var envoyEscaper = strings.NewReplacer("\n", "%0A", " ", "%20", "+", "%2B", "/", "%2F", "=", "%3D")

// EnvoyEncodeCert encodes a PEM certificate the way Envoy fills
// source.certificate (include_peer_certificate: true).
func EnvoyEncodeCert(pemText string) string { return envoyEscaper.Replace(pemText) }

// EnvoyPrincipal reproduces Envoy's source.principal for a peer
// certificate: the first URI SAN, else the first DNS SAN, else the subject
// DN as OpenSSL prints it with XN_FLAG_RFC2253 (most specific RDN first,
// short attribute names, RFC 2253 escapes, bytes outside printable ASCII as
// \XX). It reads the SAN extension's raw bytes, as Envoy does, so no URL
// parser normalises them.
func EnvoyPrincipal(cert *x509.Certificate) string {
	var uris, dns []string
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		var names []asn1.RawValue
		if rest, err := asn1.Unmarshal(ext.Value, &names); err != nil || len(rest) > 0 {
			return ""
		}
		for _, n := range names {
			if n.Class != asn1.ClassContextSpecific {
				continue
			}
			switch n.Tag {
			case 6:
				uris = append(uris, string(n.Bytes))
			case 2:
				dns = append(dns, string(n.Bytes))
			}
		}
	}
	if len(uris) > 0 {
		return uris[0]
	}
	if len(dns) > 0 {
		return dns[0]
	}
	return opensslRFC2253(cert.RawSubject)
}

// OpenSSL short names (obj_dat.h) for the attributes certificates use.
var opensslShortNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.4": "SN", "2.5.4.5": "serialNumber", "2.5.4.6": "C",
	"2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "street", "2.5.4.10": "O",
	"2.5.4.11": "OU", "2.5.4.12": "title", "2.5.4.17": "postalCode", "2.5.4.42": "GN",
	"2.5.4.43": "initials", "2.5.4.46": "dnQualifier", "2.5.4.65": "pseudonym",
	"0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
	"1.2.840.113549.1.9.1": "emailAddress",
}

func opensslRFC2253(rawSubject []byte) string {
	var seq []asn1.RawValue // SEQUENCE OF RDN (each a SET)
	if rest, err := asn1.Unmarshal(rawSubject, &seq); err != nil || len(rest) > 0 {
		return ""
	}
	var b strings.Builder
	for i := len(seq) - 1; i >= 0; i-- {
		var attrs []struct {
			Type  asn1.ObjectIdentifier
			Value asn1.RawValue
		}
		if _, err := asn1.UnmarshalWithParams(seq[i].FullBytes, &attrs, "set"); err != nil {
			return ""
		}
		if i < len(seq)-1 {
			b.WriteByte(',')
		}
		for j, a := range attrs {
			if j > 0 {
				b.WriteByte('+')
			}
			name, known := opensslShortNames[a.Type.String()]
			if !known {
				// XN_FLAG_DUMP_UNKNOWN_FIELDS: the OID and the value's DER.
				b.WriteString(a.Type.String())
				b.WriteString("=#")
				b.WriteString(strings.ToUpper(hex.EncodeToString(a.Value.FullBytes)))
				continue
			}
			b.WriteString(name)
			b.WriteByte('=')
			v, ok := stringValue(a.Value)
			if !ok {
				b.WriteByte('#')
				b.WriteString(strings.ToUpper(hex.EncodeToString(a.Value.FullBytes)))
				continue
			}
			escape2253(&b, v)
		}
	}
	return b.String()
}

// stringValue decodes an ASN.1 string value to UTF-8.
func stringValue(v asn1.RawValue) (string, bool) {
	if v.Class != asn1.ClassUniversal {
		return "", false
	}
	switch v.Tag {
	case asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagIA5String, asn1.TagNumericString:
		return string(v.Bytes), true
	case asn1.TagT61String: // OpenSSL reads it as Latin-1
		r := make([]rune, len(v.Bytes))
		for i, c := range v.Bytes {
			r[i] = rune(c)
		}
		return string(r), true
	case asn1.TagBMPString:
		var x any
		if _, err := asn1.Unmarshal(v.FullBytes, &x); err != nil {
			return "", false
		}
		s, ok := x.(string)
		return s, ok
	}
	return "", false
}

// escape2253 is ASN1_STRFLGS_RFC2253: RFC 2253 specials escaped with a
// backslash, control characters and every byte of a non-ASCII UTF-8
// sequence as \XX.
func escape2253(b *strings.Builder, v string) {
	const hexdig = "0123456789ABCDEF"
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c < 0x20 || c >= 0x7f:
			b.WriteByte('\\')
			b.WriteByte(hexdig[c>>4])
			b.WriteByte(hexdig[c&15])
		case strings.IndexByte(`,+"\<>;`, c) >= 0,
			i == 0 && (c == '#' || c == ' '),
			i == len(v)-1 && c == ' ':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
}
