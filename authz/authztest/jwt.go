package authztest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// SigningKey is an issuer's key pair.
type SigningKey struct {
	KID    string
	Alg    string // RS256, RS384, RS512, PS256, PS384, PS512, ES256 or ES384
	Signer crypto.Signer
	// Public is the key as its JWKS publishes it: kid, use sig, alg.
	Public jwk.Key
}

// NewSigningKey generates a key for alg (RSA 2048 for RS*/PS*, P-256 for
// ES256, P-384 for ES384) with a random kid.
func NewSigningKey(t testing.TB, alg string) *SigningKey {
	t.Helper()
	var signer crypto.Signer
	var err error
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		signer, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	default:
		t.Fatalf("authztest: no key type for algorithm %q", alg)
	}
	if err != nil {
		t.Fatalf("authztest: generating a %s key: %v", alg, err)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	return WrapSigningKey(t, hex.EncodeToString(id[:]), alg, signer)
}

// WrapSigningKey makes a SigningKey of an existing key pair.
func WrapSigningKey(t testing.TB, kid, alg string, signer crypto.Signer) *SigningKey {
	t.Helper()
	pub, err := jwk.FromRaw(signer.Public())
	if err != nil {
		t.Fatalf("authztest: %v", err)
	}
	for k, v := range map[string]any{jwk.KeyIDKey: kid, jwk.KeyUsageKey: "sig", jwk.AlgorithmKey: alg} {
		if err := pub.Set(k, v); err != nil {
			t.Fatalf("authztest: %v", err)
		}
	}
	return &SigningKey{KID: kid, Alg: alg, Signer: signer, Public: pub}
}

// Sign signs claims as a compact JWS with key under key.Alg, with the
// protected header {"alg","kid","typ":"JWT"} plus header (which may also
// override those three; a nil value removes one).
func Sign(t testing.TB, key *SigningKey, header map[string]any, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatalf("authztest: encoding claims: %v", err)
	}
	return SignBytes(t, key, header, payload)
}

// SignBytes is Sign for an arbitrary payload (which need not be claims).
func SignBytes(t testing.TB, key *SigningKey, header map[string]any, payload []byte) string {
	t.Helper()
	h := jws.NewHeaders()
	set := func(k string, v any) {
		if err := h.Set(k, v); err != nil {
			t.Fatalf("authztest: header %s: %v", k, err)
		}
	}
	set(jws.KeyIDKey, key.KID)
	set(jws.TypeKey, "JWT")
	for k, v := range header {
		if v == nil {
			_ = h.Remove(k)
			continue
		}
		set(k, v)
	}
	b, err := jws.Sign(payload, jws.WithKey(jwa.SignatureAlgorithm(key.Alg), key.Signer, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatalf("authztest: signing: %v", err)
	}
	return string(b)
}

// Assemble builds a compact token from a header, claims and signature
// bytes, with no checks: the way to make tokens no library would sign.
func Assemble(t testing.TB, header, claims map[string]any, sig []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatalf("authztest: %v", err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatalf("authztest: %v", err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "." + enc.EncodeToString(sig)
}

// Unsigned is claims under {"alg":"none"} with an empty signature.
func Unsigned(t testing.TB, kid string, claims map[string]any) string {
	t.Helper()
	return Assemble(t, map[string]any{"alg": "none", "typ": "JWT", "kid": kid}, claims, nil)
}

// HS256WithPublicKey is the algorithm-confusion attack: claims signed with
// HS256 using the PEM encoding of an RSA key's public half as the HMAC
// secret, under that key's kid. A validator that lets the token's alg pick
// the verification would accept it.
func HS256WithPublicKey(t testing.TB, key *SigningKey, claims map[string]any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key.Signer.Public())
	if err != nil {
		t.Fatalf("authztest: %v", err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	header := map[string]any{"alg": "HS256", "typ": "JWT", "kid": key.KID}
	unsigned := Assemble(t, header, claims, nil)
	signingInput := strings.TrimSuffix(unsigned, ".")
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signingInput))
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// Tamper flips one bit in the token's signature.
func Tamper(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(sig) == 0 {
		return tok + "A"
	}
	sig[len(sig)/2] ^= 0x01
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// TamperClaims re-encodes the token with changed claims and the original
// signature.
func TamperClaims(t testing.TB, tok string, change func(claims map[string]any)) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("authztest: not a compact JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("authztest: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatalf("authztest: %v", err)
	}
	change(claims)
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatalf("authztest: %v", err)
	}
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(c) + "." + parts[2]
}
