package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/controlplane"
	"github.com/vaultwall/vaultwall/engine"
	"github.com/vaultwall/vaultwall/envoy"
	"github.com/vaultwall/vaultwall/ops/metrics"
	"github.com/vaultwall/vaultwall/ops/shadow"
)

// Options are what `vaultwall serve` takes besides the configuration file:
// the command line's overrides and, for tests, a few seams.
type Options struct {
	// ConfigPath is the configuration file (required).
	ConfigPath string
	// Config is the configuration as loaded at start (nil: Serve loads
	// ConfigPath). Its controlPlane section and listen addresses are read
	// once; everything else follows reloads.
	Config *config.Config
	// GRPCAddr and HTTPAddr override server.grpcAddr and server.httpAddr.
	GRPCAddr, HTTPAddr string
	Log                *slog.Logger
	Version            string
	// Listening is told the bound addresses once every listener is open
	// (the control plane's too, when enabled), before anything is served
	// on the data plane; an error stops Serve.
	Listening func(Addrs) error
	// Reload asks for a reload at once on each receive (SIGHUP): issuer
	// keys are fetched afresh and a new generation goes into force.
	Reload <-chan os.Signal
	// Poll is the fallback re-check period of the configuration watcher and
	// of the shadow candidate's (default 5s).
	Poll time.Duration

	// Store configures the key store (tests: an issuer's HTTP client); its
	// OnRefresh, if any, is called after the metrics'.
	Store token.StoreOptions
	// Registry receives the metrics; nil creates one with the Go and
	// process collectors.
	Registry *prometheus.Registry
	// Stdout is the audit log's stdout sink (default os.Stdout).
	Stdout io.Writer
	// Now is the decision clock (default time.Now).
	Now func() time.Time
	// OnShadowDifference, when set, also receives shadow differences.
	OnShadowDifference func(shadow.Difference)
}

// Addrs are the bound listen addresses (serve's --addr-file).
type Addrs struct {
	GRPC  string `json:"grpc"`
	HTTP  string `json:"http"`
	Admin string `json:"admin,omitempty"`
}

// Serve is `vaultwall serve`: everything that runs in the process is
// assembled here, in the order it starts, and stopped in reverse.
//
//  1. Operations: key store, tracer, metrics, audit log, shadow evaluator
//     and the engine.Builder (Stack).
//  2. The control plane, when enabled: its store(s), overlay(s) and admin
//     API (one state per vault with vaults.dir).
//  3. The ext_authz server and the engine that feeds it; every swap goes to
//     the server, gRPC health, the operations and the control plane.
//  4. The first load, failing fast when it does not build.
//  5. Listeners: gRPC (ext_authz + health) and HTTP (/healthz, /readyz,
//     /metrics); the admin API opens its own.
//  6. Until ctx ends (SIGTERM) or one fails: serving, readiness, the
//     configuration watcher, reloads on Reload, the control plane.
//  7. Graceful stop: health turns NOT_SERVING so Envoy drains, in-flight
//     checks finish within server.shutdownGrace, the audit log drains.
//
// gRPC health (both "" and envoy.HealthService) follows the same rule as
// /readyz (engine.Ready): re-evaluated on every reload, as soon as a new
// runtime's issuers have keys, and every second.
func Serve(ctx context.Context, o Options) (err error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
		o.Log = log
	}
	cfg := o.Config
	if cfg == nil {
		if cfg, err = config.Load(o.ConfigPath); err != nil {
			return err
		}
	}
	// fail stops Serve from a callback that cannot return an error.
	ctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	defer func() {
		if cause := context.Cause(ctx); err == nil && cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause
		}
	}()

	// 1. Operations.
	st, err := NewStack(ctx, o.ConfigPath, cfg, o)
	if err != nil {
		return err
	}
	defer func() {
		shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = st.Close(shut)
	}()
	addrs := &addrGate{admin: cfg.ControlPlane.Enabled, listening: o.Listening}

	// 2. The control plane.
	var cp *controlplane.Server
	if cfg.ControlPlane.Enabled {
		cp, err = controlplane.Open(ctx, controlplane.Options{Config: cfg, Keys: st.Keys(), Build: st.Builder().Build, Log: log,
			Listening: func(a net.Addr) {
				if err := addrs.adminListening(a); err != nil {
					fail(err) // a supervisor waiting for the addresses must not wait forever
				}
			}})
		if err != nil {
			return err
		}
		defer cp.Close()
	}

	// 3. The ext_authz server and the engine.
	srv := envoy.NewServer(log, st)
	probes := []engine.ProbeFunc{engine.IssuerProbe, engine.PolicyProbe, st.probe}
	healthCtx, stopHealth := context.WithCancel(ctx)
	defer stopHealth()
	health := &healthGate{srv: srv, probes: probes, log: log}
	swaps := []func(*engine.Set){
		func(s *engine.Set) { srv.SetVaults(s.Vaults); health.onSwap(healthCtx, s) },
		st.OnSwap,
	}
	if cp != nil {
		swaps = append(swaps, cp.SwapSet)
	}
	eng := engine.NewFleet(o.ConfigPath, st.Builder().Build, log, swaps...)
	health.eng = eng
	if cp != nil {
		// One state per vault with vaults.dir (each vault's Engine lays
		// its own over its composed configuration), else the one vault's.
		if cp.Multi() {
			eng.SetVaultOverlays(cp)
			eng.SetVaultSource(cp)
		} else {
			eng.SetOverlay(cp.Overlay())
		}
	}
	st.Registry().MustRegister(metrics.NewStatusCollector(eng, "enforced"))

	// 4. The first load.
	if err := eng.Load(ctx); err != nil {
		return fmt.Errorf("configuration %s: %w", o.ConfigPath, err)
	}

	// 5. Listeners.
	cur := eng.Main()
	grpcAddr, httpAddr := cur.Server.GRPCAddr, cur.Server.HTTPAddr
	if o.GRPCAddr != "" {
		grpcAddr = o.GRPCAddr
	}
	if o.HTTPAddr != "" {
		httpAddr = o.HTTPAddr
	}
	tc, err := cur.Server.TLS.Load("server.tls", tls.RequireAndVerifyClientCert) // mTLS: Envoy must present a certificate
	if err != nil {
		return err
	}
	g := envoy.NewGRPCServer(srv, envoy.ServerOptions{TLS: tc, Reflection: cur.Server.Reflection,
		MaxRecvMsgBytes: cur.Server.MaxRecvMsgBytes}, st.GRPCServerOptions()...)
	gl, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return fmt.Errorf("gRPC listener: %w", err)
	}
	hl, err := net.Listen("tcp", httpAddr)
	if err != nil {
		gl.Close()
		return fmt.Errorf("HTTP listener: %w", err)
	}
	hs := &http.Server{Handler: Handler(eng, st.Registry(), probes...), ReadHeaderTimeout: 5 * time.Second}
	if err := addrs.dataListening(gl.Addr(), hl.Addr()); err != nil {
		gl.Close()
		hl.Close()
		return err
	}
	log.Info("vaultwall serving", "grpc", gl.Addr().String(), "http", hl.Addr().String(),
		"tls", cur.Server.TLS.Enabled(), "mtls", cur.Server.TLS.ClientCAFile != "", "reflection", cur.Server.Reflection)

	// 6. Serve until ctx ends or something fails.
	errc := make(chan error, 3)
	svcCtx, stopServices := context.WithCancel(ctx)
	var services sync.WaitGroup
	defer func() { stopServices(); services.Wait() }()
	services.Go(func() { health.run(svcCtx) })
	services.Go(func() {
		if err := eng.Watch(svcCtx, o.Poll); err != nil {
			log.Error("configuration watcher stopped", "error", err)
		}
	})
	if o.Reload != nil {
		services.Go(func() { reloadOn(svcCtx, o.Reload, eng, log) })
	}
	if cp != nil {
		services.Go(func() {
			if err := cp.Run(svcCtx, eng); err != nil && svcCtx.Err() == nil {
				errc <- err
			}
		})
	}
	go func() { errc <- g.Serve(gl) }()
	go func() {
		if err := hs.Serve(hl); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}

	// 7. Graceful stop.
	log.Info("shutting down")
	srv.Shutdown()
	grace := eng.Main().Server.ShutdownGrace.D()
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(grace):
		g.Stop()
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	_ = hs.Shutdown(shutCtx)
	return serveErr
}

// reloadOn reloads the engine on each signal from sig (SIGHUP) until ctx
// ends. A refused configuration is logged by the engine and the running one
// stays, as for a reload on change.
func reloadOn(ctx context.Context, sig <-chan os.Signal, eng *engine.Fleet, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-sig:
			log.Info("reload requested", "signal", s.String())
			_ = eng.Reload(ctx)
		}
	}
}

// addrGate tells Options.Listening the addresses once every listener is
// open: the gRPC and HTTP ones, and the control plane's when it is enabled
// (it opens last, from the control plane's Run).
type addrGate struct {
	admin     bool
	listening func(Addrs) error

	mu    sync.Mutex
	addrs Addrs
}

func (a *addrGate) dataListening(g, h net.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.addrs.GRPC, a.addrs.HTTP = g.String(), h.String()
	if a.admin || a.listening == nil {
		return nil
	}
	return a.listening(a.addrs)
}

func (a *addrGate) adminListening(l net.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.addrs.Admin = l.String()
	if a.listening == nil {
		return nil
	}
	return a.listening(a.addrs)
}
