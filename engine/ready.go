package engine

// Probe is one readiness condition beyond the configuration itself (for
// example: every issuer has a key set).
type Probe struct {
	Name   string `json:"name"`
	Ready  bool   `json:"ready"`
	Detail any    `json:"detail,omitempty"`
}

// ProbeFunc reports extra readiness conditions for the current runtime.
type ProbeFunc func(rt *Runtime) []Probe

// Ready is the one readiness rule, for /readyz and gRPC health alike: a
// runtime is loaded and every probe passes. It returns the probes' results.
func Ready(rt *Runtime, probes []ProbeFunc) (bool, []Probe) {
	if rt == nil {
		return false, nil
	}
	ready := true
	var all []Probe
	for _, p := range probes {
		for _, pr := range p(rt) {
			ready = ready && pr.Ready
			all = append(all, pr)
		}
	}
	return ready, all
}
