package token

import (
	"slices"
	"strings"
	"time"

	"github.com/vaultwall/vaultwall/authz"
)

// CallerFromClaims rebuilds the Caller of claims an Authenticator verified
// earlier — Caller.Claims as an audit record keeps them — with the same
// mapping as a live verification. It is for replaying recorded decisions:
// the claims are believed as they are, since no token (and so no signature)
// exists any more.
func CallerFromClaims(claims map[string]any) *authz.Caller {
	c := callerOf(claims)
	c.Issuer, c.Subject, c.Expires = str(claims["iss"]), str(claims["sub"]), unix(claims["exp"])
	c.Claims = claims
	c.Seal()
	return c
}

// RecheckClaims applies to recorded, once-verified claims the checks of
// Authenticate that need no token: the issuer is configured, the audience
// is one of its audiences, and the tenant is the vault's. It returns the
// 401 a live request would have got, or nil. Signature, expiry and key
// checks cannot be repeated without the token and are not.
func RecheckClaims(id Identity, vault authz.Vault, claims map[string]any) *authz.Denial {
	iss := str(claims["iss"])
	var is *Issuer
	names := make([]string, 0, len(id.Issuers))
	for i := range id.Issuers {
		names = append(names, id.Issuers[i].Issuer)
		if id.Issuers[i].Issuer == iss {
			is = &id.Issuers[i]
		}
	}
	if is == nil {
		expected := strings.Join(names, ", ")
		if expected == "" {
			expected = "(no issuer is configured)"
		}
		return denyIssuer(expected, iss)
	}
	auds := is.Audiences
	if len(auds) == 0 {
		auds = []string{DefaultAudience}
	}
	got := strs(claims["aud"])
	if !slices.ContainsFunc(got, func(s string) bool { return slices.Contains(auds, s) }) {
		return denyAudience(auds, got)
	}
	if tid := str(claims["tid"]); tid == "" || !strings.EqualFold(tid, vault.TenantID) {
		return denyTenant(vault.TenantID, tid, iss)
	}
	return nil
}

func unix(v any) time.Time {
	if f, ok := v.(float64); ok {
		return time.Unix(int64(f), 0).UTC()
	}
	return time.Time{}
}
