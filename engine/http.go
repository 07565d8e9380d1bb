package engine

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

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

// Handler serves /healthz (liveness), /readyz (ready only when a
// configuration and policy are loaded and every probe passes) and /metrics.
func (e *Engine) Handler(gatherer prometheus.Gatherer, probes ...ProbeFunc) http.Handler {
	mux := http.NewServeMux()
	started := time.Now()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "uptime": time.Since(started).Round(time.Second).String()})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		st := e.Status()
		ready, all := Ready(e.Current(), probes)
		code := http.StatusOK
		if !ready {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, map[string]any{"ready": ready, "config": st, "probes": all})
	})
	if gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
