package token_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/token"
)

func TestCacheHit(t *testing.T) {
	f := newFixture(t)
	tok := f.iss.MintValid()
	c1 := mustAllow(t, f.authn, bearer(tok))
	c2 := mustAllow(t, f.authn, request("bearer  "+tok)) // the same token, written differently
	if c1 != c2 {
		t.Error("a cached verification returned another caller")
	}
	if s := f.authn.CacheStats(); s.Hits != 1 || s.Misses != 1 || s.Entries != 1 || s.Capacity != 1000 {
		t.Errorf("stats %+v", s)
	}
	// A final refusal is not a verified caller: it goes to the
	// refused-token cache, and is verified once.
	bad := authztest.Tamper(tok)
	mustDeny(t, f.authn, bearer(bad), "signature")
	mustDeny(t, f.authn, bearer(bad), "signature")
	if s := f.authn.CacheStats(); s.Misses != 2 || s.Entries != 1 {
		t.Errorf("stats %+v", s)
	}
	if s := f.authn.RefusedCacheStats(); s.Hits != 1 || s.Entries != 1 || s.Capacity != 100 {
		t.Errorf("refused-token cache stats %+v", s)
	}
}

// A cached token is never served past its exp: after it, the token is
// verified again (and still passes within the clock skew), and refused
// after exp + skew.
func TestCacheExpiry(t *testing.T) {
	f := newFixture(t)
	c := f.iss.Claims()
	c["exp"] = f.clk.Now().Add(2 * time.Minute).Unix()
	tok := f.iss.Mint(c)
	mustAllow(t, f.authn, bearer(tok))
	mustAllow(t, f.authn, bearer(tok))
	f.clk.Advance(2 * time.Minute)
	mustAllow(t, f.authn, bearer(tok))
	if s := f.authn.CacheStats(); s.Hits != 1 || s.Misses != 2 {
		t.Errorf("stats %+v: want the post-exp request verified again", s)
	}
	if s := f.authn.CacheStats(); s.Entries != 0 {
		t.Errorf("a token valid only by clock skew was cached: %+v", s)
	}
	f.clk.Advance(5 * time.Minute)
	mustDeny(t, f.authn, bearer(tok), "Token is expired")
}

// A change of the issuer's key set re-verifies its cached tokens.
func TestCacheInvalidatedOnKeyChange(t *testing.T) {
	f := newFixture(t)
	k1 := f.iss.Key()
	tok := f.iss.MintValid()
	mustAllow(t, f.authn, bearer(tok))
	mustAllow(t, f.authn, bearer(tok))

	// Rotation adds a key: the set changed, so the cached token is verified
	// again (and passes: its key is still published).
	f.iss.Rotate("RS256")
	f.clk.Advance(minInterval)
	mustAllow(t, f.authn, bearer(f.iss.MintValid()))
	before := f.authn.CacheStats()
	mustAllow(t, f.authn, bearer(tok))
	after := f.authn.CacheStats()
	if after.Misses != before.Misses+1 || after.Hits != before.Hits {
		t.Errorf("after a key change: %+v → %+v, want one more miss", before, after)
	}
	mustAllow(t, f.authn, bearer(tok))
	if s := f.authn.CacheStats(); s.Hits != after.Hits+1 {
		t.Errorf("the re-verified token was not cached again: %+v", s)
	}

	// A refresh that returns the same keys keeps the cache.
	f.clk.Advance(minInterval)
	mustDeny(t, f.authn, bearer(authztest.Sign(t, k1, map[string]any{"kid": "gone"}, f.iss.Claims())), "not among")
	before = f.authn.CacheStats()
	mustAllow(t, f.authn, bearer(tok))
	if s := f.authn.CacheStats(); s.Hits != before.Hits+1 {
		t.Errorf("an unchanged refetch invalidated the cache: %+v → %+v", before, s)
	}

	// Its key removed: the cached token is refused.
	f.iss.RemoveKey(k1.KID)
	f.clk.Advance(minInterval)
	mustDeny(t, f.authn, bearer(authztest.Sign(t, k1, map[string]any{"kid": "gone"}, f.iss.Claims())), "not among")
	mustDeny(t, f.authn, bearer(tok), "is not among the published keys")
}

// Concurrent first uses of one token verify it once.
func TestCacheSingleFlight(t *testing.T) {
	f := newFixture(t)
	// A token whose kid is new makes its verification wait for a refetch,
	// so the concurrent requests really overlap it.
	f.iss.Rotate("ES256")
	f.clk.Advance(minInterval)
	tok := f.iss.MintValid()
	const n = 50
	callers := make([]*authz.Caller, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			callers[i], _, _ = f.authn.Authenticate(t.Context(), bearer(tok), nil)
		})
	}
	close(start)
	wg.Wait()
	for i, c := range callers {
		if c == nil || c != callers[0] {
			t.Fatalf("request %d: caller %p, want %p", i, c, callers[0])
		}
	}
	s := f.authn.CacheStats()
	if s.Misses != 1 || s.Hits+s.Coalesced != n-1 {
		t.Errorf("stats %+v: want 1 verification for %d requests", s, n)
	}
	if got := f.iss.JWKSFetches(); got != 2 {
		t.Errorf("JWKS fetched %d times", got)
	}
}

func TestCacheBounded(t *testing.T) {
	f := newFixture(t, func(id *token.Identity, _ *token.StoreOptions) { id.TokenCache.MaxEntries = 20 })
	for i := range 100 {
		c := f.iss.Claims()
		c["jti"] = strconv.Itoa(i)
		mustAllow(t, f.authn, bearer(f.iss.Mint(c)))
	}
	s := f.authn.CacheStats()
	if s.Entries > 20 || s.Entries < 10 || s.Evictions < 80 || s.Capacity != 20 {
		t.Errorf("stats %+v: want at most 20 entries", s)
	}
}

func TestCacheDisabled(t *testing.T) {
	f := newFixture(t, func(id *token.Identity, _ *token.StoreOptions) { id.TokenCache.MaxEntries = -1 })
	tok := f.iss.MintValid()
	c1 := mustAllow(t, f.authn, bearer(tok))
	c2 := mustAllow(t, f.authn, bearer(tok))
	if c1 == c2 {
		t.Error("a disabled cache served a caller twice")
	}
	if s := f.authn.CacheStats(); s != (token.CacheStats{}) {
		t.Errorf("stats %+v", s)
	}
}
