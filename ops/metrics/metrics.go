package metrics

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/engine"
	"github.com/vaultwall/vaultwall/ops/audit"
	"github.com/vaultwall/vaultwall/ops/shadow"
)

// Codes are the values of the code label of vaultwall_decisions_total: OK
// for an allow, else the refusal's x-ms-error-code. Any code not listed is
// counted as "other".
var Codes = []string{
	"OK",
	"Unauthorized",
	"ForbiddenByFirewall", "ForbiddenByConnection",
	"AccessDenied", "ForbiddenByRbac", "ForbiddenByPolicy", "Forbidden",
	"BadParameter", "InvalidRequestUri", "InvalidName", "UnknownOperation", "AmbiguousRequestUri",
	"InvalidMethodOverride", "MethodNotAllowed",
	"AuthorizationUnavailable", "InternalServerError", "ServiceUnavailable",
	"VaultNotFound",
	"other",
}

const nStages = int(authz.StageVault) + 1

// CheckBuckets are the latency histogram's buckets, in seconds: a cached
// token and a warm policy decide in tens of microseconds; Envoy's default
// ext_authz timeout is 200ms.
var CheckBuckets = []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1}

// Metrics holds vaultwall's collectors.
type Metrics struct {
	codeIndex map[string]int
	decisions [nStages][]prometheus.Counter
	latency   [2]prometheus.Observer // denied, allowed

	jwksRefresh  *prometheus.CounterVec
	jwksDuration *prometheus.HistogramVec

	grpc *grpcprom.ServerMetrics

	// byVault counts decisions per vault when the operator opts in
	// (vaults.metricsLabel): one series per vault, stage and code. A
	// request no vault answered is never counted there (its host is the
	// client's to choose).
	byVault  *prometheus.CounterVec
	perVault atomic.Bool

	// current are the distinct token authenticators of the vaults in
	// force (vaults of one tenant and identity share one).
	current     atomic.Pointer[[]*token.Authenticator]
	cacheMu     sync.Mutex
	cacheBase   token.CacheStats // counters of retired authenticators
	refusedBase uint64           // their refused-token cache hits
}

// New creates the collectors and registers them with reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{codeIndex: make(map[string]int, len(Codes))}
	for i, c := range Codes {
		m.codeIndex[c] = i
	}
	dec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vaultwall_decisions_total",
		Help: "Decisions by the stage that decided and the result code (OK, or the refusal's x-ms-error-code).",
	}, []string{"stage", "code"})
	for s := range nStages {
		m.decisions[s] = make([]prometheus.Counter, len(Codes))
		for i, c := range Codes {
			m.decisions[s][i] = dec.WithLabelValues(authz.Stage(s).String(), c)
		}
	}
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "vaultwall_check_duration_seconds",
		Help:    "Time to decide one Check and build its response, by result.",
		Buckets: CheckBuckets,
	}, []string{"result"})
	m.latency[0] = lat.WithLabelValues("denied")
	m.latency[1] = lat.WithLabelValues("allowed")
	m.jwksRefresh = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vaultwall_jwks_refresh_total",
		Help: "Fetches of an issuer's signing keys, by trigger and result (success, error).",
	}, []string{"issuer", "trigger", "result"})
	m.jwksDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "vaultwall_jwks_refresh_duration_seconds",
		Help:    "Duration of fetches of an issuer's signing keys.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"issuer"})
	m.grpc = grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets(CheckBuckets)))
	m.byVault = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vaultwall_vault_decisions_total",
		Help: "Decisions by vault, stage and result code; only with vaults.metricsLabel: true.",
	}, []string{"vault", "stage", "code"})
	reg.MustRegister(dec, lat, m.jwksRefresh, m.jwksDuration, m.grpc, m.byVault, &runtimeCollector{m: m})
	return m
}

var _ authz.Observer = (*Metrics)(nil)

// Observe counts a decision (authz.Observer). Label children are resolved:
// two atomic adds and a histogram observation.
func (m *Metrics) Observe(d *authz.Decision, elapsed time.Duration) {
	code := "OK"
	allowed := 1
	if !d.Allowed {
		allowed = 0
		code = "InternalServerError"
		if d.Denial != nil {
			code = d.Denial.ErrorCode()
		}
	}
	i, ok := m.codeIndex[code]
	if !ok {
		i = len(Codes) - 1
	}
	s := int(d.Stage)
	if s >= nStages {
		s = 0
	}
	m.decisions[s][i].Inc()
	m.latency[allowed].Observe(elapsed.Seconds())
	if m.perVault.Load() && d.Vault != nil && d.Vault.Name != "" {
		m.byVault.WithLabelValues(d.Vault.Name, authz.Stage(s).String(), Codes[i]).Inc()
	}
}

// SetVaultLabel turns the per-vault decision counter on or off
// (vaults.metricsLabel); turning it off drops its series.
func (m *Metrics) SetVaultLabel(on bool) {
	if !m.perVault.Swap(on) || on {
		return
	}
	m.byVault.Reset()
}

// OnRefresh counts a key fetch (token.StoreOptions.OnRefresh).
func (m *Metrics) OnRefresh(ev token.RefreshEvent) {
	result := "success"
	if ev.Err != nil {
		result = "error"
	}
	m.jwksRefresh.WithLabelValues(ev.Issuer, ev.Trigger.String(), result).Inc()
	m.jwksDuration.WithLabelValues(ev.Issuer).Observe(ev.Took.Seconds())
}

// Swap follows a single runtime in force; see SwapSet.
func (m *Metrics) Swap(rt *engine.Runtime) { m.SwapSet(&engine.Set{Runtimes: []*engine.Runtime{rt}}) }

// SwapSet follows the vaults in force (engine OnSwap): key age and the
// token caches are read from their authenticators at scrape time. The
// cache counters of an authenticator no vault uses any more are kept, so
// they never go back; one still in use (a reload that left identity alone)
// keeps counting.
func (m *Metrics) SwapSet(set *engine.Set) {
	var cur []*token.Authenticator
	for _, rt := range set.Runtimes {
		if a := rt.Authenticator; a != nil && !slices.Contains(cur, a) {
			cur = append(cur, a)
		}
	}
	old := m.current.Swap(&cur)
	if old == nil {
		return
	}
	m.cacheMu.Lock()
	defer m.cacheMu.Unlock()
	for _, a := range *old {
		if slices.Contains(cur, a) {
			continue
		}
		st := a.CacheStats()
		m.cacheBase.Hits += st.Hits
		m.cacheBase.Misses += st.Misses
		m.cacheBase.Coalesced += st.Coalesced
		m.cacheBase.Evictions += st.Evictions
		m.refusedBase += a.RefusedCacheStats().Hits
	}
}

// GRPCServerOptions install the gRPC server metrics' interceptors.
func (m *Metrics) GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(m.grpc.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(m.grpc.StreamServerInterceptor()),
	}
}

// runtimeCollector reads the current runtime's authenticator at scrape
// time: per-issuer key readiness, count and age, and the token cache.
type runtimeCollector struct{ m *Metrics }

var (
	descKeysLoaded = prometheus.NewDesc("vaultwall_jwks_keys_loaded", "1 when the issuer has a key set.", []string{"issuer"}, nil)
	descKeyCount   = prometheus.NewDesc("vaultwall_jwks_keys", "Usable keys in the issuer's key set.", []string{"issuer"}, nil)
	descKeyAge     = prometheus.NewDesc("vaultwall_jwks_key_age_seconds", "Time since the issuer's keys were last fetched successfully.", []string{"issuer"}, nil)
	descKeyFailing = prometheus.NewDesc("vaultwall_jwks_last_refresh_failed", "1 when the issuer's last key fetch failed (its last good keys stay in use).", []string{"issuer"}, nil)
	descCacheHits  = prometheus.NewDesc("vaultwall_token_cache_hits_total", "Tokens served from the verified-token cache.", nil, nil)
	descCacheMiss  = prometheus.NewDesc("vaultwall_token_cache_misses_total", "Tokens verified because they were not in the cache.", nil, nil)
	descCacheCoal  = prometheus.NewDesc("vaultwall_token_cache_coalesced_total", "Tokens that waited for a concurrent verification of the same token.", nil, nil)
	descCacheEvict = prometheus.NewDesc("vaultwall_token_cache_evictions_total", "Verified tokens dropped from the cache.", nil, nil)
	descCacheSize  = prometheus.NewDesc("vaultwall_token_cache_entries", "Verified tokens held in the cache.", nil, nil)
	descCacheCap   = prometheus.NewDesc("vaultwall_token_cache_capacity", "Capacity of the verified-token cache (0: disabled).", nil, nil)
	descRefusedHit = prometheus.NewDesc("vaultwall_token_refused_cache_hits_total", "Tokens refused from the refused-token cache (final refusals: bad signature, expired, wrong audience…) without verifying them again.", nil, nil)
	descRefusedLen = prometheus.NewDesc("vaultwall_token_refused_cache_entries", "Refused tokens held in the refused-token cache.", nil, nil)
)

func (c *runtimeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descKeysLoaded, descKeyCount, descKeyAge, descKeyFailing,
		descCacheHits, descCacheMiss, descCacheCoal, descCacheEvict, descCacheSize, descCacheCap, descRefusedHit, descRefusedLen} {
		ch <- d
	}
}

func (c *runtimeCollector) Collect(ch chan<- prometheus.Metric) {
	var authns []*token.Authenticator
	if p := c.m.current.Load(); p != nil {
		authns = *p
	}
	c.m.cacheMu.Lock()
	cs := c.m.cacheBase
	refusedHits, refusedLen := c.m.refusedBase, 0
	c.m.cacheMu.Unlock()
	cs.Entries, cs.Capacity = 0, 0
	seen := map[string]bool{} // an issuer's keys are one source, whoever uses it
	for _, a := range authns {
		for _, st := range a.Status() {
			if seen[st.Issuer] {
				continue
			}
			seen[st.Issuer] = true
			ch <- prometheus.MustNewConstMetric(descKeysLoaded, prometheus.GaugeValue, b2f(st.KeysLoaded), st.Issuer)
			ch <- prometheus.MustNewConstMetric(descKeyCount, prometheus.GaugeValue, float64(st.KeyCount), st.Issuer)
			if st.KeysLoaded {
				ch <- prometheus.MustNewConstMetric(descKeyAge, prometheus.GaugeValue, st.KeyAge.Seconds(), st.Issuer)
			}
			ch <- prometheus.MustNewConstMetric(descKeyFailing, prometheus.GaugeValue, b2f(st.LastError != ""), st.Issuer)
		}
		now := a.CacheStats()
		cs.Hits += now.Hits
		cs.Misses += now.Misses
		cs.Coalesced += now.Coalesced
		cs.Evictions += now.Evictions
		cs.Entries += now.Entries
		cs.Capacity += now.Capacity
		rs := a.RefusedCacheStats()
		refusedHits += rs.Hits
		refusedLen += rs.Entries
	}
	ch <- prometheus.MustNewConstMetric(descCacheHits, prometheus.CounterValue, float64(cs.Hits))
	ch <- prometheus.MustNewConstMetric(descCacheMiss, prometheus.CounterValue, float64(cs.Misses))
	ch <- prometheus.MustNewConstMetric(descCacheCoal, prometheus.CounterValue, float64(cs.Coalesced))
	ch <- prometheus.MustNewConstMetric(descCacheEvict, prometheus.CounterValue, float64(cs.Evictions))
	ch <- prometheus.MustNewConstMetric(descCacheSize, prometheus.GaugeValue, float64(cs.Entries))
	ch <- prometheus.MustNewConstMetric(descCacheCap, prometheus.GaugeValue, float64(cs.Capacity))
	ch <- prometheus.MustNewConstMetric(descRefusedHit, prometheus.CounterValue, float64(refusedHits))
	ch <- prometheus.MustNewConstMetric(descRefusedLen, prometheus.GaugeValue, float64(refusedLen))
}

// AuditCollector exports the audit log's counters and queue length.
func AuditCollector(c *audit.Counters, queued func() int) prometheus.Collector {
	return &auditCollector{c: c, queued: queued}
}

var (
	descAuditRecords = prometheus.NewDesc("vaultwall_audit_records_total",
		"Decisions handed to the audit log, by result: written; dropped (queue full: checks never wait); failed (sink error).", []string{"result"}, nil)
	descAuditQueue = prometheus.NewDesc("vaultwall_audit_queue_length", "Decisions waiting to be written to the audit log.", nil, nil)
)

type auditCollector struct {
	c      *audit.Counters
	queued func() int
}

func (a *auditCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descAuditRecords
	ch <- descAuditQueue
}

func (a *auditCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descAuditRecords, prometheus.CounterValue, float64(a.c.Written.Load()), "written")
	ch <- prometheus.MustNewConstMetric(descAuditRecords, prometheus.CounterValue, float64(a.c.Dropped.Load()), "dropped")
	ch <- prometheus.MustNewConstMetric(descAuditRecords, prometheus.CounterValue, float64(a.c.Failed.Load()), "failed")
	ch <- prometheus.MustNewConstMetric(descAuditQueue, prometheus.GaugeValue, float64(a.queued()))
}

// ShadowCollector exports shadow evaluation's counters.
func ShadowCollector(s *shadow.Stats) prometheus.Collector { return &shadowCollector{s: s} }

var (
	descShadowEval  = prometheus.NewDesc("vaultwall_shadow_evaluations_total", "Decisions decided again with the shadow candidate.", nil, nil)
	descShadowDrop  = prometheus.NewDesc("vaultwall_shadow_dropped_total", "Sampled decisions the shadow queue had no room for.", nil, nil)
	descShadowSkip  = prometheus.NewDesc("vaultwall_shadow_skipped_total", "Sampled decisions not evaluated: no candidate loaded, or no request.", nil, nil)
	descShadowDiffs = prometheus.NewDesc("vaultwall_shadow_differences_total",
		"Decisions the candidate makes differently: would_deny (enforced allowed), would_allow (enforced refused), changed (another refusal); by the stage that refuses.",
		[]string{"kind", "stage"}, nil)
)

type shadowCollector struct{ s *shadow.Stats }

func (c *shadowCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descShadowEval
	ch <- descShadowDrop
	ch <- descShadowSkip
	ch <- descShadowDiffs
}

func (c *shadowCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descShadowEval, prometheus.CounterValue, float64(c.s.Evaluated.Load()))
	ch <- prometheus.MustNewConstMetric(descShadowDrop, prometheus.CounterValue, float64(c.s.Dropped.Load()))
	ch <- prometheus.MustNewConstMetric(descShadowSkip, prometheus.CounterValue, float64(c.s.Skipped.Load()))
	for _, k := range shadow.Kinds {
		for s := range nStages {
			ch <- prometheus.MustNewConstMetric(descShadowDiffs, prometheus.CounterValue,
				float64(c.s.Differences(k, authz.Stage(s))), k.String(), authz.Stage(s).String())
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
