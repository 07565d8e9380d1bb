package rego

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/vaultwall/vaultwall/authz/cache"
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
// a Policy; so a verdict is cached under an exact encoding of those fields
// (placed by its hash, compared in full on every hit), in a cache that
// belongs to one Policy and dies with it on reload. An entry never
// outlives the caller's token (exp). A policy whose result is not a
// function of the key — it reads a per-request field, or calls a builtin
// whose answer changes between calls — gets no cache (uncacheable).
type decisionCache = cache.Map[[]byte, result]

func newDecisionCache(capacity int) *decisionCache {
	return cache.New[[]byte](cache.Config[result]{Capacity: capacity})
}

// evalOnce evaluates a key that missed, at most once at a time per key:
// concurrent callers wait for the first one's verdict (bounded by their
// own ctx). Only a verdict is shared and cached, until expires; when the
// first evaluation fails (or panics: the panic goes on to the pipeline,
// which fails closed), each waiter evaluates for itself, so one request's
// cancellation or time budget never decides another's.
func evalOnce(ctx context.Context, c *decisionCache, h cache.Hash, k []byte, now, expires int64, eval func() (result, error)) (result, error) {
	r, _, err := c.Do(ctx, h, k, now, func() (result, int64, error) {
		r, err := eval()
		return r, expires, err
	})
	if err != nil && err == ctx.Err() { // the wait ended: Do returns ctx.Err() itself
		return result{}, fmt.Errorf("%w: %v", ErrEval, err)
	}
	return r, err
}

func cacheStats(c *decisionCache) CacheStats {
	s := c.Stats()
	return CacheStats{
		Hits:      s.Hits,
		Misses:    s.Misses,
		Coalesced: s.Coalesced,
		Evictions: s.Evictions,
		Entries:   s.Entries,
		Capacity:  s.Capacity,
	}
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
