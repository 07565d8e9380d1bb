package token

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaultwall/vaultwall/authz"
)

// cacheKey is a keyed 64-bit hash of a token (hash/maphash, seeded per
// cache). It only places the token: every entry and every flight holds its
// token, compared in full before it is served or joined, so two tokens that
// collide share a slot, never a caller. maphash costs a few nanoseconds
// where SHA-256 of a 1–9 KB token cost 0.65–5 µs.
type cacheKey uint64

func (c *tokenCache) key(tok string) cacheKey { return cacheKey(maphash.String(c.seed, tok)) }

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

type entry struct {
	token  string // the token itself: a hit compares it in full
	caller *authz.Caller
	// In the refused-token cache: the refusal (never handed out: a hit
	// gets a copy) and, for an expired token, its exp, so that the message
	// is rebuilt with the current time.
	deny    *authz.Denial
	expired time.Time
	// The issuer keys the outcome was reached under; nil for a refusal
	// decided by the token's bytes and the configuration alone.
	src     *source
	gen     uint64
	expires int64 // unix nanoseconds; unusable from then on
}

// valid reports whether an entry may still be served: before the token's
// exp, and under the same issuer keys it was verified against (a key set
// change re-verifies every cached token of that issuer).
func (e *entry) valid(now int64) bool {
	if now >= e.expires {
		return false
	}
	if e.src == nil {
		return true
	}
	ks := e.src.current()
	return ks != nil && ks.gen == e.gen
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

const cacheShards = 16

// tokenCache maps tokens to verified callers. It is sharded to keep
// the read path off a single lock, bounded (a full shard first drops
// expired or stale entries, then an arbitrary one), and single-flight: the
// first miss for a token verifies it while concurrent misses wait.
type tokenCache struct {
	seed     maphash.Seed
	shards   []shard
	capacity int

	hits, misses, coalesced, evictions atomic.Uint64

	fmu     sync.Mutex
	flights map[cacheKey]*flight
}

type shard struct {
	mu  sync.RWMutex
	m   map[cacheKey]entry
	max int
	_   [24]byte // a shard fills a 64-byte cache line: neighbours do not share one
}

type flight struct {
	token string
	done  chan struct{}
	out   outcome
}

func newTokenCache(maxEntries int) *tokenCache {
	n := min(cacheShards, maxEntries)
	c := &tokenCache{
		seed:     maphash.MakeSeed(),
		shards:   make([]shard, n),
		capacity: maxEntries,
		flights:  map[cacheKey]*flight{},
	}
	for i := range c.shards {
		// The shards' bounds add up to maxEntries exactly.
		c.shards[i].max = maxEntries / n
		if i < maxEntries%n {
			c.shards[i].max++
		}
		c.shards[i].m = make(map[cacheKey]entry)
	}
	return c
}

func (c *tokenCache) shard(k cacheKey) *shard {
	return &c.shards[uint64(k>>32)%uint64(len(c.shards))]
}

// get returns the cached caller for a token, or nil.
func (c *tokenCache) get(k cacheKey, tok string, now int64) *authz.Caller {
	e, ok := c.lookup(k, tok, now)
	if !ok {
		return nil
	}
	return e.caller
}

// refusal returns the refused-token cache's refusal of a token, or nil:
// a copy, and for an expired token one that states the current time.
func (c *tokenCache) refusal(k cacheKey, tok string, now time.Time, skew time.Duration) *authz.Denial {
	e, ok := c.lookup(k, tok, now.UnixNano())
	if !ok || e.deny == nil {
		return nil
	}
	if !e.expired.IsZero() {
		return denyExpired(e.expired, now, skew)
	}
	d := *e.deny
	return &d
}

// lookup returns the entry of a token while it may be served, dropping it
// once it may not.
func (c *tokenCache) lookup(k cacheKey, tok string, now int64) (entry, bool) {
	sh := c.shard(k)
	sh.mu.RLock()
	e, ok := sh.m[k]
	sh.mu.RUnlock()
	if !ok || e.token != tok {
		return entry{}, false
	}
	if !e.valid(now) {
		sh.mu.Lock()
		if cur, ok := sh.m[k]; ok && cur.caller == e.caller && cur.deny == e.deny {
			delete(sh.m, k)
			c.evictions.Add(1)
		}
		sh.mu.Unlock()
		return entry{}, false
	}
	c.hits.Add(1)
	return e, true
}

func (c *tokenCache) put(k cacheKey, tok string, o *outcome, now int64) {
	// A copy of the token, so that the entry does not pin the request's
	// header buffer it was cut from.
	e := entry{token: strings.Clone(tok), caller: o.caller, src: o.src, gen: o.gen, expires: o.expires.UnixNano()}
	if e.expires <= now { // valid only thanks to clock skew: not worth keeping
		return
	}
	c.store(k, e, now)
}

// putRefusal keeps a final refusal (outcome.final): one that no later
// moment can turn into an allow while the issuer's keys stay the same.
// It has no expiry of its own: the bound and a key change remove it.
func (c *tokenCache) putRefusal(k cacheKey, tok string, o *outcome, now int64) {
	d := *o.deny
	c.store(k, entry{token: strings.Clone(tok), deny: &d, expired: o.expired, src: o.src, gen: o.gen, expires: math.MaxInt64}, now)
}

func (c *tokenCache) store(k cacheKey, e entry, now int64) {
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[k]; !ok && len(sh.m) >= sh.max {
		for key, old := range sh.m {
			if !old.valid(now) {
				delete(sh.m, key)
				c.evictions.Add(1)
			}
		}
		if len(sh.m) >= sh.max {
			for key := range sh.m { // map order is random: a random eviction
				delete(sh.m, key)
				c.evictions.Add(1)
				break
			}
		}
	}
	sh.m[k] = e
}

// do verifies a token that missed the cache, at most once at a time per
// token: concurrent callers wait for the first one's outcome (bounded by
// their own ctx). When the verifying request gives up (its ctx ends), a
// waiter whose ctx is still live verifies in its place. A flight for
// another token that collides on the key is never joined: the caller
// verifies on its own.
func (c *tokenCache) do(ctx context.Context, k cacheKey, tok string, now func() time.Time, verify func() outcome) outcome {
	for {
		c.fmu.Lock()
		if f, ok := c.flights[k]; ok {
			c.fmu.Unlock()
			if f.token != tok {
				c.misses.Add(1)
				return safeVerify(verify)
			}
			c.coalesced.Add(1)
			select {
			case <-f.done:
			case <-ctx.Done():
				return outcome{err: ctx.Err()}
			}
			if f.out.err != nil && isCtxErr(f.out.err) && ctx.Err() == nil {
				continue
			}
			return f.out.shared()
		}
		f := &flight{token: tok, done: make(chan struct{})}
		c.flights[k] = f
		c.fmu.Unlock()

		if caller := c.get(k, tok, now().UnixNano()); caller != nil {
			// Another flight finished between our miss and our lead.
			f.out = outcome{caller: caller}
		} else {
			c.misses.Add(1)
			f.out = safeVerify(verify)
			if f.out.caller != nil {
				c.put(k, tok, &f.out, now().UnixNano())
			}
		}
		c.fmu.Lock()
		delete(c.flights, k)
		c.fmu.Unlock()
		close(f.done)
		return f.out
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

func (c *tokenCache) stats() CacheStats {
	s := CacheStats{
		Hits:      c.hits.Load(),
		Misses:    c.misses.Load(),
		Coalesced: c.coalesced.Load(),
		Evictions: c.evictions.Load(),
		Capacity:  c.capacity,
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		s.Entries += len(sh.m)
		sh.mu.RUnlock()
	}
	return s
}
