package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaultwall/vaultwall/engine"
)

// cacheCollector exports the decision caches' counters, summed over the
// vaults in force. Each reload builds new caches, so the counters restart
// with it (Prometheus reads that as a counter reset).
type cacheCollector struct {
	current func() []*engine.Runtime
	descs   map[string]*prometheus.Desc
}

// cacheMetrics are the exported series: name → help.
var cacheMetrics = []struct {
	name, help string
	kind       prometheus.ValueType
}{
	{"vaultwall_policy_cache_hits_total", "Authorization verdicts served from the decision cache.", prometheus.CounterValue},
	{"vaultwall_policy_cache_misses_total", "Policy evaluations done for the decision cache (misses).", prometheus.CounterValue},
	{"vaultwall_policy_cache_coalesced_total", "Authorizations that waited for a concurrent evaluation of the same input.", prometheus.CounterValue},
	{"vaultwall_policy_cache_evictions_total", "Verdicts dropped from the decision cache (full or expired).", prometheus.CounterValue},
	{"vaultwall_policy_cache_entries", "Verdicts held in the decision cache.", prometheus.GaugeValue},
	{"vaultwall_policy_cache_enabled", "1 when the loaded policy's verdicts are cached, 0 when it reads per-request input or volatile builtins.", prometheus.GaugeValue},
}

// CacheCollector exports the authorization decision cache of the runtime
// current returns (nil: nothing). The verified-token cache is exported by
// the metrics package, which carries its counters across reloads.
func CacheCollector(current func() []*engine.Runtime) prometheus.Collector {
	c := &cacheCollector{current: current, descs: map[string]*prometheus.Desc{}}
	for _, m := range cacheMetrics {
		c.descs[m.name] = prometheus.NewDesc(m.name, m.help, nil, nil)
	}
	return c
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	values := map[string]float64{}
	for _, rt := range c.current() {
		if rt == nil || rt.Policy == nil {
			continue
		}
		s := rt.Policy.CacheStats()
		values["vaultwall_policy_cache_hits_total"] += float64(s.Hits)
		values["vaultwall_policy_cache_misses_total"] += float64(s.Misses)
		values["vaultwall_policy_cache_coalesced_total"] += float64(s.Coalesced)
		values["vaultwall_policy_cache_evictions_total"] += float64(s.Evictions)
		values["vaultwall_policy_cache_entries"] += float64(s.Entries)
		enabled := values["vaultwall_policy_cache_enabled"] // 1 when any vault's verdicts are cached
		if s.Disabled == "" {
			enabled = 1
		}
		values["vaultwall_policy_cache_enabled"] = enabled
	}
	for _, m := range cacheMetrics {
		if v, ok := values[m.name]; ok {
			ch <- prometheus.MustNewConstMetric(c.descs[m.name], m.kind, v)
		}
	}
}
