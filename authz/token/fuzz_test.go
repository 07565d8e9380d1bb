package token_test

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz/authztest"
)

// FuzzAuthenticate feeds arbitrary Authorization header values to a real
// authenticator (keys loaded from a real HTTPS issuer). Invariants: it never
// panics or errors, every refusal is a 401 with the challenge, and a caller
// comes back only for a token that an independent oracle — the standard
// library's RSA and JSON, not the product's parser nor its JWT library —
// finds signed by the issuer's key with RS256, for exactly the configured
// audience (case-sensitive), unexpired and already valid within the skew,
// of the configured issuer (byte for byte) and the vault's tenant.
//
// Signatures cannot be forged by mutation, so what an allow can be is set by
// the seeds: they carry the hostile shapes (case and look-alikes of the
// audience, issuer and tenant; times at the skew's edges; whitespace and raw
// bytes around the token).
func FuzzAuthenticate(f *testing.F) {
	fx := newFixture(f)
	iss, key := fx.iss, fx.iss.Key()
	now := fx.clk.Now()
	const skew = 5 * time.Minute // identity() in helpers_test.go
	valid := iss.MintValid()
	with := func(change func(map[string]any)) string {
		c := iss.Claims()
		change(c)
		return iss.Mint(c)
	}
	set := func(k string, v any) string { return with(func(c map[string]any) { c[k] = v }) }
	for _, seed := range []string{
		"", "Bearer", "Bearer " + valid, "bearer  " + valid, "PoP " + valid, "Basic dTpw",
		"Bearer " + valid + ",Bearer " + valid, valid,
		"Bearer " + authztest.Tamper(valid),
		"Bearer " + valid[:len(valid)-3],
		"Bearer " + authztest.Unsigned(f, key.KID, iss.Claims()),
		"Bearer " + authztest.HS256WithPublicKey(f, key, iss.Claims()),
		"Bearer " + set("tid", "99999999-9999-9999-9999-999999999999"),
		"Bearer " + set("aud", []any{"x", 1}),
		"Bearer " + set("exp", now.Add(-time.Hour).Unix()),
		"Bearer " + with(func(c map[string]any) { c["groups"] = map[string]any{"a": nil}; c["scp"] = 7 }),
		"Bearer " + authztest.Sign(f, key, map[string]any{"kid": "other"}, iss.Claims()),
		"Bearer e30.e30.e30", "Bearer ..", "Bearer a.b.c.d.e",
		// Audience: case, trailing slash, look-alikes, lists.
		"Bearer " + set("aud", strings.ToUpper(authztest.DefaultAudience)),
		"Bearer " + set("aud", "https://Vault.azure.net"),
		"Bearer " + set("aud", authztest.DefaultAudience+"/"),
		"Bearer " + set("aud", authztest.DefaultAudience+" "),
		"Bearer " + set("aud", "https://vault.azure.net.evil.example"),
		"Bearer " + set("aud", "https://vau1t.azure.net"),
		"Bearer " + set("aud", "https://vault.azure.net\x00"),
		"Bearer " + set("aud", []any{"HTTPS://VAULT.AZURE.NET", "https://vault.azure.net/"}),
		"Bearer " + set("aud", []any{"x", authztest.DefaultAudience}),
		"Bearer " + set("aud", nil),
		// Issuer and tenant: case, trailing slash, look-alikes.
		"Bearer " + set("iss", strings.ToUpper(iss.Issuer())),
		"Bearer " + set("iss", strings.TrimSuffix(iss.Issuer(), "/")),
		"Bearer " + set("iss", iss.Issuer()+"/"),
		"Bearer " + set("tid", strings.ToUpper(authztest.DefaultTenantID)),
		"Bearer " + set("tid", authztest.DefaultTenantID+" "),
		"Bearer " + set("tid", "00000000-0000-0000-0000-0000000000O1"),
		"Bearer " + set("tid", ""),
		// Times at the edges of the skew.
		"Bearer " + set("exp", now.Add(-skew+time.Second).Unix()),
		"Bearer " + set("exp", now.Add(-skew).Unix()),
		"Bearer " + set("exp", now.Add(-skew-time.Second).Unix()),
		"Bearer " + set("nbf", now.Add(skew).Unix()),
		"Bearer " + set("nbf", now.Add(skew+time.Second).Unix()),
		"Bearer " + set("exp", 0),
		"Bearer " + set("exp", -1),
		"Bearer " + set("exp", 1e300),
		"Bearer " + with(func(c map[string]any) { delete(c, "exp") }),
		// Padding: base64url with '=' in each part (RFC 7515 forbids it;
		// whatever the verdict, an allow must still pass the oracle).
		"Bearer " + valid + "==", "Bearer " + strings.Replace(valid, ".", "=.", 1), "Bearer " + strings.Replace(valid, ".", "==.", 2),
		// Whitespace and raw bytes around the token.
		"Bearer\t" + valid, " Bearer " + valid + " ", "Bearer\u00a0" + valid, "Bearer " + valid + "\x00",
		"Bearer " + valid + "\xff", "\xffBearer " + valid, "Bearer " + valid + "\r\n", "Bearer " + strings.ToUpper(valid),
	} {
		f.Add(seed)
	}
	pub, ok := key.Signer.Public().(*rsa.PublicKey)
	if !ok || key.Alg != "RS256" {
		f.Fatalf("the fixture's issuer key is %s %T; the oracle knows RS256", key.Alg, key.Signer.Public())
	}
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
		if problem := oracleRefuses(header, pub, key.KID, iss.Issuer(), now, skew); problem != "" {
			t.Fatalf("allowed %q, but %s", header, problem)
		}
		if c.TenantID != authztest.DefaultTenantID && !strings.EqualFold(c.TenantID, authztest.DefaultTenantID) || c.Issuer != iss.Issuer() {
			t.Fatalf("a caller of another tenant or issuer: %+v", c)
		}
	})
}

// oracleRefuses judges an Authorization header by the rules alone and says
// why it must be refused, "" when it may be allowed.
func oracleRefuses(header string, pub *rsa.PublicKey, kid, issuer string, now time.Time, skew time.Duration) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "it is not a Bearer header"
	}
	tok = strings.TrimLeft(tok, " ")
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "the token is not three dot-separated parts"
	}
	dec := func(s string) ([]byte, bool) {
		// Padding is tolerated here: refusing it is issue 13's strictness
		// item, owned elsewhere; the signature must verify either way.
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		return b, err == nil
	}
	hb, ok1 := dec(parts[0])
	pb, ok2 := dec(parts[1])
	sig, ok3 := dec(parts[2])
	if !ok1 || !ok2 || !ok3 {
		return "a part is not base64url"
	}
	var hdr map[string]any
	if json.Unmarshal(hb, &hdr) != nil {
		return "the header is not a JSON object"
	}
	if hdr["alg"] != "RS256" || hdr["kid"] != kid {
		return "the header does not name the issuer's RS256 key"
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil {
		return "the issuer's key did not sign it"
	}
	var claims map[string]any
	d := json.NewDecoder(bytes.NewReader(pb))
	d.UseNumber()
	if d.Decode(&claims) != nil {
		return "the claims are not a JSON object"
	}
	if claims["iss"] != issuer {
		return "the issuer is not exactly " + issuer
	}
	if tid, _ := claims["tid"].(string); !strings.EqualFold(tid, authztest.DefaultTenantID) {
		return "the tenant is not the vault's"
	}
	audOK := false
	switch a := claims["aud"].(type) {
	case string:
		audOK = a == authztest.DefaultAudience
	case []any:
		for _, e := range a {
			audOK = audOK || e == authztest.DefaultAudience
		}
	}
	if !audOK {
		return "no audience is exactly " + authztest.DefaultAudience
	}
	exp, ok := claims["exp"].(json.Number)
	if !ok {
		return "exp is not a number"
	}
	e, err := exp.Float64()
	if err != nil || !(float64(now.Unix()) < e+skew.Seconds()) {
		return "the token expired (skew included)"
	}
	if nbf, ok := claims["nbf"]; ok {
		n, isNum := nbf.(json.Number)
		f, err := n.Float64()
		if !isNum || err != nil || float64(now.Unix())+skew.Seconds() < f {
			return "the token is not yet valid (skew included)"
		}
	}
	return ""
}
