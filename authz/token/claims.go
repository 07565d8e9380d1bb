package token

import (
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/vaultwall/vaultwall/authz"
)

// callerFrom maps a verified token's claims to a Caller the way Key Vault
// reads Entra tokens (keyvault-spec §4), and seals it for sharing.
func callerFrom(tok jwt.Token) *authz.Caller {
	pc := tok.PrivateClaims()
	c := callerOf(pc)
	// The registered claims from jwx's typed fields: an exp beyond float64's
	// exact integers is read as sent.
	c.Issuer, c.Subject, c.Expires = tok.Issuer(), tok.Subject(), tok.Expiration()
	c.Claims = claimsMap(tok, pc)
	c.Seal()
	return c
}

// callerOf is the one mapping of a token's private claims to a Caller, for
// live verification and for replayed records alike (CallerFromClaims).
func callerOf(pc map[string]any) *authz.Caller {
	c := &authz.Caller{
		TenantID:      str(pc["tid"]),
		ObjectID:      str(pc["oid"]),
		IdentityType:  str(pc["idtyp"]),
		Groups:        strs(pc["groups"]),
		Roles:         strs(pc["roles"]),
		Scopes:        strings.Fields(str(pc["scp"])),
		MIResourceID:  str(pc["xms_mirid"]),
		AzResourceID:  str(pc["xms_az_rid"]),
		GroupsOverage: overage(pc),
	}
	// v1 tokens name the client in appid/appidacr, v2 in azp/azpacr; take
	// the token version's own claim first and the other as a fallback.
	app, acr := [2]string{"appid", "azp"}, [2]string{"appidacr", "azpacr"}
	if str(pc["ver"]) == "2.0" {
		app, acr = [2]string{"azp", "appid"}, [2]string{"azpacr", "appidacr"}
	}
	c.ApplicationID = first(pc, app)
	c.AppIDACR = first(pc, acr)
	return c
}

func setTime(m map[string]any, name string, t time.Time) {
	if !t.IsZero() {
		m[name] = float64(t.Unix())
	}
}

func first(pc map[string]any, names [2]string) string {
	if v := str(pc[names[0]]); v != "" {
		return v
	}
	return str(pc[names[1]])
}

// str reads a string claim; numbers (appidacr is sometimes numeric in
// hand-made tokens) are formatted, anything else is "".
func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return ""
}

// strs reads a list-of-strings claim; a single string is a one-element
// list, and non-string elements are dropped.
func strs(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// overage reports Entra's signal that the groups did not fit in the token:
// _claim_names.groups (access and ID tokens) or hasgroups (implicit flow).
func overage(pc map[string]any) bool {
	if names, ok := pc["_claim_names"].(map[string]any); ok {
		if _, ok := names["groups"]; ok {
			return true
		}
	}
	b, _ := pc["hasgroups"].(bool)
	return b
}

// claimsMap is the verified claims in their JSON shapes (numbers as
// float64, lists as []any) for policy and audit. It reuses the token's
// private-claims map: the token itself is dropped after verification.
func claimsMap(tok jwt.Token, pc map[string]any) map[string]any {
	m := pc
	if m == nil {
		m = make(map[string]any, 8)
	}
	if v := tok.Issuer(); v != "" {
		m["iss"] = v
	}
	if v := tok.Subject(); v != "" {
		m["sub"] = v
	}
	if v := tok.JwtID(); v != "" {
		m["jti"] = v
	}
	if aud := tok.Audience(); len(aud) > 0 {
		l := make([]any, len(aud))
		for i, a := range aud {
			l[i] = a
		}
		m["aud"] = l
	}
	setTime(m, "exp", tok.Expiration())
	setTime(m, "nbf", tok.NotBefore())
	setTime(m, "iat", tok.IssuedAt())
	return m
}
