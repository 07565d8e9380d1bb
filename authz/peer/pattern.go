package peer

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Kind is the kind of identity a principal pattern names.
type Kind uint8

const (
	// KindSPIFFE is one SPIFFE ID: spiffe://trust.domain/path.
	KindSPIFFE Kind = iota + 1
	// KindSPIFFEPrefix is every SPIFFE ID strictly below a path:
	// spiffe://trust.domain/path/*.
	KindSPIFFEPrefix
	// KindDNS is a DNS name: dns:host.example.
	KindDNS
	// KindSubject is a certificate subject: subject:CN=…,O=….
	KindSubject
)

func (k Kind) String() string {
	switch k {
	case KindSPIFFE:
		return "spiffe"
	case KindSPIFFEPrefix:
		return "spiffe-prefix"
	case KindDNS:
		return "dns"
	case KindSubject:
		return "subject"
	}
	return "invalid"
}

// Pattern is a parsed principal pattern. The zero value matches nothing.
type Pattern struct {
	kind Kind
	// key is what the hot path compares: the SPIFFE ID; for a prefix, the
	// base ID without "/*"; the lower-cased DNS name; the DN's canonical key.
	key string
	// envoy is, for subjects, the DN as Envoy prints it (a fast first try).
	envoy string
	text  string
}

const maxDNSNameLen = 253

// ParsePattern parses a principal pattern:
//
//	spiffe://trust.domain/path       exactly this SPIFFE ID
//	spiffe://trust.domain/path/*     any SPIFFE ID strictly below path, in
//	                                 whole segments (spiffe://trust.domain/*:
//	                                 any workload of the trust domain)
//	dns:host.example                 a DNS SAN, ASCII case-insensitive
//	subject:CN=svc,O=Example         a subject DN (RFC 4514), compared in
//	                                 canonical form
//
// SPIFFE IDs follow the SPIFFE-ID spec: lower-case scheme and trust
// domain, path segments of [A-Za-z0-9._-] (case-sensitive), no empty, "."
// or ".." segment, no trailing "/", no percent-encoding, userinfo, port,
// query or fragment. DNS names are LDH labels without a trailing dot,
// wildcard or IP literal. Errors wrap ErrPrincipal.
func ParsePattern(s string) (Pattern, error) {
	p, err := parsePattern(s)
	if err != nil {
		return Pattern{}, fmt.Errorf("%w: %q: %v", ErrPrincipal, s, err)
	}
	return p, nil
}

func parsePattern(s string) (Pattern, error) {
	switch {
	case strings.HasPrefix(s, spiffeScheme):
		if base, ok := strings.CutSuffix(s, "/*"); ok {
			if _, _, ok := splitSPIFFEID(base); !ok {
				return Pattern{}, errors.New(spiffeProblem(base))
			}
			return Pattern{kind: KindSPIFFEPrefix, key: base, text: s}, nil
		}
		_, path, ok := splitSPIFFEID(s)
		if !ok {
			return Pattern{}, errors.New(spiffeProblem(s))
		}
		if path == "" {
			return Pattern{}, errors.New("a workload SPIFFE ID has a path; for every workload of the trust domain write " + s + "/*")
		}
		return Pattern{kind: KindSPIFFE, key: s, text: s}, nil
	case strings.HasPrefix(s, "dns:"):
		name := s[len("dns:"):]
		if err := dnsProblem(name); err != "" {
			return Pattern{}, errors.New(err)
		}
		name = strings.ToLower(name)
		return Pattern{kind: KindDNS, key: name, text: "dns:" + name}, nil
	case strings.HasPrefix(s, "subject:"):
		rdns, err := parseDN(s[len("subject:"):])
		if err != nil {
			return Pattern{}, err
		}
		envoy := renderDN(rdns)
		return Pattern{kind: KindSubject, key: dnKey(rdns), envoy: envoy, text: "subject:" + envoy}, nil
	case strings.HasPrefix(strings.ToLower(s), spiffeScheme):
		return Pattern{}, errors.New("the scheme is lower-case spiffe://")
	}
	return Pattern{}, errors.New("want spiffe://trust.domain/path[/*], dns:name or subject:DN")
}

// spiffeProblem names what makes s an invalid SPIFFE ID, for config errors.
func spiffeProblem(s string) string {
	if len(s) > maxSPIFFEIDLen {
		return "longer than 2048 bytes"
	}
	// s lacks the full scheme only when "/*" was cut from "spiffe://*":
	// there is no trust domain at all.
	rest, ok := strings.CutPrefix(s, spiffeScheme)
	if !ok {
		return "the trust domain is empty"
	}
	td, path, _ := strings.Cut(rest, "/")
	switch {
	case strings.ContainsAny(s, "?#"):
		return "a SPIFFE ID has no query or fragment"
	case strings.Contains(s, "%"):
		return "a SPIFFE ID has no percent-encoding"
	case strings.Contains(td, "@"):
		return "a SPIFFE ID has no userinfo"
	case strings.Contains(td, ":"):
		return "a SPIFFE ID has no port"
	case td == "":
		return "the trust domain is empty"
	case td != strings.ToLower(td):
		return "the trust domain is lower case"
	case len(td) > maxTrustDomainLen:
		return "the trust domain is longer than 255 bytes"
	case !validTrustDomain(td):
		return "the trust domain allows only a-z, 0-9, '.', '-' and '_'"
	case strings.Contains(path, "*"):
		return "'*' is allowed only as the whole last segment, after '/'"
	}
	for _, seg := range strings.Split(path, "/") {
		switch seg {
		case "":
			return "empty path segment (a doubled or trailing '/')"
		case ".", "..":
			return "path segments '.' and '..' are not allowed"
		}
	}
	return "path segments allow only A-Z, a-z, 0-9, '.', '-' and '_'"
}

// dnsProblem names what makes name unusable as a DNS pattern, "" if fine.
func dnsProblem(name string) string {
	switch {
	case name == "":
		return "empty DNS name"
	case strings.HasSuffix(name, "."):
		return "no trailing dot: certificate DNS names are written without one"
	case strings.Contains(name, "*"):
		return "wildcards are not supported; bind each name"
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return "an IP address is not a DNS name"
	}
	for i := 0; i < len(name); i++ {
		if name[i] >= 0x80 {
			return "write internationalised names in their A-label (xn--) form"
		}
	}
	if !validHostname(name) {
		return "not a host name: labels of 1-63 letters, digits and '-', not starting or ending with '-', 253 bytes at most"
	}
	return ""
}

// validHostname reports whether s is LDH labels joined by '.', without a
// trailing dot. It allocates nothing.
func validHostname(s string) bool {
	if s == "" || len(s) > maxDNSNameLen {
		return false
	}
	label := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if label == 0 || s[i-1] == '-' {
				return false
			}
			label = 0
			continue
		case c == '-':
			if label == 0 {
				return false
			}
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		default:
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return label > 0 && s[len(s)-1] != '-'
}

// Kind is the kind of identity the pattern names.
func (p Pattern) Kind() Kind { return p.kind }

// String is the pattern in canonical form; it parses back to an equal
// pattern.
func (p Pattern) String() string { return p.text }

// Match reports whether an Envoy source.principal (first URI SAN, else
// first DNS SAN, else subject DN) is the identity the pattern names.
func (p Pattern) Match(principal string) bool {
	switch p.kind {
	case KindSPIFFE:
		return principal == p.key
	case KindSPIFFEPrefix:
		return below(principal, p.key)
	case KindDNS:
		return validHostname(principal) && strings.EqualFold(principal, p.key)
	case KindSubject:
		if principal == p.envoy {
			return true
		}
		rdns, err := parseDN(principal)
		return err == nil && dnKey(rdns) == p.key
	}
	return false
}

// below reports whether id is a valid SPIFFE ID strictly below base, in
// whole segments. base is a valid SPIFFE ID; the rest must be valid path
// segments.
func below(id, base string) bool {
	return len(id) <= maxSPIFFEIDLen && len(id) > len(base)+1 &&
		id[len(base)] == '/' && id[:len(base)] == base && validPath(id[len(base)+1:])
}
