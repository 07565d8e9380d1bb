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

	"github.com/vaultwall/vaultwall/authz"
)

const (
	// maxCertPEM bounds a certificate worth looking at; a leaf is rarely
	// over 4 KiB, and the cache keeps the PEM.
	maxCertPEM = 16 << 10
	// recheckAfter is how long a failed chain verification is believed.
	recheckAfter = time.Minute
)

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// refuse records why a certificate that names binding b is not recognised,
// and logs it: once per certificate, since the verdict is cached.
func (m *Matcher) refuse(v *certVerdict, b int32, why string) {
	v.problem = "the certificate names trusted service " + m.bindings[b].name + ", but " + why
	m.log.Warn("trusted-service certificate refused", "trustedService", m.bindings[b].name, "reason", why)
}

// Unrecognized says why the request's client certificate, which names a
// trusted service, was not recognised as it; "" when it was, names none, or
// there is no certificate. It implements authz.TrustedProblems.
func (m *Matcher) Unrecognized(req *authz.Request) string {
	if req == nil || req.CertificatePEM == "" || m.roots == nil || len(req.CertificatePEM) > maxCertPEM {
		return ""
	}
	v := m.cache.get(maphash.String(m.seed, req.CertificatePEM), req.CertificatePEM)
	if v == nil {
		return ""
	}
	return v.problem
}

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
		m.refuse(v, b, "its client certificate lacks the clientAuth extended key usage")
		return v
	}
	chains, err := cert.Verify(x509.VerifyOptions{
		Roots:       m.roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil || len(chains) == 0 {
		v.recheck = now.Add(recheckAfter)
		why := "no chain"
		if err != nil {
			why = err.Error()
		}
		m.refuse(v, b, "its client certificate does not verify against trustedServices.caFile: "+why)
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
