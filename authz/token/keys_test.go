package token_test

import (
	"context"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/section"
	"github.com/vaultwall/vaultwall/authz/token"
)

func TestDiscovery(t *testing.T) {
	f := newFixture(t)
	c := mustAllow(t, f.authn, bearer(f.iss.MintValid()))
	if c.TenantID != authztest.DefaultTenantID || c.ObjectID != authztest.DefaultObjectID {
		t.Errorf("caller %+v", c)
	}
	if got := f.iss.DiscoveryFetches(); got != 1 {
		t.Errorf("discovery fetched %d times, want 1", got)
	}
	if got := f.iss.JWKSFetches(); got != 1 {
		t.Errorf("JWKS fetched %d times, want 1", got)
	}
	st := f.authn.Status()
	if len(st) != 1 || !st[0].KeysLoaded || st[0].KeyCount != 1 || st[0].Source != f.iss.JWKSURL() ||
		st[0].LastError != "" || st[0].LastRefresh.IsZero() {
		t.Errorf("status %+v", st)
	}
	if err := f.authn.Ready(); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

func TestJWKSURI(t *testing.T) {
	iss := authztest.NewIssuer(t, authztest.WithKeyAlg("ES256"))
	ic := iss.Config()
	ic.Discovery, ic.JWKSURI = false, iss.JWKSURL()
	store := token.NewKeyStore(token.StoreOptions{})
	t.Cleanup(func() { _ = store.Close() })
	a := newAuthn(t, store, identity(ic))
	// No WaitReady: the first request waits for the first load.
	mustAllow(t, a, bearer(iss.MintValid()))
	if got := iss.DiscoveryFetches(); got != 0 {
		t.Errorf("discovery fetched %d times with an explicit jwksUri", got)
	}
	if got := iss.JWKSFetches(); got != 1 {
		t.Errorf("JWKS fetched %d times, want 1", got)
	}
}

func TestJWKSFile(t *testing.T) {
	iss := authztest.NewIssuer(t, authztest.WithKeyAlg("PS256"))
	path := iss.WriteJWKSFile("")
	ic := token.Issuer{Issuer: iss.Issuer(), JWKSFile: path, Audiences: []string{authztest.DefaultAudience}}
	store := token.NewKeyStore(token.StoreOptions{})
	t.Cleanup(func() { _ = store.Close() })
	a := newAuthn(t, store, identity(ic))
	if err := a.Ready(); err != nil {
		t.Fatalf("a jwksFile loads in New: %v", err)
	}
	old := iss.MintValid()
	mustAllow(t, a, bearer(old))

	// A reload re-reads the file: the new key works, and the old key, once
	// removed from the file, no longer does.
	oldKID := iss.Key().KID
	iss.Rotate("ES384")
	iss.RemoveKey(oldKID)
	iss.WriteJWKSFile(path)
	b := newAuthn(t, store, identity(ic))
	a.Close()
	mustAllow(t, b, bearer(iss.MintValid()))
	mustDeny(t, b, bearer(old), "is not among the published keys")
	if got := iss.JWKSFetches() + iss.DiscoveryFetches(); got != 0 {
		t.Errorf("a jwksFile issuer made %d HTTP requests", got)
	}

	// A file that is not a key set fails the configuration.
	if err := os.WriteFile(path, []byte(`{"keys": "nope"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := token.New(store, identity(ic), vault()); err == nil || !strings.Contains(err.Error(), "jwksFile") ||
		!strings.Contains(err.Error(), "is not a JSON Web Key Set") {
		t.Errorf("New with a broken jwksFile: %v, want a jwksFile error saying it is not a key set", err)
	}
	// The running authenticator keeps its keys.
	mustAllow(t, b, bearer(iss.MintValid()))
	// A missing file is reported as such (the file's own error).
	gone := ic
	gone.JWKSFile = filepath.Join(t.TempDir(), "missing.json")
	if _, err := token.New(store, identity(gone), vault()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("New with a missing jwksFile: %v, want an error wrapping fs.ErrNotExist", err)
	}
}

// A configuration whose issuer entry does not change reuses the running
// source: no refetch on reload.
func TestReloadReusesKeys(t *testing.T) {
	f := newFixture(t)
	tok := f.iss.MintValid()
	mustAllow(t, f.authn, bearer(tok))
	id := identity(f.iss.Config())
	id.Issuers[0].Audiences = []string{"https://vault.example.test", authztest.DefaultAudience}
	b := newAuthn(t, f.store, id)
	f.authn.Close()
	mustAllow(t, b, bearer(tok))
	if got := f.iss.JWKSFetches(); got != 1 {
		t.Errorf("JWKS fetched %d times across a reload, want 1", got)
	}
	if n := len(f.store.Status()); n != 1 {
		t.Errorf("store has %d sources, want 1", n)
	}
	// A changed source setting starts a new source; closing the last user
	// of the old one stops it.
	id.Refresh.Timeout = section.Duration(4 * time.Second)
	c := newAuthn(t, f.store, id)
	waitReady(t, c)
	if got := f.iss.JWKSFetches(); got != 2 {
		t.Errorf("JWKS fetched %d times after a refresh change, want 2", got)
	}
	b.Close()
	if n := len(f.store.Status()); n != 1 {
		t.Errorf("store has %d sources after closing the old authenticator, want 1", n)
	}
	c.Close()
	if n := len(f.store.Status()); n != 0 {
		t.Errorf("store has %d sources after closing every authenticator, want 0", n)
	}
}

// Tests and embedders can inject the trust instead of a caFile.
func TestInjectedTrust(t *testing.T) {
	iss := authztest.NewIssuer(t)
	ic := iss.Config()
	ic.CAFile = ""
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(iss.CAFile())
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		t.Fatal("reading the issuer CA", err)
	}
	for name, opts := range map[string]token.StoreOptions{
		"HTTPClient": {HTTPClient: iss.HTTPClient()},
		"RootCAs":    {RootCAs: pool},
	} {
		t.Run(name, func(t *testing.T) {
			store := token.NewKeyStore(opts)
			t.Cleanup(func() { _ = store.Close() })
			mustAllow(t, newAuthn(t, store, identity(ic)), bearer(iss.MintValid()))
		})
	}
	// Without either, the system roots do not know the test CA.
	store := token.NewKeyStore(token.StoreOptions{})
	t.Cleanup(func() { _ = store.Close() })
	if _, _, err := newAuthn(t, store, identity(ic)).Authenticate(t.Context(), bearer(iss.MintValid()), nil); !errors.Is(err, token.ErrKeysUnavailable) {
		t.Errorf("an untrusted issuer: %v", err)
	}
}

func TestDiscoveryNamesAnotherIssuer(t *testing.T) {
	iss := authztest.NewIssuer(t)
	iss.SetDiscoveryIssuer("https://login.evil.test/" + authztest.DefaultTenantID + "/")
	store := token.NewKeyStore(token.StoreOptions{})
	t.Cleanup(func() { _ = store.Close() })
	a := newAuthn(t, store, identity(iss.Config()))
	_, d, err := a.Authenticate(t.Context(), bearer(iss.MintValid()), nil)
	if d != nil || !errors.Is(err, token.ErrKeysUnavailable) {
		t.Fatalf("want ErrKeysUnavailable, got denial=%+v err=%v", d, err)
	}
	if !strings.Contains(err.Error(), "names issuer") {
		t.Errorf("error %q does not explain the mix-up", err)
	}
	if a.Ready() == nil {
		t.Error("Ready with no keys")
	}
	if iss.JWKSFetches() != 0 {
		t.Error("the JWKS of a mismatched discovery document was fetched")
	}
}

func TestCAFileNotTrusted(t *testing.T) {
	iss := authztest.NewIssuer(t)
	ic := iss.Config()
	ic.CAFile = otherCA(t)
	store := token.NewKeyStore(token.StoreOptions{})
	t.Cleanup(func() { _ = store.Close() })
	a := newAuthn(t, store, identity(ic))
	_, _, err := a.Authenticate(t.Context(), bearer(iss.MintValid()), nil)
	if !errors.Is(err, token.ErrKeysUnavailable) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("want a TLS trust failure, got %v", err)
	}

	// A caFile that cannot be read is reported as such (the file's own
	// error), not as a file without certificates.
	ic.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := token.New(store, identity(ic), vault()); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "caFile") {
		t.Errorf("New with a missing caFile: %v, want a caFile error wrapping fs.ErrNotExist", err)
	}
}

// TestUnusableKeySetKeepsLastGood: a refetched key set with no usable key
// (here: none at all) is an error, not a new set: the last good keys stay
// in force and the status says why.
func TestUnusableKeySetKeepsLastGood(t *testing.T) {
	f := newFixture(t)
	k1 := f.iss.Key()
	mustAllow(t, f.authn, bearer(f.iss.MintValid()))

	f.iss.RemoveKey(k1.KID) // the issuer now publishes {"keys": []}
	f.clk.Advance(minInterval)
	unknown := authztest.Sign(t, authztest.NewSigningKey(t, "ES256"), nil, f.iss.Claims())
	mustDeny(t, f.authn, bearer(unknown), "is not among the published keys") // the refetch
	if got := f.iss.JWKSFetches(); got != 2 {
		t.Fatalf("JWKS fetched %d times, want 2 (initial + the unknown kid's refetch)", got)
	}
	// A token of the last good key, never seen before (so not cached).
	mustAllow(t, f.authn, bearer(authztest.Sign(t, k1, nil, f.iss.Claims())))
	eventually(t, "the refused key set in the status", func() bool { return f.authn.Status()[0].LastError != "" })
	if st := f.authn.Status()[0]; st.KeyCount != 1 || !strings.Contains(st.LastError, "no usable signing key") {
		t.Errorf("status %+v, want the last good key and a no-usable-key error", st)
	}
}

// TestGarbageKeySetReported: a JWKS response that is not a key set is an
// error naming that, the last good keys stay in force.
func TestGarbageKeySetReported(t *testing.T) {
	f := newFixture(t)
	good := f.iss.MintValid()
	mustAllow(t, f.authn, bearer(good))

	f.iss.SetFailure(authztest.FailGarbage)
	f.clk.Advance(minInterval)
	unknown := authztest.Sign(t, authztest.NewSigningKey(t, "ES256"), nil, f.iss.Claims())
	mustDeny(t, f.authn, bearer(unknown), "is not among the published keys") // the refetch
	eventually(t, "the failed refetch in the status", func() bool { return f.authn.Status()[0].LastError != "" })
	if st := f.authn.Status()[0]; st.KeyCount != 1 || !strings.Contains(st.LastError, "is not a JSON Web Key Set") {
		t.Errorf("status %+v, want the last good key and a not-a-key-set error", st)
	}
	mustAllow(t, f.authn, bearer(authztest.Sign(t, f.iss.Key(), nil, f.iss.Claims())))
}

// otherCA writes a self-signed CA that signed nothing the issuer serves.
func otherCA(t *testing.T) string {
	return authztest.NewTestCAWith(t, authztest.TestCAOptions{CommonName: "unrelated CA"}).WriteBundle()
}

func TestRotation(t *testing.T) {
	f := newFixture(t)
	k1 := f.iss.Key()
	t1 := f.iss.MintValid()
	mustAllow(t, f.authn, bearer(t1))

	// A new key: its first token triggers one refetch, once minInterval
	// has passed since the last fetch.
	f.iss.Rotate("ES256")
	t2 := f.iss.MintValid()
	mustDeny(t, f.authn, bearer(t2), "is not among the published keys") // rate-limited: no fetch yet
	if got := f.iss.JWKSFetches(); got != 1 {
		t.Fatalf("JWKS fetched %d times within minInterval, want 1", got)
	}
	f.clk.Advance(minInterval)
	mustAllow(t, f.authn, bearer(t2))
	if got := f.iss.JWKSFetches(); got != 2 {
		t.Errorf("JWKS fetched %d times, want 2", got)
	}
	// The old key is still published: its tokens still pass.
	mustAllow(t, f.authn, bearer(t1))
	mustAllow(t, f.authn, bearer(authztest.Sign(t, k1, nil, f.iss.Claims())))

	// Removed and refetched: the old key's tokens no longer pass, cached
	// or not.
	f.iss.RemoveKey(k1.KID)
	f.clk.Advance(minInterval)
	f.iss.Rotate("RS256")
	mustAllow(t, f.authn, bearer(f.iss.MintValid()))
	if got := f.iss.JWKSFetches(); got != 3 {
		t.Errorf("JWKS fetched %d times, want 3", got)
	}
	mustDeny(t, f.authn, bearer(t1), "is not among the published keys")
	if got := f.iss.JWKSFetches(); got != 3 {
		t.Errorf("a rate-limited unknown kid fetched: %d, want 3", got)
	}
	if st := f.authn.Status()[0]; st.KeyCount != 2 {
		t.Errorf("status %+v, want 2 keys", st)
	}
}

// A burst of requests naming an unknown kid makes exactly one fetch, which
// they all wait for.
func TestUnknownKIDBurst(t *testing.T) {
	f := newFixture(t)
	f.iss.Rotate("RS256")
	f.clk.Advance(minInterval)
	// Distinct tokens, so that the token cache's own single-flight does
	// not hide the key refetch's.
	toks := make([]string, 100)
	for i := range toks {
		c := f.iss.Claims()
		c["jti"] = strconv.Itoa(i)
		toks[i] = f.iss.Mint(c)
	}
	stranger := authztest.NewSigningKey(t, "ES256") // never published
	var allowed, denied atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range toks {
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			if c, _, _ := f.authn.Authenticate(t.Context(), bearer(toks[i]), nil); c != nil {
				allowed.Add(1)
			}
		}()
		go func() {
			defer wg.Done()
			<-start
			tok := authztest.Sign(t, stranger, nil, f.iss.Claims())
			if _, d, _ := f.authn.Authenticate(t.Context(), bearer(tok), nil); d != nil {
				denied.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if allowed.Load() != 100 || denied.Load() != 100 {
		t.Errorf("allowed %d of 100 new-key tokens, denied %d of 100 stranger tokens", allowed.Load(), denied.Load())
	}
	if got := f.iss.JWKSFetches(); got != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (initial + one refetch)", got)
	}
}

func TestIssuerDown(t *testing.T) {
	for _, failure := range []authztest.Failure{authztest.Fail500, authztest.FailClose, authztest.FailHang} {
		t.Run(map[authztest.Failure]string{authztest.Fail500: "500", authztest.FailClose: "close", authztest.FailHang: "hang"}[failure], func(t *testing.T) {
			f := newFixture(t, func(id *token.Identity, _ *token.StoreOptions) {
				id.Refresh.Timeout = section.Duration(time.Second)
			})
			k1 := f.iss.Key()
			good := f.iss.MintValid()
			mustAllow(t, f.authn, bearer(good))

			f.iss.SetFailure(failure)
			f.iss.Rotate("ES256") // published while down: nobody can learn it
			f.clk.Advance(minInterval)
			fresh := f.iss.Mint(f.iss.Claims())
			start := time.Now()
			mustDeny(t, f.authn, bearer(fresh), "is not among the published keys")
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("an unknown kid waited %s for a down issuer (timeout 1s)", took)
			}
			// The last good keys keep working, for new tokens too.
			mustAllow(t, f.authn, bearer(good))
			mustAllow(t, f.authn, bearer(authztest.Sign(t, k1, nil, f.iss.Claims())))

			eventually(t, "the failed refetch in the status", func() bool { return f.authn.Status()[0].LastError != "" })
			st := f.authn.Status()[0]
			if !st.KeysLoaded || st.KeyCount != 1 || f.authn.Ready() != nil {
				t.Errorf("a down issuer with good keys: status %+v, ready %v", st, f.authn.Ready())
			}

			// Back up: the next unknown kid after minInterval learns the key.
			f.iss.SetFailure(authztest.Up)
			f.clk.Advance(minInterval)
			mustAllow(t, f.authn, bearer(fresh))
			if st := f.authn.Status()[0]; st.LastError != "" || st.KeyCount != 2 {
				t.Errorf("status after recovery %+v", st)
			}
		})
	}
}

func TestIssuerDownAtStart(t *testing.T) {
	iss := authztest.NewIssuer(t)
	iss.SetFailure(authztest.Fail500)
	var events sync.Map
	id := identity(iss.Config())
	id.Refresh.MinInterval = section.Duration(50 * time.Millisecond) // the retry backoff's first step
	id.Refresh.Timeout = section.Duration(time.Second)
	store := token.NewKeyStore(token.StoreOptions{OnRefresh: func(ev token.RefreshEvent) {
		events.Store(ev.Trigger.String()+"/"+map[bool]string{true: "ok", false: "fail"}[ev.Err == nil], true)
	}})
	t.Cleanup(func() { _ = store.Close() })
	a := newAuthn(t, store, id)

	// Never loaded: could not decide, so an error (the pipeline's 500) — not
	// a 401 the client would take as "bad token", and never an allow.
	c, d, err := a.Authenticate(t.Context(), bearer(iss.MintValid()), nil)
	if c != nil || d != nil || !errors.Is(err, token.ErrKeysUnavailable) {
		t.Fatalf("want ErrKeysUnavailable, got caller=%v denial=%+v err=%v", c, d, err)
	}
	if !errors.Is(a.Ready(), token.ErrKeysUnavailable) {
		t.Errorf("Ready = %v", a.Ready())
	}
	// Requests without a token still get their 401.
	mustDeny(t, a, request(""), "AKV10000")

	// The background retry loads the keys once the issuer is back.
	iss.SetFailure(authztest.Up)
	waitReady(t, a)
	mustAllow(t, a, bearer(iss.MintValid()))
	// The first fetch is the source's own, or the request's if it came
	// first (the other then joins it).
	_, initial := events.Load("initial/fail")
	_, byRequest := events.Load("no_keys/fail")
	if _, retried := events.Load("retry/ok"); !retried || !(initial || byRequest) {
		t.Errorf("refresh events: initial failure %v, request's failure %v, retry success %v", initial, byRequest, retried)
	}
}

func TestBackgroundRefresh(t *testing.T) {
	iss := authztest.NewIssuer(t)
	id := identity(iss.Config())
	id.Refresh.Interval = section.Duration(100 * time.Millisecond)
	var changed atomic.Int32
	store := token.NewKeyStore(token.StoreOptions{OnRefresh: func(ev token.RefreshEvent) {
		if ev.Changed && ev.Err == nil {
			changed.Add(1)
		}
	}})
	t.Cleanup(func() { _ = store.Close() })
	a := newAuthn(t, store, id)
	waitReady(t, a)
	old := iss.Key().KID
	iss.Rotate("ES384")
	iss.RemoveKey(old)
	eventually(t, "a background refresh to pick up the rotation", func() bool { return changed.Load() >= 2 })
	// The background fetches came less than minInterval ago, so this request
	// cannot refetch: its allow proves the background refresh learned the key.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if c, d, err := a.Authenticate(ctx, bearer(iss.MintValid()), nil); c == nil {
		t.Fatalf("after a background refresh: denial=%+v err=%v", d, err)
	}

	iss.SetFailure(authztest.Fail500)
	eventually(t, "a failed background refresh in the status", func() bool { return a.Status()[0].LastError != "" })
	// The status says what failed: the issuer's answer, not a parse of
	// nothing.
	if e := a.Status()[0].LastError; !strings.Contains(e, "500 Internal Server Error") {
		t.Errorf("LastError %q does not carry the issuer's 500", e)
	}
	if c, _, _ := a.Authenticate(t.Context(), bearer(iss.MintValid()), nil); c == nil {
		t.Error("the last good keys stopped working during an outage")
	}

	// Close stops the refresh loop and waits for it.
	_ = store.Close()
	n := iss.JWKSFetches()
	time.Sleep(300 * time.Millisecond)
	if iss.JWKSFetches() != n {
		t.Error("the store kept fetching after Close")
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	store := token.NewKeyStore(token.StoreOptions{})
	t.Cleanup(func() { _ = store.Close() })
	good := token.Issuer{Issuer: "https://sts.example.test/t/", JWKSURI: "https://sts.example.test/keys"}
	cases := map[string]struct {
		id    token.Identity
		vault authz.Vault
	}{
		"HS256":       {id: identity(withAlgs(good, "HS256")), vault: vault()},
		"none":        {id: identity(withAlgs(good, "none")), vault: vault()},
		"no source":   {id: identity(token.Issuer{Issuer: good.Issuer}), vault: vault()},
		"duplicate":   {id: identity(good, good), vault: vault()},
		"no tenant":   {id: identity(good), vault: authz.Vault{Name: "v"}},
		"missing iss": {id: identity(token.Issuer{JWKSURI: good.JWKSURI}), vault: vault()},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a, err := token.New(store, tc.id, tc.vault)
			if err == nil {
				a.Close()
				t.Fatal("accepted")
			}
		})
	}
	// A failed New releases what it acquired.
	if n := len(store.Status()); n != 0 {
		t.Errorf("%d sources left behind by failed New calls", n)
	}
}

func withAlgs(ic token.Issuer, algs ...string) token.Issuer {
	ic.Algorithms = algs
	return ic
}

// TestKIDPublishedThrice: a kid published more than once names no key,
// however many times it appears (the third copy is not taken either).
func TestKIDPublishedThrice(t *testing.T) {
	iss := authztest.NewIssuer(t)
	kid := iss.Key().KID
	second := authztest.WrapSigningKey(t, kid, "RS256", authztest.NewSigningKey(t, "RS256").Signer)
	third := authztest.WrapSigningKey(t, kid, "RS256", authztest.NewSigningKey(t, "RS256").Signer)
	iss.Publish(second)
	iss.Publish(third)
	other := iss.AddKey("ES256") // keeps the set usable
	ic := token.Issuer{Issuer: iss.Issuer(), JWKSFile: iss.WriteJWKSFile(""), Audiences: []string{authztest.DefaultAudience}}
	store := token.NewKeyStore(token.StoreOptions{})
	t.Cleanup(func() { _ = store.Close() })
	a := newAuthn(t, store, identity(ic))
	for name, k := range map[string]*authztest.SigningKey{"first": iss.Key(), "second": second, "third": third} {
		c, d, err := a.Authenticate(t.Context(), bearer(authztest.Sign(t, k, nil, iss.Claims())), nil)
		if c != nil || err != nil || d == nil || !strings.Contains(d.Message, "is not among the published keys") {
			t.Errorf("token of the %s copy of kid %s: caller %v, denial %+v, err %v; want refused as an unknown kid", name, kid, c, d, err)
		}
	}
	mustAllow(t, a, bearer(authztest.Sign(t, other, nil, iss.Claims())))
	if st := a.Status()[0]; st.KeyCount != 1 {
		t.Errorf("status %+v, want only the key with a kid of its own", st)
	}
}
