package peer

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/vaultwall/vaultwall/authz/section"
)

// principalIndex maps principal patterns to a binding number. It is the
// one matcher of certificate principals: trusted services (Matcher) and the
// control plane's admin principals (Principals) both match through it. It
// is a handful of maps, passed by value.
type principalIndex struct {
	spiffeExact  map[string]int32 // SPIFFE ID
	spiffePrefix map[string]int32 // base ID of spiffe://…/*
	dns          map[string]int32 // lower-cased name
	subjectEnvoy map[string]int32 // DN as Envoy prints it (fast path)
	subjectKey   map[string]int32 // canonical DN key
}

func newIndex() principalIndex {
	return principalIndex{
		spiffeExact:  map[string]int32{},
		spiffePrefix: map[string]int32{},
		dns:          map[string]int32{},
		subjectEnvoy: map[string]int32{},
		subjectKey:   map[string]int32{},
	}
}

func (x principalIndex) add(p Pattern, b int32) {
	switch p.kind {
	case KindSPIFFE:
		x.spiffeExact[p.key] = b
	case KindSPIFFEPrefix:
		x.spiffePrefix[p.key] = b
	case KindDNS:
		x.dns[p.key] = b
	case KindSubject:
		x.subjectEnvoy[p.envoy] = b
		x.subjectKey[p.key] = b
	}
}

// matchCert matches each pattern kind against the certificate's own names,
// read as the raw bytes of the certificate (never a URL parser's
// normalisation): SPIFFE patterns against its URI SAN, DNS patterns against
// every DNS SAN, subject patterns against its subject. A certificate with
// more than one URI SAN is not an X.509-SVID and is never recognised:
// Envoy's principal (the first URI SAN) and the SVID reading would name
// different identities. A certificate that reaches two bindings is
// ambiguous and not recognised either. name is the identity that matched,
// or, when none did, the certificate's name as Envoy reports it (first URI
// SAN, else first DNS SAN, else the subject DN).
func (x principalIndex) matchCert(cert *x509.Certificate) (b int32, name string) {
	uris, names, ok := rawSANs(cert)
	if !ok {
		return -1, ""
	}
	var rdns [][]dnAttr
	subject, subjectOK := "", false
	if len(x.subjectKey) > 0 || len(uris)+len(names) == 0 {
		if rdns, subjectOK = subjectDN(cert.RawSubject); subjectOK {
			subject = renderDN(rdns)
		}
	}
	switch {
	case len(uris) > 0:
		name = uris[0]
	case len(names) > 0:
		name = names[0]
	default:
		name = subject
	}
	if len(uris) > 1 {
		return -1, name
	}
	found, ambiguous := int32(-1), false
	add := func(b int32, id string) {
		if b < 0 {
			return
		}
		if found >= 0 && found != b {
			ambiguous = true
		}
		if found < 0 {
			name = id
		}
		found = b
	}
	if len(uris) == 1 && strings.HasPrefix(uris[0], spiffeScheme) {
		add(x.matchSPIFFE(uris[0]), uris[0])
	}
	for _, n := range names {
		if validHostname(n) {
			add(x.matchDNS(n), n)
		}
	}
	if len(x.subjectKey) > 0 && subjectOK {
		if b, ok := x.subjectKey[dnKey(rdns)]; ok {
			add(b, subject)
		}
	}
	if ambiguous {
		return -1, name
	}
	return found, name
}

// fromPrincipal matches Envoy's source.principal, -1 when nothing does. A
// principal's form says which index to search: SPIFFE IDs start with the
// scheme, DNS names are host names, anything else may be a subject DN.
// These forms are disjoint, so no principal can pose as another kind.
func (x principalIndex) fromPrincipal(p string) int32 {
	switch {
	case p == "":
		return -1
	case strings.HasPrefix(p, spiffeScheme):
		return x.matchSPIFFE(p)
	case validHostname(p):
		return x.matchDNS(p)
	case len(x.subjectKey) > 0:
		if b, ok := x.subjectEnvoy[p]; ok {
			return b
		}
		rdns, err := parseDN(p)
		if err != nil {
			return -1
		}
		if b, ok := x.subjectKey[dnKey(rdns)]; ok {
			return b
		}
	}
	return -1
}

// matchSPIFFE looks id up exactly, then walks up its path for a prefix
// binding. Exact keys are valid IDs, so equality is enough; below a prefix
// the rest must be valid segments.
func (x principalIndex) matchSPIFFE(id string) int32 {
	if len(id) > maxSPIFFEIDLen {
		return -1
	}
	if b, ok := x.spiffeExact[id]; ok {
		return b
	}
	if len(x.spiffePrefix) == 0 {
		return -1
	}
	for i := len(id); i > len(spiffeScheme); {
		j := strings.LastIndexByte(id[:i], '/')
		if j < len(spiffeScheme) {
			break
		}
		if b, ok := x.spiffePrefix[id[:j]]; ok {
			if validPath(id[j+1:]) {
				return b
			}
			return -1
		}
		i = j
	}
	return -1
}

// matchDNS looks up a host name case-insensitively without allocating.
func (x principalIndex) matchDNS(name string) int32 {
	if len(x.dns) == 0 || len(name) > maxDNSNameLen {
		return -1
	}
	var buf [maxDNSNameLen]byte
	lower := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	if b, ok := x.dns[string(lower)]; ok {
		return b
	}
	return -1
}

// Principals is a set of principal patterns that all grant the same thing
// (the control plane's controlPlane.adminPrincipals). A certificate is
// matched exactly as Matcher matches a trusted service's: the same code,
// the same rules. It is immutable and safe for concurrent use.
type Principals struct {
	idx principalIndex
}

// NewPrincipals parses patterns (see ParsePattern). It reports every bad
// pattern at once, each a *section.Error naming field[i] and wrapping
// ErrPrincipal.
func NewPrincipals(field string, patterns []string) (*Principals, error) {
	p := &Principals{idx: newIndex()}
	var errs []error
	for i, raw := range patterns {
		pat, err := parsePattern(raw)
		if err != nil {
			errs = append(errs, section.Errorf(fmt.Sprintf("%s[%d]", field, i), ErrPrincipal, "%s: %v", quote(raw), err))
			continue
		}
		p.idx.add(pat, 0)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// MatchCertificate reports whether the certificate names one of the
// principals, and the name it is known by: the identity that matched, else
// Envoy's name for it (first URI SAN, else first DNS SAN, else subject DN),
// all as the certificate's raw bytes. The certificate must already be
// verified: MatchCertificate looks at names only.
func (p *Principals) MatchCertificate(cert *x509.Certificate) (name string, ok bool) {
	if p == nil || cert == nil {
		return "", false
	}
	b, name := p.idx.matchCert(cert)
	return name, b >= 0
}
