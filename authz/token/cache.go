package token

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/cache"
)

// outcome is one verification's result.
type outcome struct {
	caller *authz.Caller
	deny   *authz.Denial
	err    error
	// For a caller: the source and key generation it was verified against,
	// and when it stops being valid (the token's exp). For a final refusal,
	// the source and generation it was reached under (none when the
	// token's bytes and the configuration alone decided).
	src     *source
	gen     uint64
	expires time.Time
	// final marks a refusal the same token can never escape while the
	// issuer's keys stay the same: a bad signature under a known key, an
	// expired token, a wrong audience or tenant, a malformed one… Never an
	// unknown kid (a refresh may bring the key) nor a token not yet valid
	// (time will make it so). expired is the exp of an expired token.
	final   bool
	expired time.Time
}

// tokenCache is the verified-token cache and the refused-token cache: a
// cache.Map from a token to its outcome (immutable once made), placed by a keyed 64-bit hash of
// the token and served only to the same token, compared in full. Both
// caches share one seed, so that one hash places a token in both. The
// verified-token cache keeps callers until their token's exp; the
// refused-token cache keeps final refusals (outcome.final) with no expiry
// of their own: the bound and a key change remove them. Either drops an
// entry reached under an issuer's keys once that issuer's key set changes
// (underSameKeys).
type tokenCache = cache.Map[string, *outcome]

// newTokenCaches returns a verified-token cache of maxEntries and its
// refused-token cache, a tenth as large, placing tokens alike.
func newTokenCaches(maxEntries int) (verified, refused *tokenCache) {
	verified = newTokenCache(maxEntries, maphash.Seed{})
	return verified, newTokenCache(max(1, maxEntries/refusedShare), verified.Seed())
}

func newTokenCache(maxEntries int, seed maphash.Seed) *tokenCache {
	return cache.New[string](cache.Config[*outcome]{Capacity: maxEntries, Seed: seed, Valid: underSameKeys})
}

// underSameKeys reports whether a kept outcome may still be served: under
// the same issuer keys it was reached under (a key set change re-verifies
// every cached token of that issuer), or under none.
func underSameKeys(o *outcome) bool {
	if o.src == nil {
		return true
	}
	ks := o.src.current()
	return ks != nil && ks.gen == o.gen
}

// CacheStats are the verified-token cache's counters, for metrics.
type CacheStats struct {
	Hits      uint64 // served from the cache
	Misses    uint64 // verified (a cache miss that did the work)
	Coalesced uint64 // waited for a concurrent verification of the same token
	Evictions uint64 // entries dropped to make room or found stale
	Entries   int    // entries held now
	Capacity  int    // maxEntries; 0 when the cache is disabled
}

// cachedCaller returns the cached caller for a token, or nil.
func cachedCaller(c *tokenCache, h cache.Hash, tok string, now int64) *authz.Caller {
	if o, ok := c.Get(h, tok, now); ok {
		return o.caller
	}
	return nil
}

// refusal returns the refused-token cache's refusal of a token, or nil:
// a copy, and for an expired token one that states the current time.
func refusal(c *tokenCache, h cache.Hash, tok string, now time.Time, skew time.Duration) *authz.Denial {
	o, ok := c.Get(h, tok, now.UnixNano())
	if !ok || o.deny == nil {
		return nil
	}
	if !o.expired.IsZero() {
		return denyExpired(o.expired, now, skew)
	}
	d := *o.deny
	return &d
}

// putRefusal keeps a final refusal (outcome.final): one that no later
// moment can turn into an allow while the issuer's keys stay the same.
// It has no expiry of its own: the bound and a key change remove it. The
// kept refusal is never handed out: a hit gets a copy.
func putRefusal(c *tokenCache, h cache.Hash, tok string, o *outcome, now int64) {
	d := *o.deny
	c.Put(h, tok, &outcome{deny: &d, expired: o.expired, src: o.src, gen: o.gen}, math.MaxInt64, now)
}

// keepUntil is when a verification's outcome stops being cacheable (unix
// nanoseconds): a caller's token exp, when still ahead of now; 0 for
// anything else (a refusal, an error, a token valid only thanks to clock
// skew), which is not kept.
func (o *outcome) keepUntil(now time.Time) int64 {
	if o.caller == nil || !o.expires.After(now) {
		return 0
	}
	return o.expires.UnixNano()
}

// verifyOnce verifies a token that missed the cache, at most once at a
// time per token: concurrent callers wait for the first one's outcome
// (bounded by their own ctx) — a caller, a refusal or an error alike. When
// the verifying request gives up (its ctx ends), a waiter whose ctx is
// still live verifies in its place. A verification in flight for another
// token that collides on the hash is never joined: the caller verifies on
// its own. A caller is kept until its token's exp.
func verifyOnce(ctx context.Context, c *tokenCache, h cache.Hash, tok string, now func() time.Time, verify func() outcome) outcome {
	for {
		o, shared, err := c.Do(ctx, h, tok, now().UnixNano(), func() (*outcome, int64, error) {
			o := safeVerify(verify)
			return &o, o.keepUntil(now()), nil
		})
		switch {
		case err != nil: // ctx ended while waiting
			return outcome{err: err}
		case !shared:
			return *o
		case isCtxErr(o.err) && ctx.Err() == nil: // the verifying request gave up
			continue
		}
		return o.shared()
	}
}

// shared gives a waiter its own copy of a denial, so no two requests hold
// the same mutable value.
func (o outcome) shared() outcome {
	if o.deny != nil {
		d := *o.deny
		o.deny = &d
	}
	return o
}

// safeVerify turns a panic into an error: a verification that panicked must
// still release its waiters, and must not allow.
func safeVerify(verify func() outcome) (o outcome) {
	defer func() {
		if r := recover(); r != nil {
			o = outcome{err: fmt.Errorf("token verification panicked: %v", r)}
		}
	}()
	return verify()
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
