package route

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/vaultwall/vaultwall/authz"
)

// Limits on the request target.
const (
	MaxPathLen  = 2048 // the path, before '?'
	MaxQueryLen = 4096 // the query, after '?'
	// maxSegs bounds the segments kept on the stack; longer paths match
	// nothing (the table's deepest pattern has 5).
	maxSegs = 8
)

// Denial codes. Code is error.code (Key Vault's own "BadParameter" for a
// request it cannot take); Inner is error.innererror.code and what
// x-ms-error-code carries, so clients and metrics see which rule refused.
const (
	CodeBadParameter     = "BadParameter"
	CodeMethodNotAllowed = "MethodNotAllowed"

	InnerInvalidRequestURI     = "InvalidRequestUri"
	InnerInvalidName           = "InvalidName"
	InnerUnknownOperation      = "UnknownOperation"
	InnerAmbiguous             = "AmbiguousRequestUri"
	InnerInvalidMethodOverride = "InvalidMethodOverride"
)

func denyURI(msg string) *authz.Denial {
	return &authz.Denial{Status: 400, Code: CodeBadParameter, Inner: InnerInvalidRequestURI, Message: msg}
}

// target is a request's :path taken apart, every piece a slice of it.
type target struct {
	path       string // before '?'
	segs       [maxSegs]string
	nsegs      int // may exceed maxSegs: then segs holds the first maxSegs
	apiVersion string
}

// parse accepts only the canonical form of a path: no percent-encoding, dot
// segments, backslashes, path parameters or fragments, and no bytes outside
// printable ASCII. An empty segment is left for the matcher, which allows
// one only where a version may be empty.
func (t *target) parse(raw string) *authz.Denial {
	if raw == "" || raw[0] != '/' {
		return denyURI("The request path must start with '/'.")
	}
	path, query, hasQuery := strings.Cut(raw, "?")
	if len(path) > MaxPathLen {
		return denyURI(fmt.Sprintf("The request path is longer than %d bytes.", MaxPathLen))
	}
	if len(query) > MaxQueryLen {
		return denyURI(fmt.Sprintf("The request query is longer than %d bytes.", MaxQueryLen))
	}
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c <= ' ' || c >= 0x7f:
			return denyURI(fmt.Sprintf("The request URI contains a control, space or non-ASCII byte (0x%02x) at offset %d.", c, i))
		case c == '#':
			return denyURI("The request URI contains a fragment ('#').")
		}
	}
	for i := 0; i < len(path); i++ {
		switch path[i] {
		case '%':
			return denyURI("The request path contains a percent-encoded character; only the canonical, unencoded form is accepted.")
		case '\\':
			return denyURI("The request path contains a backslash.")
		case ';':
			return denyURI("The request path contains a ';' path parameter.")
		}
	}
	t.path = path
	rest := path[1:]
	for {
		seg, more, found := strings.Cut(rest, "/")
		if seg == "." || seg == ".." {
			return denyURI("The request path contains a dot segment ('" + seg + "').")
		}
		if t.nsegs < maxSegs {
			t.segs[t.nsegs] = seg
		}
		t.nsegs++
		if !found {
			break
		}
		rest = more
	}
	if hasQuery {
		return t.parseQuery(query)
	}
	return nil
}

// parseQuery checks the query's syntax and captures api-version, whose name
// is compared case-insensitively so that no spelling of it can hide a
// second value from one reader and not another.
func (t *target) parseQuery(q string) *authz.Denial {
	seen := false
	for q != "" {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		if pair == "" {
			continue
		}
		if strings.IndexByte(pair, ';') >= 0 {
			return denyURI("The request query contains ';', which is not a parameter separator.")
		}
		key, value, _ := strings.Cut(pair, "=")
		if !validEscapes(key) || !validEscapes(value) {
			return denyURI("The request query has an invalid percent-encoding.")
		}
		if !isAPIVersionKey(key) {
			continue
		}
		if seen {
			return denyURI("The request query has more than one api-version parameter.")
		}
		seen = true
		if !validAPIVersion(value) {
			return denyURI(fmt.Sprintf("The api-version %q is not valid: expected letters, digits, '.' and '-' (e.g. 7.5 or 2025-07-01).", value))
		}
		t.apiVersion = value
	}
	return nil
}

func isAPIVersionKey(k string) bool {
	if strings.ContainsAny(k, "%+") {
		u, err := url.QueryUnescape(k)
		if err != nil {
			return false
		}
		k = u
	}
	return strings.EqualFold(k, "api-version")
}

// validEscapes reports whether every '%' starts a two-digit hex escape.
func validEscapes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return false
		}
		i += 2
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// validAPIVersion accepts the shapes Key Vault uses (7.5, 2025-07-01,
// 7.6-preview.1) without fixing a list, so newer versions pass.
func validAPIVersion(v string) bool {
	if v == "" || len(v) > 32 || !isAlnum(v[0]) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !isAlnum(c) && c != '.' && c != '-' {
			return false
		}
	}
	return true
}
