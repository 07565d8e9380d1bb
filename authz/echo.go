package authz

import (
	"strings"
	"unicode/utf8"
)

// Bounds of what vaultwall echoes. A value the client controls (a header it
// sent, a claim of its token, a path) may appear in a response header, the
// dynamic metadata, an error body, an explanation or an audit record only
// through Sanitize, cut to one of these lengths in bytes.
const (
	// MaxEchoValue bounds one header or metadata value (x-ms-client-request-id
	// is a GUID in every Azure SDK; Azure's own services cap it at 1 KiB).
	MaxEchoValue = 1024
	// MaxEchoMessage bounds an error message (error.message of the body,
	// an audit record's resultDescription).
	MaxEchoMessage = 4096
)

// replacement stands for each byte that is not UTF-8 and each control
// character; ellipsis ends a value that was cut.
const (
	replacement = "\uFFFD"
	ellipsis    = "…"
)

// Sanitize returns s as vaultwall may echo it: valid UTF-8 with no control
// characters (C0, DEL, C1, U+2028 and U+2029), each invalid byte or control
// character replaced by U+FFFD, and at most max bytes long, cut on a
// character boundary and ended with "…" when longer. A clean, short s is
// returned as is, without allocating.
//
// It is the one sanitiser of echoed values: the CheckResponse (headers,
// body, dynamic metadata), explanations and audit records all go through
// it, so a refusal always marshals — grpc-go refuses to send a string field
// that is not UTF-8, and Envoy would take that RPC error for "could not
// ask", which failure_mode_allow turns into an allow.
func Sanitize(s string, max int) string { return sanitize(s, max, false) }

// SanitizeMessage is Sanitize for a multi-line message: CR and LF, which
// Key Vault's messages use to separate lines, are kept.
func SanitizeMessage(s string, max int) string { return sanitize(s, max, true) }

func sanitize(s string, max int, lines bool) string {
	if max < len(ellipsis) {
		max = len(ellipsis)
	}
	if len(s) <= max && clean(s, lines) {
		return s
	}
	var b strings.Builder
	b.Grow(min(len(s), max) + len(replacement))
	limit := max - len(ellipsis)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		piece := s[i : i+size]
		if (r == utf8.RuneError && size == 1) || control(r, lines) {
			piece = replacement
		}
		if b.Len()+len(piece) > limit && (b.Len()+len(piece) > max || i+size < len(s)) {
			b.WriteString(ellipsis)
			return b.String()
		}
		b.WriteString(piece)
		i += size
	}
	return b.String()
}

// clean reports whether s is valid UTF-8 without control characters.
func clean(s string, lines bool) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				if !lines || (c != '\r' && c != '\n') {
					return false
				}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || control(r, lines) {
			return false
		}
		i += size
	}
	return true
}

// control reports whether r may not be echoed: C0 (CR and LF allowed in
// messages), DEL, C1, and the Unicode line and paragraph separators.
func control(r rune, lines bool) bool {
	switch {
	case r == '\r' || r == '\n':
		return !lines
	case r < 0x20 || r == 0x7f:
		return true
	case r >= 0x80 && r <= 0x9f:
		return true
	case r == '\u2028' || r == '\u2029':
		return true
	}
	return false
}
