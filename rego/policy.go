package rego

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	oparego "github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
)

// Query is the one document vaultwall asks the policy for.
const Query = "data.vaultwall.authz.decision"

// DefaultTimeout bounds one evaluation when policy.timeout is unset.
const DefaultTimeout = 250 * time.Millisecond

// Policy is the compiled, prepared policy with its data. It is immutable and
// safe for concurrent use; a changed configuration or policy directory
// builds a new one.
type Policy struct {
	query oparego.PreparedEvalQuery
	// src is the compilation, shared by the Policies built from the same
	// sources; holding it keeps it (and its entry in shared) alive.
	src     *compiled
	input   plan
	timeout time.Duration
	files   []string
	// cache holds verdicts by input (nil when off; nocache says why).
	cache   *decisionCache
	nocache string
}

var _ authz.Policy = (*Policy)(nil)

// Option adjusts New.
type Option func(*options)

type options struct {
	dir          *string
	cacheEntries int
}

// WithDir loads operator files from dir instead of cfg.Policy.Dir; "" loads
// the shipped policy alone.
func WithDir(dir string) Option {
	return func(o *options) { o.dir = &dir }
}

// WithDecisionCache bounds the decision cache to n verdicts (default
// DefaultCacheEntries); n < 0 turns it off.
func WithDecisionCache(n int) Option {
	return func(o *options) { o.cacheEntries = n }
}

// New compiles the shipped policy and the operator files of policy.dir,
// builds the data from the configuration's access policies, role
// assignments and role definitions, prepares the query, and evaluates
// built-in sample inputs, so that a policy that cannot decide never serves.
// Every problem is reported at once, each as a *FileError naming file:line
// (or the configuration field) and wrapping a sentinel.
//
// New has no side effects and takes milliseconds: call it again on every
// change and keep the old Policy when it fails.
func New(ctx context.Context, cfg *config.Config, opts ...Option) (*Policy, error) {
	o := options{cacheEntries: DefaultCacheEntries}
	for _, opt := range opts {
		opt(&o)
	}
	dir := cfg.Policy.Dir
	if o.dir != nil {
		dir = *o.dir
	}
	srcs, err := shippedSources(false)
	if err != nil {
		return nil, err
	}
	var files []string
	if dir != "" {
		ops, err := dirSources(dir, false)
		if err != nil {
			return nil, err
		}
		for _, s := range ops {
			files = append(files, s.name)
		}
		srcs = append(srcs, ops...)
	}
	// Sources already compiled for a Policy alive are not parsed or
	// compiled again (shared.go): only the data, the store and the queries
	// prepared against it are this Policy's own.
	digest := digestSources(srcs)
	c := lookupShared(digest)
	var mods map[string]*ast.Module
	var perr error
	if c == nil {
		mods, perr = parse(srcs)
	}
	data, derr := buildData(cfg)
	if perr != nil || derr != nil {
		return nil, errors.Join(perr, derr)
	}
	if c == nil {
		if c, err = compileShared(digest, mods, files); err != nil {
			return nil, err
		}
	}
	store := inmem.NewFromASTObject(data)
	compileMu.Lock() // preparing type-checks the query too
	pq, err := oparego.New(
		oparego.Query(Query),
		oparego.Compiler(c.compiler),
		oparego.Store(store),
		oparego.StrictBuiltinErrors(true),
		oparego.Capabilities(c.caps),
	).PrepareForEval(ctx)
	var rules []operatorRule
	if err != nil {
		err = joinErrors(astErrors("", ErrCompile, err))
	} else {
		rules, err = operatorRules(ctx, c, store)
	}
	compileMu.Unlock()
	if err != nil {
		return nil, err
	}
	timeout := cfg.Policy.Timeout.D()
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	p := &Policy{query: pq, src: c, input: c.input, timeout: timeout, files: c.files}
	if c.nocache != "" {
		p.nocache = c.nocache
	} else if o.cacheEntries <= 0 {
		p.nocache = "turned off"
	} else {
		p.cache = newDecisionCache(o.cacheEntries)
	}
	if err := p.checkSamples(ctx, cfg, rules); err != nil {
		return nil, err
	}
	return p, nil
}

// Files lists the operator files loaded, sorted by path.
func (p *Policy) Files() []string { return slices.Clone(p.files) }

// CacheStats returns the decision cache's counters.
func (p *Policy) CacheStats() CacheStats {
	if p.cache == nil {
		return CacheStats{Disabled: p.nocache}
	}
	return cacheStats(p.cache)
}

// Authorize evaluates the policy for one decision. A refusal is a verdict;
// an error means the policy could not decide (it failed, timed out, or
// answered something other than one well-formed decision).
func (p *Policy) Authorize(ctx context.Context, d *authz.Decision) (authz.AuthzVerdict, error) {
	r, err := p.decide(ctx, d)
	if err != nil {
		return authz.AuthzVerdict{}, err
	}
	want := authz.ModelAccessPolicy
	if d.Vault.RBAC {
		want = authz.ModelRBAC
	}
	if r.Model != want {
		return authz.AuthzVerdict{}, fmt.Errorf("%w: the decision is in the %s model, the vault uses %s", ErrResult, r.Model, want)
	}
	return r.verdict(), nil
}

// decide serves the verdict from the cache when it may: the policy is
// cacheable, the caller's token has an exp still ahead, and the key can be
// encoded. Otherwise it evaluates.
func (p *Policy) decide(ctx context.Context, d *authz.Decision) (result, error) {
	if p.cache == nil || d.Caller == nil || d.Caller.Expires.IsZero() {
		return p.evaluate(ctx, d)
	}
	now, expires := d.Time.UnixNano(), d.Caller.Expires.UnixNano()
	if now >= expires {
		return p.evaluate(ctx, d)
	}
	buf := keyBufs.Get().(*[]byte)
	defer putKeyBuf(buf)
	k, err := p.input.appendKey((*buf)[:0], d)
	if err != nil {
		return p.evaluate(ctx, d)
	}
	*buf = k
	h := p.cache.Hash(k)
	if r, ok := p.cache.Get(h, k, now); ok {
		return r, nil
	}
	return evalOnce(ctx, p.cache, h, k, now, expires, func() (result, error) { return p.evaluate(ctx, d) })
}

// keyBufs hold decision-cache keys while a decision uses them (the key
// escapes through the fields' encoders, so a stack buffer would not stay
// on the stack).
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func putKeyBuf(b *[]byte) {
	if cap(*b) <= 64<<10 {
		*b = (*b)[:0]
		keyBufs.Put(b)
	}
}

func (p *Policy) evaluate(ctx context.Context, d *authz.Decision) (result, error) {
	in, err := p.input.build(d)
	if err != nil {
		return result{}, err
	}
	return p.eval(ctx, in, d.Time)
}

// noMetrics spares each evaluation a metrics registry nobody reads.
var noMetrics = metrics.NoOp()

// keepAST hands results back as AST values, decoded strictly by
// decodeResult instead of through map[string]any.
func keepAST(t *ast.Term, _ *oparego.EvalContext) (any, error) { return t.Value, nil }

func (p *Policy) eval(ctx context.Context, input ast.Value, now time.Time) (result, error) {
	if err := ctx.Err(); err != nil {
		return result{}, fmt.Errorf("%w: %v", ErrEval, err)
	}
	// One cancel for both the request's context and the time budget,
	// without the goroutine OPA would otherwise start per evaluation.
	cancel := topdown.NewCancel()
	stop := context.AfterFunc(ctx, cancel.Cancel)
	timer := time.AfterFunc(p.timeout, cancel.Cancel)
	rs, err := p.query.Eval(ctx,
		oparego.EvalParsedInput(input),
		oparego.EvalTime(now),
		oparego.EvalExternalCancel(cancel),
		oparego.EvalMetrics(noMetrics),
		oparego.EvalGenerateJSON(keepAST),
	)
	timer.Stop()
	stop()
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return result{}, fmt.Errorf("%w: %v", ErrEval, ctx.Err())
		case topdown.IsCancel(err):
			return result{}, fmt.Errorf("%w of %v (policy.timeout)", ErrTimeout, p.timeout)
		}
		return result{}, fmt.Errorf("%w: %w", ErrEval, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return result{}, fmt.Errorf("%w: %s is undefined", ErrResult, Query)
	}
	v, ok := rs[0].Expressions[0].Value.(ast.Value)
	if !ok {
		return result{}, fmt.Errorf("%w: %T", ErrResult, rs[0].Expressions[0].Value)
	}
	return decodeResult(v)
}
