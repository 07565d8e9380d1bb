package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/vaultwall/vaultwall/envoy"
)

// ServeOptions wire one vaultwall process.
type ServeOptions struct {
	ConfigPath string
	// GRPCAddr and HTTPAddr override the configuration's server addresses.
	GRPCAddr, HTTPAddr string
	Build              BuildFunc
	Log                *slog.Logger
	Observer           envoy.Observer
	Registry           *prometheus.Registry
	Probes             []ProbeFunc
	GRPCOptions        []grpc.ServerOption
	// Poll is the fallback re-check period of the watcher (default 5s).
	Poll time.Duration
	// Listening, when set, is told the bound addresses (tests use port 0)
	// before anything is served; an error stops Serve.
	Listening func(grpcAddr, httpAddr net.Addr) error
	// OnSwap runs after each successful load, besides updating the server.
	OnSwap []func(*Runtime)
	// Overlay, when set, is laid over the configuration file on every load
	// (the control plane's stored properties).
	Overlay Overlay
	// Services run beside the listeners from the first successful load
	// until ctx ends (the control plane); an error stops Serve.
	Services []func(ctx context.Context, eng *Engine) error
}

// Serve loads the configuration (failing fast if the first one does not
// build), serves ext_authz + health over gRPC and /healthz, /readyz,
// /metrics over HTTP, reloads on change, and stops gracefully when ctx ends
// (SIGTERM): health turns NOT_SERVING first so Envoy drains, then in-flight
// checks finish within server.shutdownGrace.
//
// gRPC health (both "" and envoy.HealthService) follows the same rule as
// /readyz (Ready with o.Probes): re-evaluated on every reload, as soon as
// a new runtime's issuers have keys, and every second.
func Serve(ctx context.Context, o ServeOptions) error {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := envoy.NewServer(log, o.Observer)
	healthCtx, stopHealth := context.WithCancel(ctx)
	defer stopHealth()
	health := &healthGate{srv: srv, probes: o.Probes, log: log}
	swaps := append([]func(*Runtime){func(rt *Runtime) {
		srv.SetPipeline(rt.Pipeline)
		health.onSwap(healthCtx, rt)
	}}, o.OnSwap...)
	eng := New(o.ConfigPath, o.Build, log, swaps...)
	health.eng = eng
	if o.Overlay != nil {
		eng.SetOverlay(o.Overlay)
	}
	if o.Registry != nil {
		o.Registry.MustRegister(NewStatusCollector(eng, "enforced"))
	}
	if err := eng.Load(ctx); err != nil {
		return fmt.Errorf("configuration %s: %w", o.ConfigPath, err)
	}
	cfg := eng.Current().Config
	grpcAddr, httpAddr := cfg.Server.GRPCAddr, cfg.Server.HTTPAddr
	if o.GRPCAddr != "" {
		grpcAddr = o.GRPCAddr
	}
	if o.HTTPAddr != "" {
		httpAddr = o.HTTPAddr
	}

	g, err := envoy.NewGRPCServer(srv, cfg.Server, o.GRPCOptions...)
	if err != nil {
		return err
	}
	gl, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return fmt.Errorf("gRPC listener: %w", err)
	}
	hl, err := net.Listen("tcp", httpAddr)
	if err != nil {
		gl.Close()
		return fmt.Errorf("HTTP listener: %w", err)
	}
	var gatherer prometheus.Gatherer
	if o.Registry != nil {
		gatherer = o.Registry
	}
	hs := &http.Server{Handler: eng.Handler(gatherer, o.Probes...), ReadHeaderTimeout: 5 * time.Second}
	if o.Listening != nil {
		if err := o.Listening(gl.Addr(), hl.Addr()); err != nil {
			gl.Close()
			hl.Close()
			return err
		}
	}
	log.Info("vaultwall serving", "grpc", gl.Addr().String(), "http", hl.Addr().String(),
		"tls", cfg.Server.TLS.Enabled(), "mtls", cfg.Server.TLS.ClientCAFile != "", "reflection", cfg.Server.Reflection)

	errc := make(chan error, 3+len(o.Services))
	svcCtx, stopServices := context.WithCancel(ctx)
	var services sync.WaitGroup
	defer func() { stopServices(); services.Wait() }()
	for _, run := range o.Services {
		services.Go(func() {
			if err := run(svcCtx, eng); err != nil && svcCtx.Err() == nil {
				errc <- err
			}
		})
	}
	go health.run(healthCtx)
	go func() { errc <- g.Serve(gl) }()
	go func() {
		if err := hs.Serve(hl); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		if err := eng.Watch(watchCtx, o.Poll); err != nil {
			log.Error("configuration watcher stopped", "error", err)
		}
	}()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	log.Info("shutting down")
	srv.Shutdown()
	grace := eng.Current().Config.Server.ShutdownGrace.D()
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
