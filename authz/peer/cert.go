package peer

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"hash/maphash"
	"slices"
	"strings"
	"time"
)

const (
	// maxCertPEM bounds a certificate worth looking at; a leaf is rarely
	// over 4 KiB, and the cache keeps the PEM.
	maxCertPEM = 16 << 10
	// recheckAfter is how long a failed chain verification is believed.
	recheckAfter = time.Minute
)

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// fromCertificate resolves a client certificate to a binding, -1 when it
// is not recognised. Repeat certificates cost a hash, a map lookup and a
// string compare.
func (m *Matcher) fromCertificate(pemText string) int32 {
	if len(pemText) > maxCertPEM {
		return -1
	}
	now := m.now()
	h := maphash.String(m.seed, pemText)
	v := m.cache.get(h, pemText)
	if v == nil || (!v.recheck.IsZero() && !now.Before(v.recheck)) {
		v = m.examine(pemText, now)
		v.h = h
		m.cache.put(v)
	}
	return v.at(now)
}

// examine parses, matches and (with a caFile) verifies a certificate.
// Only the leaf is accepted: one CERTIFICATE block, nothing else.
func (m *Matcher) examine(pemText string, now time.Time) *certVerdict {
	v := &certVerdict{pem: pemText, binding: -1}
	text := strings.TrimLeft(pemText, " \t\r\n")
	if !strings.HasPrefix(text, "-----BEGIN CERTIFICATE-----") {
		return v
	}
	block, rest := pem.Decode([]byte(text))
	if block == nil || block.Type != "CERTIFICATE" || len(block.Headers) > 0 || len(bytes.TrimSpace(rest)) > 0 {
		return v
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return v
	}
	b, _ := m.matchCert(cert)
	if b < 0 {
		return v
	}
	if m.roots == nil {
		// Envoy verified the chain at the handshake; the leaf's own
		// validity still bounds the verdict (connections outlive it).
		v.binding, v.from, v.until = b, cert.NotBefore, cert.NotAfter
		return v
	}
	// Go treats a leaf without the EKU extension as fit for any use; a
	// trusted service must say clientAuth.
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return v
	}
	chains, err := cert.Verify(x509.VerifyOptions{
		Roots:       m.roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil || len(chains) == 0 {
		v.recheck = now.Add(recheckAfter)
		return v
	}
	v.binding, v.from, v.until = b, cert.NotBefore, cert.NotAfter
	for _, c := range chains[0] {
		if c.NotBefore.After(v.from) {
			v.from = c.NotBefore
		}
		if c.NotAfter.Before(v.until) {
			v.until = c.NotAfter
		}
	}
	return v
}

// rawSANs reads the URI and DNS names of the subjectAltName extension as
// the bytes the certificate holds: Go's parsed URIs went through a URL
// parser, which must not get to normalise a look-alike.
func rawSANs(cert *x509.Certificate) (uris, names []string, ok bool) {
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		var gns []asn1.RawValue
		if rest, err := asn1.Unmarshal(ext.Value, &gns); err != nil || len(rest) > 0 {
			return nil, nil, false
		}
		for _, gn := range gns {
			if gn.Class != asn1.ClassContextSpecific || gn.IsCompound {
				continue
			}
			switch gn.Tag {
			case 6:
				uris = append(uris, string(gn.Bytes))
			case 2:
				names = append(names, string(gn.Bytes))
			}
		}
	}
	return uris, names, true
}
