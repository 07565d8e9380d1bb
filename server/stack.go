package server

import (
	"context"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/engine"
	"github.com/vaultwall/vaultwall/ops/audit"
	"github.com/vaultwall/vaultwall/ops/metrics"
	"github.com/vaultwall/vaultwall/ops/shadow"
	"github.com/vaultwall/vaultwall/ops/tracing"
)

// Stack is one process's operations: it is the observer of every
// decision (metrics, audit log, shadow) and owns what the engine is built
// with (key store, tracer, engine.Builder).
type Stack struct {
	path    string
	o       Options
	log     *slog.Logger
	ctx     context.Context
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	keys    *token.KeyStore
	builder *engine.Builder
	tracer  *tracing.Tracer
	tracing config.Tracing

	auditCounters audit.Counters
	audit         atomic.Pointer[audit.Writer]
	shadowStats   shadow.Stats
	shadow        atomic.Pointer[shadow.Evaluator]

	current atomic.Pointer[engine.Set]

	mu       sync.Mutex // serialises reconfiguration
	auditCfg config.Audit
	closing  sync.WaitGroup // writers and evaluators being closed
}

var _ authz.Observer = (*Stack)(nil)

// NewStack builds the stack for the configuration cfg loaded from path: it
// opens the audit log and starts the tracer and the shadow evaluator as
// configured. An audit sink or tracer that cannot start fails New; a
// shadow candidate that does not build is only logged.
func NewStack(ctx context.Context, path string, cfg *config.Config, o Options) (*Stack, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Stack{path: path, o: o, log: log, ctx: context.WithoutCancel(ctx), reg: o.Registry, tracing: cfg.Tracing}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
		s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	s.metrics = metrics.New(s.reg)
	s.reg.MustRegister(
		metrics.CacheCollector(func() []*engine.Runtime {
			if set := s.current.Load(); set != nil {
				return set.Runtimes
			}
			return nil
		}),
		metrics.AuditCollector(&s.auditCounters, s.auditQueued),
		metrics.ShadowCollector(&s.shadowStats),
		shadowStatus{s},
	)
	so := o.Store
	if so.Logger == nil {
		so.Logger = log
	}
	next := so.OnRefresh
	so.OnRefresh = func(ev token.RefreshEvent) {
		s.metrics.OnRefresh(ev)
		if next != nil {
			next(ev)
		}
	}
	s.keys = token.NewKeyStore(so)
	tr, err := tracing.New(ctx, cfg.Tracing, o.Version)
	if err != nil {
		s.keys.Close()
		return nil, err
	}
	s.tracer = tr
	s.builder = &engine.Builder{Keys: s.keys, Log: log, Now: o.Now}
	if tr != nil {
		s.builder.Tracer = tr // a nil *Tracer must not become a non-nil interface
	}
	if err := s.reconfigureAudit(cfg.Audit, true); err != nil {
		s.keys.Close()
		_ = tr.Shutdown(ctx)
		return nil, err
	}
	s.reconfigureShadow(cfg.Shadow)
	return s, nil
}

// Keys is the process's key store (shared with the control plane).
func (s *Stack) Keys() *token.KeyStore { return s.keys }

// Builder builds the engine's runtimes (and the shadow candidate's).
func (s *Stack) Builder() *engine.Builder { return s.builder }

// Registry holds the metrics.
func (s *Stack) Registry() *prometheus.Registry { return s.reg }

// Tracer is the tracer, nil when tracing is off.
func (s *Stack) Tracer() *tracing.Tracer { return s.tracer }

// Shadow is the running shadow evaluator, nil when none.
func (s *Stack) Shadow() *shadow.Evaluator { return s.shadow.Load() }

// ShadowStats count shadow evaluations, drops and differences.
func (s *Stack) ShadowStats() *shadow.Stats { return &s.shadowStats }

// AuditCounters count audit records written, dropped and failed.
func (s *Stack) AuditCounters() *audit.Counters { return &s.auditCounters }

// Observe hands a decision to the metrics, the audit log and the shadow
// evaluator. None of them blocks.
func (s *Stack) Observe(d *authz.Decision, elapsed time.Duration) {
	s.metrics.Observe(d, elapsed)
	if w := s.audit.Load(); w != nil {
		w.Observe(d, elapsed)
	}
	if ev := s.shadow.Load(); ev != nil {
		ev.Observe(d, elapsed)
	}
}

// GRPCServerOptions are the tracing (when on) and metrics interceptors.
func (s *Stack) GRPCServerOptions() []grpc.ServerOption {
	var opts []grpc.ServerOption
	if s.tracer != nil {
		opts = append(opts, grpc.ChainUnaryInterceptor(s.tracer.UnaryInterceptor()))
	}
	return append(opts, s.metrics.GRPCServerOptions()...)
}

// OnSwap follows a newly loaded configuration. It runs inside the
// engine's reload, so it only swaps and starts; closing runs aside.
func (s *Stack) OnSwap(set *engine.Set) {
	s.current.Store(set)
	s.metrics.SwapSet(set)
	cfg := set.Main
	if cfg == nil {
		return
	}
	s.metrics.SetVaultLabel(cfg.Vaults.MetricsLabel)
	if err := s.reconfigureAudit(cfg.Audit, false); err != nil {
		s.log.Error("audit log not reopened; the previous one stays in use", "error", err)
	}
	s.reconfigureShadow(cfg.Shadow)
	if ev := s.shadow.Load(); ev != nil {
		ev.SetEnforced(set)
	}
	if !reflect.DeepEqual(cfg.Tracing, s.tracing) {
		s.log.Warn("tracing settings changed; they take effect on restart")
	}
}

func (s *Stack) reconfigureAudit(cfg config.Audit, first bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !first && reflect.DeepEqual(cfg, s.auditCfg) {
		return nil
	}
	var w *audit.Writer
	if cfg.Enabled {
		var err error
		w, err = audit.New(cfg, audit.Options{Log: s.log, Counters: &s.auditCounters, Stdout: s.o.Stdout})
		if err != nil {
			return err
		}
	}
	s.auditCfg = cfg
	old := s.audit.Swap(w)
	if !first {
		s.log.Info("audit log reconfigured", "enabled", cfg.Enabled, "sink", cfg.Sink, "path", cfg.Path)
	}
	s.closeAside(func(ctx context.Context) {
		if old != nil {
			_ = old.Close(ctx)
		}
	})
	return nil
}

func (s *Stack) reconfigureShadow(cfg config.Shadow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.shadow.Load()
	if cur != nil && reflect.DeepEqual(cur.Config(), cfg) {
		return
	}
	if cur == nil && !cfg.Enabled() {
		return
	}
	var ev *shadow.Evaluator
	if cfg.Enabled() {
		ev = shadow.New(s.ctx, cfg, s.path, s.builder, shadow.Options{Log: s.log, Stats: &s.shadowStats,
			Poll: s.o.Poll, OnDifference: s.o.OnShadowDifference})
		s.log.Info("shadow evaluation started", "candidate", cfg.Config, "policyDir", cfg.PolicyDir, "sampleRate", cfg.Rate())
	}
	old := s.shadow.Swap(ev)
	if old != nil {
		s.closeAside(func(context.Context) { old.Close() })
	}
}

func (s *Stack) closeAside(f func(ctx context.Context)) {
	s.closing.Add(1)
	go func() {
		defer s.closing.Done()
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		defer cancel()
		f(ctx)
	}()
}

func (s *Stack) auditQueued() int {
	if w := s.audit.Load(); w != nil {
		return w.Queued()
	}
	return 0
}

// probe adds the audit log and shadow state to /readyz; neither affects
// readiness.
func (s *Stack) probe(*engine.Runtime) []engine.Probe {
	a := map[string]any{
		"enabled": s.audit.Load() != nil, "queued": s.auditQueued(),
		"written": s.auditCounters.Written.Load(), "dropped": s.auditCounters.Dropped.Load(), "failed": s.auditCounters.Failed.Load(),
	}
	if w := s.audit.Load(); w != nil {
		a["sink"] = w.Config().Sink
		if p := w.Config().Path; p != "" && w.Config().Sink == config.AuditSinkFile {
			a["path"] = p
		}
	}
	out := []engine.Probe{{Name: "audit", Ready: true, Detail: a}}
	if ev := s.shadow.Load(); ev != nil {
		out = append(out, engine.Probe{Name: "shadow", Ready: true, Detail: ev.Status()})
	}
	return out
}

// Close drains the audit log (until ctx ends), stops the shadow evaluator,
// flushes the tracer and stops the key store.
func (s *Stack) Close(ctx context.Context) error {
	s.mu.Lock()
	w := s.audit.Swap(nil)
	ev := s.shadow.Swap(nil)
	s.mu.Unlock()
	var err error
	if w != nil {
		err = w.Close(ctx)
	}
	if ev != nil {
		ev.Close()
	}
	s.closing.Wait()
	if terr := s.tracer.Shutdown(ctx); err == nil {
		err = terr
	}
	s.keys.Close()
	return err
}

// shadowStatus exports the shadow candidate's engine status (generation,
// reload failures) under config="shadow", whichever evaluator is running.
type shadowStatus struct{ s *Stack }

func (shadowStatus) Describe(chan<- *prometheus.Desc) {} // unchecked: the evaluator comes and goes

func (c shadowStatus) Collect(ch chan<- prometheus.Metric) {
	if ev := c.s.shadow.Load(); ev != nil {
		metrics.NewStatusCollector(ev.Engine(), "shadow").Collect(ch)
	}
}
