package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaultwall/vaultwall/engine"
)

// StatusCollector exports an engine's Status as metrics, read at scrape
// time: the generation in force (configuration and policy are built, and
// so counted, together), whether one is loaded, reload failures, whether
// the last attempt failed, and when the current one was loaded. The config
// label tells the enforced configuration from a shadow candidate. With
// vaults.dir the figures are the fleet's: loaded only when every vault's
// file is, failures summed, the last attempt failed when any vault's did,
// policy files summed, and vaultwall_vaults counts the vaults in force.
type StatusCollector struct {
	e                                                                       *engine.Fleet
	generation, loaded, failures, lastFailed, loadedAt, policyFiles, vaults *prometheus.Desc
}

// NewStatusCollector returns a collector for e, labelled config=name.
func NewStatusCollector(e *engine.Fleet, name string) *StatusCollector {
	l := prometheus.Labels{"config": name}
	return &StatusCollector{
		e:           e,
		generation:  prometheus.NewDesc("vaultwall_config_generation", "Generation of the configuration and policy in force (1 for the first load).", nil, l),
		loaded:      prometheus.NewDesc("vaultwall_config_loaded", "1 when a configuration and policy are loaded.", nil, l),
		failures:    prometheus.NewDesc("vaultwall_config_reload_failures_total", "Configuration or policy loads refused (the running one stayed in force).", nil, l),
		lastFailed:  prometheus.NewDesc("vaultwall_config_last_reload_failed", "1 when the last load attempt was refused.", nil, l),
		loadedAt:    prometheus.NewDesc("vaultwall_config_loaded_timestamp_seconds", "When the configuration in force was loaded (Unix time).", nil, l),
		policyFiles: prometheus.NewDesc("vaultwall_policy_files", "Operator policy files in force (0: the shipped policy alone).", nil, l),
		vaults:      prometheus.NewDesc("vaultwall_vaults", "Vaults in force.", nil, l),
	}
}

func (c *StatusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.generation
	ch <- c.loaded
	ch <- c.failures
	ch <- c.lastFailed
	ch <- c.loadedAt
	ch <- c.policyFiles
	ch <- c.vaults
}

func (c *StatusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.e.Status()
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	ch <- prometheus.MustNewConstMetric(c.generation, prometheus.GaugeValue, float64(st.Generation))
	ch <- prometheus.MustNewConstMetric(c.loaded, prometheus.GaugeValue, b(st.Loaded))
	ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(st.Failures))
	ch <- prometheus.MustNewConstMetric(c.lastFailed, prometheus.GaugeValue, b(st.LastError != ""))
	if st.Loaded {
		ch <- prometheus.MustNewConstMetric(c.loadedAt, prometheus.GaugeValue, float64(st.LoadedAt.UnixNano())/1e9)
	}
	if set := c.e.Set(); set != nil {
		files := 0
		for _, rt := range set.Runtimes {
			files += len(rt.PolicyFiles)
		}
		ch <- prometheus.MustNewConstMetric(c.policyFiles, prometheus.GaugeValue, float64(files))
		ch <- prometheus.MustNewConstMetric(c.vaults, prometheus.GaugeValue, float64(len(set.Runtimes)))
	}
}
