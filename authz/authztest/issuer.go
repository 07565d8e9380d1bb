// Package authztest is vaultwall's test kit: real components for tests of
// the authz stages and of the whole system.
//
// issuer.go and jwt.go: an OpenID Connect issuer over real HTTPS
// (discovery and JWKS) that rotates keys, goes down and up, and counts
// fetches; tokens signed with RS256, PS256, ES256 and ES384 keys; and the
// bad tokens a validator must refuse.
//
// Imports: config, github.com/lestrrat-go/jwx/v2, the standard
// library (testing among it). Never imported by non-test code.
package authztest

import (
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/vaultwall/vaultwall/authz/token"
)

// Defaults of the claims an Issuer mints.
const (
	DefaultTenantID = "00000000-0000-0000-0000-000000000001"
	DefaultAudience = "https://vault.azure.net"
	DefaultObjectID = "11111111-1111-1111-1111-111111111111"
	DefaultAppID    = "22222222-2222-2222-2222-222222222222"
)

// Failure is how a downed Issuer answers.
type Failure int

const (
	Up          Failure = iota // serve normally
	Fail500                    // answer 500 Internal Server Error
	FailClose                  // close the connection without an answer
	FailHang                   // answer nothing until the client gives up
	FailGarbage                // answer 200 with a body that is not JSON
)

// Issuer is an OIDC issuer served over HTTPS by an httptest TLS server, with
// Entra-like paths: the issuer is https://127.0.0.1:<port>/<tenant>/, its
// discovery document is <issuer>.well-known/openid-configuration and its
// keys are at <issuer>discovery/keys. Safe for concurrent use.
type Issuer struct {
	t      testing.TB
	srv    *httptest.Server
	tenant string
	iss    string

	// Now stamps the iat, nbf and exp of Claims; set it to a test's fake
	// clock. Defaults to time.Now.
	Now func() time.Time

	mu        sync.Mutex
	keys      []*SigningKey // published, in order
	current   *SigningKey   // signs Mint
	failure   Failure
	docIssuer string // the issuer the discovery document names
	hang      chan struct{}
	caFile    string

	jwksFetches      atomic.Int64
	discoveryFetches atomic.Int64
}

// IssuerOption configures NewIssuer.
type IssuerOption func(*issuerOptions)

type issuerOptions struct {
	tenant string
	alg    string
}

// WithTenant sets the tenant in the issuer's URL and in minted tid claims
// (default DefaultTenantID).
func WithTenant(tid string) IssuerOption { return func(o *issuerOptions) { o.tenant = tid } }

// WithKeyAlg sets the algorithm of the first signing key (default RS256).
func WithKeyAlg(alg string) IssuerOption { return func(o *issuerOptions) { o.alg = alg } }

// NewIssuer starts an issuer with one signing key. It stops when the test
// ends.
func NewIssuer(t testing.TB, opts ...IssuerOption) *Issuer {
	t.Helper()
	o := issuerOptions{tenant: DefaultTenantID, alg: "RS256"}
	for _, f := range opts {
		f(&o)
	}
	is := &Issuer{t: t, tenant: o.tenant, Now: time.Now, hang: make(chan struct{})}
	is.srv = httptest.NewUnstartedServer(http.HandlerFunc(is.serve))
	// Handshakes refused by clients that do not trust the issuer are part
	// of the tests, not noise for stderr.
	is.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	is.srv.StartTLS()
	t.Cleanup(is.srv.Close)
	t.Cleanup(is.releaseHung) // runs first: hung handlers must return before Close waits for them
	is.iss = is.srv.URL + "/" + o.tenant + "/"
	is.docIssuer = is.iss
	is.Rotate(o.alg)
	return is
}

// Issuer is the iss value: https://127.0.0.1:<port>/<tenant>/.
func (is *Issuer) Issuer() string { return is.iss }

// Tenant is the tenant in the issuer's URL and in minted tokens.
func (is *Issuer) Tenant() string { return is.tenant }

// DiscoveryURL is the OpenID configuration document's URL.
func (is *Issuer) DiscoveryURL() string { return is.iss + ".well-known/openid-configuration" }

// JWKSURL is the key set's URL.
func (is *Issuer) JWKSURL() string { return is.iss + "discovery/keys" }

// HTTPClient trusts the issuer's TLS certificate.
func (is *Issuer) HTTPClient() *http.Client { return is.srv.Client() }

// CAFile writes the certificate the issuer's TLS chains to as a PEM file
// in a temporary directory (once) and returns its path, for caFile.
func (is *Issuer) CAFile() string {
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.caFile == "" {
		p := filepath.Join(is.t.TempDir(), "issuer-ca.pem")
		b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.srv.Certificate().Raw})
		if err := os.WriteFile(p, b, 0o600); err != nil {
			is.t.Fatalf("authztest: writing the issuer CA: %v", err)
		}
		is.caFile = p
	}
	return is.caFile
}

// Config is an identity.issuers entry for this issuer using discovery and
// trusting its CA through caFile, with the default audience.
func (is *Issuer) Config() token.Issuer {
	return token.Issuer{
		Issuer:    is.iss,
		Discovery: true,
		Audiences: []string{DefaultAudience},
		CAFile:    is.CAFile(),
	}
}

// AddKey publishes a new signing key without making it Mint's key.
func (is *Issuer) AddKey(alg string) *SigningKey {
	is.t.Helper()
	k := NewSigningKey(is.t, alg)
	is.mu.Lock()
	is.keys = append(is.keys, k)
	is.mu.Unlock()
	return k
}

// Publish publishes an existing key (one made with NewSigningKey or
// WrapSigningKey: a token signed before its publication, a kid reused for
// another key) without making it Mint's key.
func (is *Issuer) Publish(k *SigningKey) {
	is.mu.Lock()
	is.keys = append(is.keys, k)
	is.mu.Unlock()
}

// Rotate publishes a new signing key and makes it Mint's key. The previous
// keys stay published until RemoveKey.
func (is *Issuer) Rotate(alg string) *SigningKey {
	is.t.Helper()
	k := is.AddKey(alg)
	is.mu.Lock()
	is.current = k
	is.mu.Unlock()
	return k
}

// RemoveKey stops publishing a key.
func (is *Issuer) RemoveKey(kid string) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = slices.DeleteFunc(is.keys, func(k *SigningKey) bool { return k.KID == kid })
}

// Key is the key Mint signs with.
func (is *Issuer) Key() *SigningKey {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.current
}

// SetFailure makes the issuer fail every request (discovery and JWKS) in
// the given way, or serve again with Up.
func (is *Issuer) SetFailure(f Failure) {
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.failure == FailHang && f != FailHang {
		close(is.hang)
		is.hang = make(chan struct{})
	}
	is.failure = f
}

// SetDiscoveryIssuer makes the discovery document name another issuer (a
// mix-up a validator must refuse).
func (is *Issuer) SetDiscoveryIssuer(iss string) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.docIssuer = iss
}

// JWKSFetches counts the requests the JWKS endpoint received, failed ones
// included.
func (is *Issuer) JWKSFetches() int64 { return is.jwksFetches.Load() }

// DiscoveryFetches counts the requests the discovery endpoint received.
func (is *Issuer) DiscoveryFetches() int64 { return is.discoveryFetches.Load() }

// JWKS is the published key set as JSON.
func (is *Issuer) JWKS() []byte {
	is.t.Helper()
	is.mu.Lock()
	keys := slices.Clone(is.keys)
	is.mu.Unlock()
	set := jwk.NewSet()
	for _, k := range keys {
		if err := set.AddKey(k.Public); err != nil {
			is.t.Fatalf("authztest: building the JWKS: %v", err)
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		is.t.Fatalf("authztest: encoding the JWKS: %v", err)
	}
	return b
}

// WriteJWKSFile writes the published key set to path (a new temporary file
// when path is "") and returns the path, for jwksFile.
func (is *Issuer) WriteJWKSFile(path string) string {
	is.t.Helper()
	if path == "" {
		path = filepath.Join(is.t.TempDir(), "jwks.json")
	}
	if err := os.WriteFile(path, is.JWKS(), 0o600); err != nil {
		is.t.Fatalf("authztest: writing the JWKS file: %v", err)
	}
	return path
}

// Claims returns the claims of a valid app-only Entra v1 access token for
// the default audience; change them to build the token a test needs.
func (is *Issuer) Claims() map[string]any {
	now := is.Now()
	return map[string]any{
		"iss":      is.iss,
		"aud":      DefaultAudience,
		"tid":      is.tenant,
		"oid":      DefaultObjectID,
		"sub":      DefaultObjectID,
		"appid":    DefaultAppID,
		"appidacr": "2",
		"idtyp":    "app",
		"ver":      "1.0",
		"iat":      now.Unix(),
		"nbf":      now.Add(-time.Minute).Unix(),
		"exp":      now.Add(time.Hour).Unix(),
	}
}

// Mint signs claims with the issuer's current key.
func (is *Issuer) Mint(claims map[string]any) string {
	is.t.Helper()
	return Sign(is.t, is.Key(), nil, claims)
}

// MintValid mints Claims() unchanged.
func (is *Issuer) MintValid() string {
	is.t.Helper()
	return is.Mint(is.Claims())
}

func (is *Issuer) releaseHung() {
	is.mu.Lock()
	defer is.mu.Unlock()
	close(is.hang)
	is.hang = make(chan struct{})
	is.failure = Up
}

func (is *Issuer) serve(w http.ResponseWriter, r *http.Request) {
	prefix := "/" + is.tenant + "/"
	path, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	switch path {
	case ".well-known/openid-configuration":
		is.discoveryFetches.Add(1)
	case "discovery/keys":
		is.jwksFetches.Add(1)
	default:
		http.NotFound(w, r)
		return
	}
	is.mu.Lock()
	failure, hang, docIssuer := is.failure, is.hang, is.docIssuer
	is.mu.Unlock()
	switch failure {
	case Fail500:
		http.Error(w, "issuer is down", http.StatusInternalServerError)
		return
	case FailClose:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case FailHang:
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		return
	case FailGarbage:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{\"keys\": [{\"kty\": \x00 this is not a key set"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if path == "discovery/keys" {
		_, _ = w.Write(is.JWKS())
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                docIssuer,
		"jwks_uri":                              is.JWKSURL(),
		"authorization_endpoint":                is.iss + "oauth2/authorize",
		"token_endpoint":                        is.iss + "oauth2/token",
		"response_types_supported":              []string{"code", "id_token", "token id_token", "token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
}
