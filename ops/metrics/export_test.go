package metrics

// CacheMetricNames are the decision cache's series, for the test that
// requires each to be documented.
func CacheMetricNames() []string {
	out := make([]string, len(cacheMetrics))
	for i, m := range cacheMetrics {
		out[i] = m.name
	}
	return out
}
