package token_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/section"
	"github.com/vaultwall/vaultwall/authz/token"
)

// clock is a manual clock shared by the issuer (token timestamps) and the
// key store (expiry, skew, rate limits).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const minInterval = 10 * time.Second

// identity is a validated-looking identity section for issuers, with a
// background refresh slow enough never to run during a test.
func identity(issuers ...token.Issuer) token.Identity {
	return token.Identity{
		Issuers:    issuers,
		ClockSkew:  section.Duration(5 * time.Minute),
		TokenCache: token.TokenCache{MaxEntries: 1000},
		Refresh: token.Refresh{
			Interval:    section.Duration(time.Hour),
			MinInterval: section.Duration(minInterval),
			Timeout:     section.Duration(3 * time.Second),
		},
	}
}

func vault() authz.Vault {
	return authz.Vault{
		Name:      "contoso-vault",
		TenantID:  authztest.DefaultTenantID,
		Location:  "westeurope",
		Challenge: `Bearer authorization="https://login.example.test/` + authztest.DefaultTenantID + `", resource="https://vault.azure.net"`,
	}
}

type fixture struct {
	iss   *authztest.Issuer
	clk   *clock
	store *token.KeyStore
	authn *token.Authenticator
}

type fixtureOpt func(*token.Identity, *token.StoreOptions)

// newFixture starts an issuer, a key store and an authenticator using
// discovery and caFile, and waits for the keys.
func newFixture(t testing.TB, opts ...fixtureOpt) *fixture {
	t.Helper()
	f := &fixture{iss: authztest.NewIssuer(t), clk: newClock()}
	f.iss.Now = f.clk.Now
	id := identity(f.iss.Config())
	so := token.StoreOptions{Now: f.clk.Now}
	for _, o := range opts {
		o(&id, &so)
	}
	f.store = token.NewKeyStore(so)
	t.Cleanup(func() { _ = f.store.Close() })
	f.authn = newAuthn(t, f.store, id)
	waitReady(t, f.authn)
	return f
}

func newAuthn(t testing.TB, store *token.KeyStore, id token.Identity) *token.Authenticator {
	t.Helper()
	a, err := token.New(store, id, vault())
	if err != nil {
		t.Fatalf("token.New: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

func waitReady(t testing.TB, a *token.Authenticator) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.WaitReady(ctx); err != nil {
		t.Fatalf("keys not loaded: %v (status %+v)", err, a.Status())
	}
}

func request(authorization string) *authz.Request {
	return &authz.Request{Method: "GET", Path: "/secrets/s1?api-version=7.5", Headers: map[string]string{"authorization": authorization}}
}

func bearer(tok string) *authz.Request { return request("Bearer " + tok) }

// mustAllow authenticates and fails the test unless a caller comes back.
func mustAllow(t testing.TB, a *token.Authenticator, req *authz.Request) *authz.Caller {
	t.Helper()
	c, d, err := a.Authenticate(t.Context(), req, nil)
	if err != nil || d != nil || c == nil {
		t.Fatalf("want a caller, got caller=%v denial=%+v err=%v", c, d, err)
	}
	return c
}

// mustDeny authenticates and fails the test unless a 401 with the challenge
// and a message containing want comes back.
func mustDeny(t testing.TB, a *token.Authenticator, req *authz.Request, want string) *authz.Denial {
	t.Helper()
	c, d, err := a.Authenticate(t.Context(), req, nil)
	if c != nil || err != nil || d == nil {
		t.Fatalf("want a 401 %q, got caller=%v denial=%+v err=%v", want, c, d, err)
	}
	if d.Status != 401 || d.Code != "Unauthorized" || !d.Challenge || d.Inner != "" {
		t.Errorf("want 401 Unauthorized with challenge, got %+v", d)
	}
	if !strings.Contains(d.Message, want) {
		t.Errorf("message %q does not contain %q", d.Message, want)
	}
	return d
}

// eventually polls cond for up to 10 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
