package token_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/vaultwall/vaultwall/authz/authztest"
)

// FuzzAuthenticate feeds arbitrary Authorization header values to a real
// authenticator (keys loaded from a real HTTPS issuer). Invariants: it never
// panics or errors, every refusal is a 401 with the challenge, and a caller
// comes back only for a token the issuer's key really signed, of the vault's
// tenant.
func FuzzAuthenticate(f *testing.F) {
	fx := newFixture(f)
	iss, key := fx.iss, fx.iss.Key()
	valid := iss.MintValid()
	with := func(change func(map[string]any)) string {
		c := iss.Claims()
		change(c)
		return iss.Mint(c)
	}
	for _, seed := range []string{
		"", "Bearer", "Bearer " + valid, "bearer  " + valid, "PoP " + valid, "Basic dTpw",
		"Bearer " + valid + ",Bearer " + valid, valid,
		"Bearer " + authztest.Tamper(valid),
		"Bearer " + valid[:len(valid)-3],
		"Bearer " + authztest.Unsigned(f, key.KID, iss.Claims()),
		"Bearer " + authztest.HS256WithPublicKey(f, key, iss.Claims()),
		"Bearer " + with(func(c map[string]any) { c["tid"] = "99999999-9999-9999-9999-999999999999" }),
		"Bearer " + with(func(c map[string]any) { c["aud"] = []any{"x", 1} }),
		"Bearer " + with(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }),
		"Bearer " + with(func(c map[string]any) { c["groups"] = map[string]any{"a": nil}; c["scp"] = 7 }),
		"Bearer " + authztest.Sign(f, key, map[string]any{"kid": "other"}, iss.Claims()),
		"Bearer e30.e30.e30", "Bearer ..", "Bearer a.b.c.d.e",
	} {
		f.Add(seed)
	}
	pub := key.Public
	f.Fuzz(func(t *testing.T, header string) {
		c, d, err := fx.authn.Authenticate(t.Context(), request(header), nil)
		if err != nil {
			t.Fatalf("error for %q: %v", header, err)
		}
		if (c == nil) == (d == nil) {
			t.Fatalf("want exactly one of caller and denial, got %v and %+v", c, d)
		}
		if d != nil {
			if d.Status != 401 || d.Code != "Unauthorized" || !d.Challenge || d.Message == "" {
				t.Fatalf("refusal without a proper 401: %+v", d)
			}
			return
		}
		fields := strings.Fields(header)
		tok := fields[len(fields)-1]
		if _, err := jws.Verify([]byte(tok), jws.WithKey(jwa.RS256, pub)); err != nil {
			t.Fatalf("a caller for a token the issuer did not sign: %q", header)
		}
		if c.TenantID != authztest.DefaultTenantID || c.Issuer != iss.Issuer() {
			t.Fatalf("a caller of another tenant or issuer: %+v", c)
		}
	})
}
