package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/vaultwall/vaultwall/authz/config"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/engine"
)

func newServeCmd() *cobra.Command {
	var path, grpcAddr, httpAddr string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "serve ext_authz (gRPC) for Envoy, and /metrics, /healthz, /readyz (HTTP)",
		Long: "Serve Envoy's ext_authz v3 and grpc.health.v1 on server.grpcAddr and /metrics, /healthz and\n" +
			"/readyz on server.httpAddr. The configuration and policy directory are reloaded when they change;\n" +
			"one that does not validate is refused and the running one kept. SIGTERM stops gracefully.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			log := newLogger(cfg.Log)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, path, grpcAddr, httpAddr, log)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "configuration file (required)")
	cmd.Flags().StringVar(&grpcAddr, "grpc-addr", "", "override server.grpcAddr (ext_authz + health)")
	cmd.Flags().StringVar(&httpAddr, "http-addr", "", "override server.httpAddr (/metrics, /healthz, /readyz)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func serve(ctx context.Context, path, grpcAddr, httpAddr string, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	var current atomic.Pointer[engine.Runtime]
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		engine.CacheCollector(current.Load))
	keys := token.NewKeyStore(token.StoreOptions{Logger: log})
	defer keys.Close()
	b := &engine.Builder{Keys: keys, Log: log}
	return engine.Serve(ctx, engine.ServeOptions{
		ConfigPath: path,
		GRPCAddr:   grpcAddr,
		HTTPAddr:   httpAddr,
		Build:      b.Build,
		Log:        log,
		Registry:   reg,
		Probes:     []engine.ProbeFunc{engine.IssuerProbe},
		OnSwap:     []func(*engine.Runtime){current.Store},
	})
}

func newLogger(c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}
