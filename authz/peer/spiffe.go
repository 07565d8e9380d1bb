package peer

import "strings"

// SPIFFE ID rules (SPIFFE-ID spec §2): scheme "spiffe" in lower case; a
// trust domain of [a-z0-9._-]; a path of "/"-separated segments of
// [a-zA-Z0-9._-], none empty, "." or ".."; no userinfo, port, query or
// fragment; at most 2048 bytes in all.
const (
	spiffeScheme      = "spiffe://"
	maxSPIFFEIDLen    = 2048
	maxTrustDomainLen = 255
)

// splitSPIFFEID splits a valid SPIFFE ID into its trust domain and path
// ("" or "/a/b"); ok is false for anything the spec does not allow.
func splitSPIFFEID(s string) (td, path string, ok bool) {
	if len(s) > maxSPIFFEIDLen || !strings.HasPrefix(s, spiffeScheme) {
		return "", "", false
	}
	rest := s[len(spiffeScheme):]
	td, path = rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		td, path = rest[:i], rest[i:]
	}
	if !validTrustDomain(td) || (path != "" && !validPath(path[1:])) {
		return "", "", false
	}
	return td, path, true
}

func validTrustDomain(td string) bool {
	if td == "" || len(td) > maxTrustDomainLen {
		return false
	}
	for i := 0; i < len(td); i++ {
		c := td[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validPath reports whether p (a path without its leading "/") is one or
// more valid segments. It allocates nothing: it runs on the hot path for
// prefix patterns.
func validPath(p string) bool {
	start := 0
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			seg := p[start:i]
			if seg == "" || seg == "." || seg == ".." {
				return false
			}
			start = i + 1
			continue
		}
		c := p[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
