package token

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vaultwall/vaultwall/authz"
)

// MaxTokenBytes is the largest bearer token vaultwall reads. Entra access
// tokens are 1–3 KiB, rarely above 8 KiB even with many groups (overage
// replaces the list past 200); anything larger is refused before parsing.
const MaxTokenBytes = 16 << 10

// Key Vault's own texts (keyvault-spec §3). Every other message in this file
// is vaultwall's, written in the same style, without an AKV code so that no
// one mistakes it for Key Vault's.
const (
	msgMissing = "AKV10000: Request is missing a Bearer or PoP token."
)

// unauthorized is a 401 with Key Vault's challenge.
func unauthorized(msg string) *authz.Denial {
	return &authz.Denial{Status: 401, Code: "Unauthorized", Message: msg, Challenge: true}
}

func denyMissing() *authz.Denial { return unauthorized(msgMissing) }

func denyDuplicate() *authz.Denial {
	return unauthorized("Request carries more than one Authorization header or credential; send exactly one Bearer token.")
}

func denyScheme(scheme string) *authz.Denial {
	return unauthorized("Authorization scheme " + echo(scheme) + " is not supported; send a Bearer token.")
}

func denyNoScheme() *authz.Denial {
	return unauthorized(`Authorization header has no scheme; send "Bearer <token>".`)
}

func denyPoP() *authz.Denial {
	return unauthorized("PoP tokens are not supported by this vault; send a Bearer token.")
}

func denyEmpty() *authz.Denial { return unauthorized("Bearer token is empty.") }

func denyWhitespace() *authz.Denial {
	return unauthorized("Bearer token is malformed: it contains whitespace.")
}

func denyOversized(n int) *authz.Denial {
	return unauthorized("Bearer token is too large: " + strconv.Itoa(n) + " bytes, the limit is " +
		strconv.Itoa(MaxTokenBytes) + ".")
}

func denyHeaderOversized(n int) *authz.Denial {
	return unauthorized("Authorization header is too large: " + strconv.Itoa(n) + " bytes.")
}

func denyMalformed(why string) *authz.Denial {
	return unauthorized("Bearer token is malformed: " + why + ".")
}

func denyAlgNone(allowed algSet) *authz.Denial {
	return unauthorized("Token is not signed (alg none). Expected one of " + allowed.String() + ".")
}

func denyHMAC(alg string, allowed algSet) *authz.Denial {
	return unauthorized("Token algorithm " + echo(alg) + " is not accepted: a shared-secret (HMAC) signature " +
		"cannot be verified against an issuer's public keys. Expected one of " + allowed.String() + ".")
}

func denyAlg(alg string, allowed algSet) *authz.Denial {
	return unauthorized("Token algorithm " + echo(alg) + " is not accepted. Expected one of " + allowed.String() + ".")
}

func denyCrit() *authz.Denial {
	return unauthorized("Token has critical header parameters (crit or b64) that vaultwall does not support.")
}

func denyNoKID() *authz.Denial {
	return unauthorized("Token has no kid header, so its signing key cannot be identified.")
}

func denyUnknownKID(kid, iss string) *authz.Denial {
	return unauthorized("Token signing key " + echo(kid) + " is not among the published keys of issuer " + iss + ".")
}

func denyKeyAlg(alg, kid string) *authz.Denial {
	return unauthorized("Token algorithm " + alg + " does not match its signing key " + echo(kid) + ".")
}

func denySignature() *authz.Denial { return unauthorized("Token signature is invalid.") }

func denyNoExp() *authz.Denial {
	return unauthorized("Token has no exp claim; a token without an expiry is not accepted.")
}

func denyExpired(exp, now time.Time, skew time.Duration) *authz.Denial {
	return unauthorized("Token is expired. Expired at " + stamp(exp) + ", current time " + stamp(now) +
		", allowed clock skew " + skew.String() + ".")
}

func denyNotYet(nbf, now time.Time, skew time.Duration) *authz.Denial {
	return unauthorized("Token is not yet valid. Valid from " + stamp(nbf) + ", current time " + stamp(now) +
		", allowed clock skew " + skew.String() + ".")
}

// denyIssuer is Key Vault's AKV10032 for an issuer it does not trust.
func denyIssuer(expected, found string) *authz.Denial {
	if found == "" {
		found = "(none)"
	}
	return unauthorized("AKV10032: Invalid issuer. Expected one of " + expected + ", found " + echo(found) + ".")
}

// denyTenant is AKV10032 for a trusted issuer's token of another tenant
// (with Entra the issuer names the tenant, so Key Vault sees a wrong
// issuer); the wording after the code is vaultwall's.
func denyTenant(want, found, iss string) *authz.Denial {
	if found == "" {
		found = "(none)"
	}
	return unauthorized("AKV10032: Invalid issuer. Expected tenant " + want + ", found tenant " + echo(found) +
		" in a token of " + iss + ".")
}

// denyAudience is Key Vault's AKV10022.
func denyAudience(expected []string, found []string) *authz.Denial {
	exp := expected[0]
	if len(expected) > 1 {
		exp = "one of " + strings.Join(expected, ", ")
	}
	f := "(none)"
	if len(found) > 0 {
		f = echo(strings.Join(found, ", "))
	}
	return unauthorized("AKV10022: Invalid audience. Expected " + exp + ", found: " + f + ".")
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// maxEcho bounds how much of a client-supplied value a message repeats.
const maxEcho = 128

// echo makes a client-supplied value safe to repeat in a message: at most
// maxEcho bytes, control characters and invalid UTF-8 replaced.
func echo(s string) string {
	clean := len(s) <= maxEcho && utf8.ValidString(s)
	if clean {
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] == 0x7f {
				clean = false
				break
			}
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		if i >= maxEcho {
			b.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}
