package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/vaultwall/vaultwall/engine"
)

// healthInterval is how often gRPC health re-evaluates readiness between
// reloads (probes such as an issuer's first key fetch change on their own).
const healthInterval = time.Second

// servingSetter is the gRPC health service's switch (envoy.Server).
type servingSetter interface{ SetServing(bool) }

// healthGate keeps gRPC health (both service names) in step with /readyz:
// SERVING exactly when Ready holds for the runtime in force.
type healthGate struct {
	eng    *engine.Fleet
	srv    servingSetter
	probes []engine.ProbeFunc
	log    *slog.Logger

	mu      sync.Mutex
	known   bool
	serving bool
	// stopWait ends the previous runtime's wait for keys (one waiter at
	// a time, however many reloads a down issuer sees).
	stopWait context.CancelFunc
}

// update evaluates readiness for the runtime in force now and reports it.
// Serialised, so a tick that started before a swap cannot overwrite the
// swap's verdict with the old runtime's.
func (h *healthGate) update() {
	h.mu.Lock()
	defer h.mu.Unlock()
	ready, probes := engine.ReadySet(h.eng.Set(), h.probes)
	h.srv.SetServing(ready)
	if h.known && ready == h.serving {
		return
	}
	was := h.known
	h.known, h.serving = true, ready
	if ready {
		h.log.Info("gRPC health SERVING: ready")
		return
	}
	var failing []string
	for _, p := range probes {
		if !p.Ready {
			failing = append(failing, p.Name)
		}
	}
	if !was { // starting up: keys are usually a moment away
		h.log.Info("gRPC health NOT_SERVING until ready (see /readyz)", "failing", failing)
		return
	}
	h.log.Warn("gRPC health NOT_SERVING: not ready (see /readyz)", "failing", failing)
}

// run re-evaluates readiness every healthInterval, and as soon as the
// runtime's issuers first have keys, until ctx ends.
func (h *healthGate) run(ctx context.Context) {
	t := time.NewTicker(healthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.update()
		}
	}
}

// onSwap follows a new set of vaults: health now, and again once their
// issuers have keys (without waiting for the next tick).
func (h *healthGate) onSwap(ctx context.Context, s *engine.Set) {
	h.update()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopWait != nil {
		h.stopWait()
		h.stopWait = nil
	}
	wctx, cancel := context.WithCancel(ctx)
	h.stopWait = cancel
	go func() {
		defer cancel()
		for _, rt := range s.Runtimes {
			if rt.Authenticator != nil && rt.Authenticator.WaitReady(wctx) != nil {
				return
			}
		}
		h.update()
	}()
}
