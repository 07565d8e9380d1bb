package token_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/token"
)

// Every bad credential gets a 401 with the challenge and its own message;
// none passes.
func TestBadInputs(t *testing.T) {
	f := newFixture(t)
	iss, clk := f.iss, f.clk
	key := iss.Key()
	ecKey := iss.AddKey("ES256")
	psOnly := iss.AddKey("PS256")
	f.clk.Advance(minInterval)
	mustAllow(t, f.authn, bearer(authztest.Sign(t, ecKey, nil, iss.Claims()))) // learn the added keys

	valid := iss.MintValid()
	with := func(change func(map[string]any)) string {
		c := iss.Claims()
		change(c)
		return iss.Mint(c)
	}
	now := clk.Now()
	expected := iss.Issuer()

	cases := []struct {
		name, header, want string
	}{
		{"no header", "", "AKV10000: Request is missing a Bearer or PoP token."},
		{"blank header", "   ", "AKV10000: Request is missing a Bearer or PoP token."},
		{"Bearer without token", "Bearer", "Bearer token is empty."},
		{"Bearer and spaces", "Bearer    ", "Bearer token is empty."},
		{"Basic", "Basic dXNlcjpwYXNzd29yZA==", `Authorization scheme Basic is not supported; send a Bearer token.`},
		{"Digest", `Digest username="u"`, "Authorization scheme Digest is not supported"},
		{"PoP", "PoP " + valid, "PoP tokens are not supported by this vault; send a Bearer token."},
		{"pop lowercase", "pop " + valid, "PoP tokens are not supported"},
		{"duplicate Authorization", "Bearer " + valid + ",Bearer " + valid, "more than one Authorization header"},
		{"duplicate with space", "Bearer " + valid + ", Basic eA==", "more than one Authorization header"},
		{"bare token", valid, "has no scheme"},
		{"two tokens", "Bearer " + valid + " " + valid, "it contains whitespace"},
		{"oversized", "Bearer " + strings.Repeat("a", token.MaxTokenBytes+1), "too large: 16385 bytes, the limit is 16384"},
		{"oversized header", "Bearer " + strings.Repeat("a.", 20000), "Authorization header is too large: 40007 bytes."},
		{"header of exactly twice the token limit is scanned", "Bearer " + strings.Repeat("a", 2*token.MaxTokenBytes-len("Bearer ")), "Bearer token is too large: 32761 bytes"},
		{"header one byte over twice the limit is not", "Bearer " + strings.Repeat("a", 2*token.MaxTokenBytes-len("Bearer ")+1), "Authorization header is too large: 32769 bytes."},
		{"not a JWT", "Bearer hello", "it is not a signed JWT"},
		{"two parts", "Bearer a.b", "it is not a signed JWT"},
		{"JWE", "Bearer a.b.c.d.e", "an encrypted token (JWE) is not accepted"},
		{"bad base64", "Bearer !!!.@@@.###", "it is not a signed JWT"},
		{"truncated", "Bearer " + valid[:len(valid)/2], "it is not a signed JWT"},
		{"truncated signature", "Bearer " + valid[:len(valid)-10], "Token signature is invalid."},
		{"signature removed", "Bearer " + valid[:strings.LastIndexByte(valid, '.')+1], "Token signature is invalid."},
		{"tampered signature", "Bearer " + authztest.Tamper(valid), "Token signature is invalid."},
		{"tampered claims", "Bearer " + authztest.TamperClaims(t, valid, func(c map[string]any) { c["oid"] = "33333333-3333-3333-3333-333333333333" }), "Token signature is invalid."},
		{"alg none", "Bearer " + authztest.Unsigned(t, key.KID, iss.Claims()), "Token is not signed (alg none). Expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384."},
		{"alg none, no signature part", "Bearer " + strings.TrimSuffix(authztest.Unsigned(t, key.KID, iss.Claims()), "."), "it is not a signed JWT"},
		{"no alg", "Bearer " + authztest.Assemble(t, map[string]any{"kid": key.KID}, iss.Claims(), []byte("x")), "Bearer token is malformed: its header has no alg."},
		{"alg None", "Bearer " + authztest.Assemble(t, map[string]any{"alg": "None", "kid": key.KID}, iss.Claims(), []byte("x")), "Token is not signed (alg none)."},
		{"HS256 with the RSA public key", "Bearer " + authztest.HS256WithPublicKey(t, key, iss.Claims()), "Token algorithm HS256 is not accepted: a shared-secret (HMAC) signature cannot be verified"},
		{"EdDSA", "Bearer " + authztest.Assemble(t, map[string]any{"alg": "EdDSA", "kid": key.KID}, iss.Claims(), []byte("x")), "Token algorithm EdDSA is not accepted."},
		{"ES512", "Bearer " + authztest.Assemble(t, map[string]any{"alg": "ES512", "kid": key.KID}, iss.Claims(), []byte("x")), "Token algorithm ES512 is not accepted."},
		{"alg is not the key's", "Bearer " + authztest.Sign(t, key, map[string]any{"kid": ecKey.KID}, iss.Claims()), "Token algorithm RS256 does not match its signing key " + ecKey.KID + "."},
		{"alg is not the key's own alg", "Bearer " + authztest.Sign(t, key, map[string]any{"kid": psOnly.KID}, iss.Claims()), "Token algorithm RS256 does not match its signing key"},
		{"crit", "Bearer " + authztest.Sign(t, key, map[string]any{"crit": []string{"exp"}}, iss.Claims()), "critical header parameters"},
		{"no kid", "Bearer " + authztest.Sign(t, key, map[string]any{"kid": nil}, iss.Claims()), "Token has no kid header"},
		{"unknown kid", "Bearer " + authztest.Sign(t, key, map[string]any{"kid": "no-such-key"}, iss.Claims()), "Token signing key no-such-key is not among the published keys of issuer " + expected + "."},
		{"unknown kid with control characters", "Bearer " + authztest.Sign(t, key, map[string]any{"kid": "a\r\nb"}, iss.Claims()), "Token signing key a??b is not"},
		{"claims not an object", "Bearer " + signedPayload(t, key, "[1,2]"), "its claims are not a valid JSON object"},
		{"claims not JSON", "Bearer " + signedPayload(t, key, "hello"), "its claims are not a valid JSON object"},
		{"exp not a number", "Bearer " + with(func(c map[string]any) { c["exp"] = map[string]any{} }), "its claims are not a valid JSON object"},
		{"exp a string", "Bearer " + with(func(c map[string]any) { c["exp"] = strconv.FormatInt(now.Add(time.Hour).Unix(), 10) }),
			"Bearer token is malformed: its exp claim is not a number (RFC 7519 NumericDate)."},
		{"exp null", "Bearer " + with(func(c map[string]any) { c["exp"] = json.RawMessage("null") }), "its claims are not a valid JSON object"},
		{"nbf a string", "Bearer " + with(func(c map[string]any) { c["nbf"] = strconv.FormatInt(now.Add(-time.Hour).Unix(), 10) }), "its nbf claim is not a number"},
		{"iat a string", "Bearer " + with(func(c map[string]any) { c["iat"] = strconv.FormatInt(now.Add(-time.Hour).Unix(), 10) }), "its iat claim is not a number"},
		{"padded signature", "Bearer " + padded(valid), "Bearer token is malformed: its parts are not unpadded base64url (RFC 7515)"},
		{"padded payload", "Bearer " + padPart(valid, 1), "its parts are not unpadded base64url"},
		{"standard alphabet", "Bearer " + stdAlphabet(t, valid), "its parts are not unpadded base64url"},
		{"wrong issuer", "Bearer " + with(func(c map[string]any) { c["iss"] = "https://sts.windows.net/" + authztest.DefaultTenantID + "/" }),
			"AKV10032: Invalid issuer. Expected one of " + expected + ", found https://sts.windows.net/" + authztest.DefaultTenantID + "/."},
		{"issuer with trailing slash dropped", "Bearer " + with(func(c map[string]any) { c["iss"] = strings.TrimSuffix(expected, "/") }), "AKV10032: Invalid issuer."},
		{"issuer case", "Bearer " + with(func(c map[string]any) { c["iss"] = strings.ToUpper(expected) }), "AKV10032: Invalid issuer."},
		{"no issuer", "Bearer " + with(func(c map[string]any) { delete(c, "iss") }), "AKV10032: Invalid issuer. Expected one of " + expected + ", found (none)."},
		{"wrong audience", "Bearer " + with(func(c map[string]any) { c["aud"] = "https://management.azure.com/" }),
			"AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://management.azure.com/."},
		{"audience with trailing slash", "Bearer " + with(func(c map[string]any) { c["aud"] = "https://vault.azure.net/" }), "AKV10022: Invalid audience."},
		{"audience list without ours", "Bearer " + with(func(c map[string]any) { c["aud"] = []string{"a", "b"} }), "AKV10022: Invalid audience. Expected https://vault.azure.net, found: a, b."},
		{"no audience", "Bearer " + with(func(c map[string]any) { delete(c, "aud") }), "found: (none)."},
		{"another tenant", "Bearer " + with(func(c map[string]any) { c["tid"] = "99999999-9999-9999-9999-999999999999" }),
			"AKV10032: Invalid issuer. Expected tenant " + authztest.DefaultTenantID + ", found tenant 99999999-9999-9999-9999-999999999999 in a token of " + expected + "."},
		{"no tenant", "Bearer " + with(func(c map[string]any) { delete(c, "tid") }), "found tenant (none)"},
		{"tenant not a string", "Bearer " + with(func(c map[string]any) { c["tid"] = 1 }), "AKV10032: Invalid issuer. Expected tenant"},
		{"expired", "Bearer " + with(func(c map[string]any) { c["exp"] = now.Add(-6 * time.Minute).Unix() }),
			"Token is expired. Expired at " + now.Add(-6*time.Minute).UTC().Format(time.RFC3339) + ", current time " + now.UTC().Format(time.RFC3339) + ", allowed clock skew 5m0s."},
		{"no exp", "Bearer " + with(func(c map[string]any) { delete(c, "exp") }), "Token has no exp claim"},
		{"not yet valid", "Bearer " + with(func(c map[string]any) { c["nbf"] = now.Add(6 * time.Minute).Unix() }),
			"Token is not yet valid. Valid from " + now.Add(6*time.Minute).UTC().Format(time.RFC3339) + ", current time " + now.UTC().Format(time.RFC3339) + ", allowed clock skew 5m0s."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := request(tc.header)
			if tc.header == "" {
				req.Headers = nil
			}
			mustDeny(t, f.authn, req, tc.want)
		})
	}

	// And these pass: the boundaries of the rules above.
	good := []struct{ name, header string }{
		{"lower-case scheme", "bearer " + valid},
		{"upper-case scheme, two spaces", "BEARER  " + valid},
		{"surrounding whitespace", " Bearer " + valid + " "},
		{"expired within the skew", "Bearer " + with(func(c map[string]any) { c["exp"] = now.Add(-4 * time.Minute).Unix() })},
		{"nbf within the skew", "Bearer " + with(func(c map[string]any) { c["nbf"] = now.Add(4 * time.Minute).Unix() })},
		{"no nbf", "Bearer " + with(func(c map[string]any) { delete(c, "nbf") })},
		{"audience list with ours", "Bearer " + with(func(c map[string]any) { c["aud"] = []string{"x", authztest.DefaultAudience} })},
		{"tenant in upper case", "Bearer " + with(func(c map[string]any) { c["tid"] = strings.ToUpper(authztest.DefaultTenantID) })},
		{"ES256", "Bearer " + authztest.Sign(t, ecKey, nil, iss.Claims())},
		{"PS256", "Bearer " + authztest.Sign(t, psOnly, nil, iss.Claims())},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) { mustAllow(t, f.authn, request(tc.header)) })
	}
}

// signedPayload signs an arbitrary payload (not a claims object).
func signedPayload(t *testing.T, key *authztest.SigningKey, payload string) string {
	return authztest.SignBytes(t, key, nil, []byte(payload))
}

func TestAlgorithmsNarrowed(t *testing.T) {
	f := newFixture(t, func(id *token.Identity, _ *token.StoreOptions) {
		id.Issuers[0].Algorithms = []string{"ES256"}
	})
	mustDeny(t, f.authn, bearer(f.iss.MintValid()), "Token algorithm RS256 is not accepted. Expected one of ES256.")
	f.iss.Rotate("ES256")
	f.clk.Advance(minInterval)
	mustAllow(t, f.authn, bearer(f.iss.MintValid()))
}

func TestSeveralIssuers(t *testing.T) {
	f := newFixture(t)
	other := authztest.NewIssuer(t, authztest.WithTenant(authztest.DefaultTenantID))
	other.Now = f.clk.Now
	id := identity(f.iss.Config(), other.Config())
	id.Issuers[1].Audiences = []string{"api://vault"}
	a := newAuthn(t, f.store, id)
	waitReady(t, a)

	mustAllow(t, a, bearer(f.iss.MintValid()))
	c := other.Claims()
	c["aud"] = "api://vault"
	mustAllow(t, a, bearer(other.Mint(c)))
	// Each issuer's audiences are its own.
	mustDeny(t, a, bearer(other.MintValid()), "AKV10022: Invalid audience. Expected api://vault, found: https://vault.azure.net.")
	// A token claiming one issuer but signed by the other's key is checked
	// against the claimed issuer's keys only.
	forged := authztest.Sign(t, other.Key(), map[string]any{"kid": f.iss.Key().KID}, f.iss.Claims())
	mustDeny(t, a, bearer(forged), "Token signature is invalid.")
	forged = authztest.Sign(t, other.Key(), nil, f.iss.Claims())
	mustDeny(t, a, bearer(forged), "is not among the published keys of issuer "+f.iss.Issuer())
	mustDeny(t, a, bearer(authztest.Sign(t, other.Key(), nil, map[string]any{"iss": "https://x/"})),
		"AKV10032: Invalid issuer. Expected one of "+f.iss.Issuer()+", "+other.Issuer()+", found https://x/.")
}

func TestNoIssuerConfigured(t *testing.T) {
	f := newFixture(t)
	a := newAuthn(t, f.store, identity())
	mustDeny(t, a, bearer(f.iss.MintValid()), "Expected one of (no issuer is configured), found "+f.iss.Issuer())
}

func TestCallerFromClaims(t *testing.T) {
	f := newFixture(t)
	t.Run("v1 app", func(t *testing.T) {
		c := f.iss.Claims()
		c["xms_mirid"] = "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mi"
		c["xms_az_rid"] = "/subscriptions/s/resourcegroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
		c["roles"] = []string{"Reader"}
		tok := f.iss.Mint(c)
		got := mustAllow(t, f.authn, bearer(tok))
		want := "appid=" + authztest.DefaultAppID + ";oid=" + authztest.DefaultObjectID + ";iss=" + f.iss.Issuer() +
			";xms_mirid=" + c["xms_mirid"].(string) + ";xms_az_rid=" + c["xms_az_rid"].(string)
		if got.String() != want {
			t.Errorf("String() = %q, want %q", got.String(), want)
		}
		if got.ApplicationID != authztest.DefaultAppID || got.AppIDACR != "2" || got.IdentityType != "app" ||
			got.IsUser() || !slices.Equal(got.Roles, []string{"Reader"}) || got.Subject != authztest.DefaultObjectID ||
			!got.Expires.Equal(time.Unix(c["exp"].(int64), 0)) || got.Issuer != f.iss.Issuer() {
			t.Errorf("caller %+v", got)
		}
		for k, v := range got.Claims {
			if s, ok := v.(string); ok && strings.Contains(s, tok[:20]) {
				t.Errorf("claim %s holds the token", k)
			}
		}
		if got.Claims["exp"] != float64(c["exp"].(int64)) || got.Claims["tid"] != authztest.DefaultTenantID ||
			got.Claims["iss"] != f.iss.Issuer() || !slices.Equal(got.Claims["aud"].([]any), []any{authztest.DefaultAudience}) {
			t.Errorf("claims %v", got.Claims)
		}
	})
	t.Run("v2 user with group overage", func(t *testing.T) {
		c := f.iss.Claims()
		for _, k := range []string{"appid", "appidacr", "idtyp"} {
			delete(c, k)
		}
		c["ver"] = "2.0"
		c["azp"] = "44444444-4444-4444-4444-444444444444"
		c["azpacr"] = "1"
		c["scp"] = "user_impersonation  Secrets.Read"
		c["groups"] = []any{"g1", "g2", 3}
		c["_claim_names"] = map[string]any{"groups": "src1"}
		c["_claim_sources"] = map[string]any{"src1": map[string]any{"endpoint": "https://graph.example/"}}
		got := mustAllow(t, f.authn, bearer(f.iss.Mint(c)))
		if got.ApplicationID != "44444444-4444-4444-4444-444444444444" || got.AppIDACR != "1" ||
			!slices.Equal(got.Scopes, []string{"user_impersonation", "Secrets.Read"}) ||
			!slices.Equal(got.Groups, []string{"g1", "g2"}) || !got.GroupsOverage || !got.IsUser() {
			t.Errorf("caller %+v", got)
		}
		if !strings.Contains(got.String(), ";numgroups=2;") {
			t.Errorf("String() = %q", got.String())
		}
	})
}

// A request that ends while its token waits for keys ends with its context
// error (fail closed), not with a verdict about the token.
func TestContextEndsWhileWaiting(t *testing.T) {
	f := newFixture(t)
	f.iss.SetFailure(authztest.FailHang)
	f.iss.Rotate("RS256")
	f.clk.Advance(minInterval)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	c, d, err := f.authn.Authenticate(ctx, bearer(f.iss.MintValid()), nil)
	if c != nil || d != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a deadline error, got caller=%v denial=%+v err=%v", c, d, err)
	}
}

// The stage in the real pipeline: every 401 carries the challenge, a valid
// token passes authentication (and meets the missing policy's 403), and an
// issuer without keys fails closed with a 500.
func TestPipeline(t *testing.T) {
	f := newFixture(t)
	down := authztest.NewIssuer(t)
	down.SetFailure(authztest.Fail500)
	down.Now = f.clk.Now
	a := newAuthn(t, f.store, identity(f.iss.Config(), down.Config()))
	p := &authz.Pipeline{Vault: vault(), Classifier: classifier{}, Authenticator: a}
	for name, tc := range map[string]struct {
		header string
		status int
		stage  authz.Stage
	}{
		"probe without token": {"", 401, authz.StageAuthenticate},
		"PoP":                 {"PoP x", 401, authz.StageAuthenticate},
		"bad signature":       {"Bearer " + authztest.Tamper(f.iss.MintValid()), 401, authz.StageAuthenticate},
		"valid":               {"Bearer " + f.iss.MintValid(), 403, authz.StageAuthorize},
		"issuer without keys": {"Bearer " + down.MintValid(), 500, authz.StageAuthenticate},
	} {
		t.Run(name, func(t *testing.T) {
			req := &authz.Request{Method: "PUT", Path: "/secrets/s1", Headers: map[string]string{}}
			if tc.header != "" {
				req.Headers["authorization"] = tc.header
			}
			d := p.Decide(t.Context(), req)
			r := d.Response()
			if r.Allowed || r.Status != tc.status || d.Stage != tc.stage {
				t.Fatalf("stage %v, response %+v", d.Stage, r)
			}
			challenged := slices.Contains(r.Headers, authz.Header{Name: "www-authenticate", Value: vault().Challenge})
			if challenged != (tc.status == 401) {
				t.Errorf("status %d, challenge %v: %+v", r.Status, challenged, r.Headers)
			}
			if tc.status == 401 && !strings.Contains(r.Body, `"code":"Unauthorized"`) {
				t.Errorf("body %s", r.Body)
			}
		})
	}
}

type classifier struct{}

func (classifier) Classify(*authz.Request) (authz.Operation, *authz.Denial) {
	return authz.Operation{Plane: authz.PlaneControl, Name: "SecretSet"}, nil
}

// padded is tok with its signature padded to a multiple of 4 characters,
// as standard base64 would write it: the same bytes, another spelling.
func padded(tok string) string { return padPart(tok, 2) }

// padPart pads part i (0 header, 1 claims, 2 signature) with '='; a part
// whose length is a multiple of 4 gets a lone "=" (still the same bytes to a
// lenient decoder that strips padding).
func padPart(tok string, i int) string {
	parts := strings.Split(tok, ".")
	n := (4 - len(parts[i])%4) % 4
	if n == 0 {
		n = 4
	}
	parts[i] += strings.Repeat("=", n)
	return strings.Join(parts, ".")
}

// stdAlphabet spells tok's signature in the standard base64 alphabet
// ('+' and '/' for '-' and '_'); it fails the test when the signature holds
// neither, so the case cannot silently stop testing anything.
func stdAlphabet(t *testing.T, tok string) string {
	i := strings.LastIndexByte(tok, '.')
	sig := tok[i+1:]
	if !strings.ContainsAny(sig, "-_") {
		t.Fatal("the signature has no '-' or '_' to respell")
	}
	return tok[:i+1] + strings.NewReplacer("-", "+", "_", "/").Replace(sig)
}
