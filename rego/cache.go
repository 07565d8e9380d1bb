package rego

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
)

// DefaultCacheEntries bounds the decision cache when WithDecisionCache is
// not given.
const DefaultCacheEntries = 10000

// CacheStats are the decision cache's counters, for metrics.
type CacheStats struct {
	Hits      uint64 // verdicts served from the cache
	Misses    uint64 // evaluations (a miss that did the work)
	Coalesced uint64 // waited for a concurrent evaluation of the same key
	Evictions uint64 // entries dropped to make room, or found expired
	Entries   int    // entries held now
	Capacity  int    // 0 when the cache is off
	// Disabled says why the cache is off, "" when it is on.
	Disabled string
}

// The decision cache. A verdict is a function of the input fields the
// policy reads (the plan) and of the data, which is fixed for the life of
// a Policy; so a verdict is cached under an exact encoding of those fields,
// in a cache that belongs to one Policy and dies with it on reload. An
// entry never outlives the caller's token (exp). A policy whose result is
// not a function of the key — it reads a per-request field, or calls a
// builtin whose answer changes between calls — gets no cache (uncacheable).
type decisionCache struct {
	seed     maphash.Seed
	shards   [cacheShards]cacheShard
	capacity int

	hits, misses, coalesced, evictions atomic.Uint64

	fmu     sync.Mutex
	flights map[string]*evalFlight
}

const cacheShards = 16

type cacheShard struct {
	mu  sync.RWMutex
	m   map[string]cacheEntry // the full key: Go's map compares it on every hit
	max int
}

type cacheEntry struct {
	r       result
	expires int64 // unix nanoseconds (the token's exp); unusable from then on
}

type evalFlight struct {
	done chan struct{}
	r    result
	err  error
}

func newDecisionCache(capacity int) *decisionCache {
	c := &decisionCache{seed: maphash.MakeSeed(), capacity: capacity, flights: map[string]*evalFlight{}}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.max = capacity / cacheShards
		if i < capacity%cacheShards {
			sh.max++
		}
		sh.m = make(map[string]cacheEntry)
	}
	return c
}

func (c *decisionCache) shard(h uint64) *cacheShard { return &c.shards[h%cacheShards] }

// get returns the verdict cached under k, if any and still valid at now.
func (c *decisionCache) get(k []byte, now int64) (result, bool) {
	sh := c.shard(maphash.Bytes(c.seed, k))
	sh.mu.RLock()
	e, ok := sh.m[string(k)]
	sh.mu.RUnlock()
	if !ok {
		return result{}, false
	}
	if now >= e.expires {
		sh.mu.Lock()
		if cur, ok := sh.m[string(k)]; ok && cur.expires == e.expires {
			delete(sh.m, string(k))
			c.evictions.Add(1)
		}
		sh.mu.Unlock()
		return result{}, false
	}
	c.hits.Add(1)
	return e.r, true
}

func (c *decisionCache) put(k string, r result, now, expires int64) {
	if sh := c.shard(maphash.String(c.seed, k)); sh.max > 0 {
		sh.mu.Lock()
		defer sh.mu.Unlock()
		if _, ok := sh.m[k]; !ok && len(sh.m) >= sh.max {
			for key, old := range sh.m {
				if now >= old.expires {
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
		sh.m[k] = cacheEntry{r: r, expires: expires}
	}
}

// do evaluates a key that missed, at most once at a time per key:
// concurrent callers wait for the first one's verdict (bounded by their own
// ctx). Only a verdict is shared; when the first evaluation fails, each
// waiter evaluates for itself, so one request's cancellation or time budget
// never decides another's.
func (c *decisionCache) do(ctx context.Context, k []byte, now, expires int64, eval func() (result, error)) (result, error) {
	c.fmu.Lock()
	if f, ok := c.flights[string(k)]; ok {
		c.fmu.Unlock()
		c.coalesced.Add(1)
		select {
		case <-f.done:
		case <-ctx.Done():
			return result{}, fmt.Errorf("%w: %v", ErrEval, ctx.Err())
		}
		if f.err == nil {
			return f.r, nil
		}
		return eval()
	}
	key := string(k)
	// A panicking evaluation leaves errPanicked: waiters evaluate for
	// themselves, and the panic goes on to the pipeline, which fails closed.
	f := &evalFlight{done: make(chan struct{}), err: errPanicked}
	c.flights[key] = f
	c.fmu.Unlock()
	defer func() {
		c.fmu.Lock()
		delete(c.flights, key)
		c.fmu.Unlock()
		close(f.done)
	}()

	if r, ok := c.get(k, now); ok { // another flight finished between our miss and our lead
		f.r, f.err = r, nil
		return r, nil
	}
	c.misses.Add(1)
	r, err := eval()
	f.r, f.err = r, err
	if err == nil {
		c.put(key, r, now, expires)
	}
	return r, err
}

var errPanicked = errors.New("policy evaluation panicked")

func (c *decisionCache) stats() CacheStats {
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

// volatileBuiltins answer differently from one call to the next with the
// same arguments: OPA's non-deterministic builtins (time.now_ns, rand.intn,
// uuid.rfc4122, io.jwt.decode_verify, …) and the certificate verifiers,
// which check validity against the wall clock.
var volatileBuiltins = func() map[string]bool {
	m := map[string]bool{
		"crypto.x509.parse_and_verify_certificates":              true,
		"crypto.x509.parse_and_verify_certificates_with_options": true,
	}
	for _, b := range ast.Builtins {
		if b.Nondeterministic {
			m[b.Name] = true
		}
	}
	return m
}()

// uncacheable says why the compiled policy's verdict is not a function of
// the cache key, "" when it is: the rules read a field that differs on
// every request, or call (or mock, with `with`) a volatile builtin.
func uncacheable(c *ast.Compiler, p plan) string {
	var why []string
	if f := p.perRequestFields(); len(f) > 0 {
		why = append(why, "the policy reads "+strings.Join(f, ", "))
	}
	calls := map[string]bool{}
	note := func(name string) {
		if volatileBuiltins[name] {
			calls[name] = true
		}
	}
	for _, m := range c.Modules {
		ast.WalkTerms(m, func(t *ast.Term) bool {
			switch v := t.Value.(type) {
			case ast.Ref:
				note(v.String())
			case ast.Call:
				if len(v) > 0 {
					note(v[0].String())
				}
			}
			return false
		})
		ast.WalkExprs(m, func(e *ast.Expr) bool {
			if e.IsCall() {
				note(e.Operator().String())
			}
			return false
		})
	}
	if len(calls) > 0 {
		names := make([]string, 0, len(calls))
		for n := range calls {
			names = append(names, n)
		}
		sort.Strings(names)
		why = append(why, "it calls "+strings.Join(names, ", ")+", whose answer changes from call to call")
	}
	return strings.Join(why, "; ")
}
