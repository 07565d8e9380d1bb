package shadow

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/engine"
)

const nStages = int(authz.StageAuthorize) + 1

// Stats count the evaluator's work. One set outlives evaluators rebuilt on
// reload, so metrics never go backwards.
type Stats struct {
	Evaluated atomic.Uint64 // decisions decided again
	Dropped   atomic.Uint64 // sampled decisions dropped: queue full or closing
	Skipped   atomic.Uint64 // not evaluated: no candidate loaded, or no request
	diffs     [len(kindNames)][nStages]atomic.Uint64
}

// Differences is the number of differences of kind k attributed to stage s.
func (s *Stats) Differences(k Kind, st authz.Stage) uint64 {
	if int(k) >= len(s.diffs) || int(st) >= nStages {
		return 0
	}
	return s.diffs[k][st].Load()
}

func (s *Stats) count(k Kind, st authz.Stage) {
	if int(k) < len(s.diffs) && int(st) < nStages {
		s.diffs[k][st].Add(1)
	}
}

// Options tune an Evaluator.
type Options struct {
	Log   *slog.Logger
	Stats *Stats
	// Poll is the candidate watcher's fallback re-check period (default 5s).
	Poll time.Duration
	// OnDifference, when set, also receives every difference (tests).
	OnDifference func(Difference)
}

// Difference is one request the candidate decides differently.
type Difference struct {
	Kind       Kind
	Stage      authz.Stage
	Enforced   *authz.Decision
	Candidate  *authz.Decision
	Generation uint64 // of the candidate
}

// Evaluator decides sampled requests again with a candidate configuration.
type Evaluator struct {
	cfg    config.Shadow
	eng    *engine.Fleet
	rate   float64
	q      chan *authz.Decision
	stats  *Stats
	log    *slog.Logger
	onDiff func(Difference)

	enforced atomic.Pointer[engine.Set]
	same     atomic.Pointer[identityMatch]

	closed atomic.Bool
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

type identityMatch struct {
	cand, enf *engine.Runtime
	same      bool
}

// New starts an evaluator for cfg. The candidate is the configuration file
// cfg.Config, or enforcedPath when only a policy directory is given, with
// cfg.PolicyDir as its policy directory when set; b builds it (a copy with
// that directory, untraced). A candidate that does not build is logged and
// retried on change: shadow mode never stops the service.
func New(ctx context.Context, cfg config.Shadow, enforcedPath string, b *engine.Builder, o Options) *Evaluator {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("shadow", true)
	path := cfg.Config
	if path == "" {
		path = enforcedPath
	}
	sb := *b
	sb.Tracer = nil
	if cfg.PolicyDir != "" {
		sb.PolicyDir = cfg.PolicyDir
	}
	ev := &Evaluator{
		cfg:    cfg,
		rate:   cfg.Rate(),
		q:      make(chan *authz.Decision, max(cfg.QueueSize, 1)),
		stats:  o.Stats,
		log:    log,
		onDiff: o.OnDifference,
	}
	if ev.stats == nil {
		ev.stats = &Stats{}
	}
	ev.eng = engine.NewFleet(path, sb.Build, log)
	ev.eng.PolicyDir = cfg.PolicyDir
	ctx, ev.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if err := ev.eng.Load(ctx); err != nil {
		log.Error("shadow candidate rejected; shadow evaluation waits for a valid one", "file", path, "policyDir", cfg.PolicyDir, "error", err)
	}
	ev.wg.Add(1)
	go func() {
		defer ev.wg.Done()
		if err := ev.eng.Watch(ctx, o.Poll); err != nil {
			log.Error("shadow candidate watcher stopped", "error", err)
		}
	}()
	for range max(cfg.Workers, 1) {
		ev.wg.Add(1)
		go ev.work(ctx)
	}
	return ev
}

// Config is the configuration the evaluator was started with.
func (e *Evaluator) Config() config.Shadow { return e.cfg }

// Engine is the candidate's engine (status, metrics).
func (e *Evaluator) Engine() *engine.Fleet { return e.eng }

// SetEnforced tells the evaluator which vaults are enforced, to decide
// whether the enforced caller can be reused.
func (e *Evaluator) SetEnforced(s *engine.Set) { e.enforced.Store(s) }

// vaultOf is the runtime of set deciding the vault named: the one vault of
// a single-vault set (a candidate file may rename it), else by name.
func vaultOf(set *engine.Set, name string) *engine.Runtime {
	if set == nil {
		return nil
	}
	if !set.Multi && len(set.Runtimes) == 1 {
		return set.Runtimes[0]
	}
	return set.Vault(name)
}

var _ authz.Observer = (*Evaluator)(nil)

// Observe samples the decision into the queue. It never blocks.
func (e *Evaluator) Observe(d *authz.Decision, _ time.Duration) {
	if e.rate < 1 && (e.rate <= 0 || rand.Float64() >= e.rate) {
		return
	}
	if e.closed.Load() {
		e.stats.Dropped.Add(1)
		return
	}
	select {
	case e.q <- d:
	default:
		e.stats.Dropped.Add(1)
	}
}

// Close stops the workers and the candidate's watcher; queued decisions
// are dropped and counted.
func (e *Evaluator) Close() {
	e.once.Do(func() {
		e.closed.Store(true)
		e.cancel()
		e.wg.Wait()
		e.stats.Dropped.Add(uint64(len(e.q)))
		if set := e.eng.Set(); set != nil {
			for _, rt := range set.Runtimes {
				rt.Close()
			}
		}
	})
}

func (e *Evaluator) work(ctx context.Context) {
	defer e.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-e.q:
			e.Evaluate(ctx, d)
		}
	}
}

// Evaluate decides d's request again with the current candidate and
// reports a difference. It returns the candidate's decision, nil when none
// could be made.
func (e *Evaluator) Evaluate(ctx context.Context, d *authz.Decision) *authz.Decision {
	if d.Request == nil || d.Vault == nil || d.Vault.Name == "" {
		e.stats.Skipped.Add(1)
		return nil
	}
	cand := vaultOf(e.eng.Set(), d.Vault.Name)
	if cand == nil {
		e.stats.Skipped.Add(1)
		return nil
	}
	var authn authz.Authenticator
	if e.sameIdentity(cand) {
		authn = RecordedFrom(d)
	}
	nd := Redecide(ctx, cand.Pipeline, d.Request, d.Time, authn)
	e.stats.Evaluated.Add(1)
	before, after := OutcomeOf(d), OutcomeOf(nd)
	k := Compare(before, after)
	if k == Same {
		return nd
	}
	st := DiffStage(k, before, after)
	e.stats.count(k, st)
	attrs := []any{"kind", k.String(), "stage", st.String(), "decision", d.ID, "operation", d.Operation.Name,
		"enforced", before.String(), "candidate", after.String(), "candidateStage", after.Stage.String(),
		"candidateGeneration", cand.Generation}
	if d.Caller != nil {
		attrs = append(attrs, "caller", authz.Sanitize(d.Caller.String(), authz.MaxEchoValue))
	}
	if a := d.Network.ClientAddr; a.IsValid() {
		attrs = append(attrs, "client", a.String())
	}
	if r := nd.Network.Rule; r != "" {
		attrs = append(attrs, "candidateNetworkRule", r)
	}
	if r := nd.Authz.Rule; r != "" {
		attrs = append(attrs, "candidatePolicyRule", r)
	}
	if nd.Denial != nil {
		attrs = append(attrs, "candidateMessage", firstLine(nd.Denial.Message))
	}
	if nd.Err != nil {
		attrs = append(attrs, "candidateError", firstLine(nd.Err.Error()))
	}
	e.log.Info("shadow candidate decides differently", attrs...)
	if e.onDiff != nil {
		e.onDiff(Difference{Kind: k, Stage: st, Enforced: d, Candidate: nd, Generation: cand.Generation})
	}
	return nd
}

// sameIdentity reports whether the candidate verifies tokens exactly as
// the enforced runtime does (identity section and tenant), cached per pair
// of runtimes.
func (e *Evaluator) sameIdentity(cand *engine.Runtime) bool {
	if cand.Config == nil {
		return false
	}
	enf := vaultOf(e.enforced.Load(), cand.Config.Vault.Name)
	if enf == nil || enf.Config == nil {
		return false
	}
	if m := e.same.Load(); m != nil && m.cand == cand && m.enf == enf {
		return m.same
	}
	same := strings.EqualFold(enf.Config.Vault.TenantID, cand.Config.Vault.TenantID) &&
		reflect.DeepEqual(enf.Config.Identity, cand.Config.Identity)
	e.same.Store(&identityMatch{cand: cand, enf: enf, same: same})
	return same
}

// Status is the evaluator's state for /readyz.
type Status struct {
	Candidate  string             `json:"candidate"`
	PolicyDir  string             `json:"policyDir,omitempty"`
	SampleRate float64            `json:"sampleRate"`
	Queued     int                `json:"queued"`
	Engine     engine.FleetStatus `json:"engine"`
	Evaluated  uint64             `json:"evaluated"`
	Dropped    uint64             `json:"dropped"`
}

// Status reports the candidate and the counters.
func (e *Evaluator) Status() Status {
	c := e.cfg.Config
	if c == "" {
		c = "(the enforced configuration)"
	}
	return Status{Candidate: c, PolicyDir: e.cfg.PolicyDir, SampleRate: e.rate, Queued: len(e.q),
		Engine: e.eng.Status(), Evaluated: e.stats.Evaluated.Load(), Dropped: e.stats.Dropped.Load()}
}

// firstLine is the first line of s, sanitised for the log: it quotes
// messages that may echo the client.
func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return authz.Sanitize(s, authz.MaxEchoValue)
}
