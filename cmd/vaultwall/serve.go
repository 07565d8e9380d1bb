package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vaultwall/vaultwall/authz/config"
	"github.com/vaultwall/vaultwall/controlplane"
	"github.com/vaultwall/vaultwall/engine"
	"github.com/vaultwall/vaultwall/ops"
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
			return serve(ctx, path, grpcAddr, httpAddr, cfg, log)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "configuration file (required)")
	cmd.Flags().StringVar(&grpcAddr, "grpc-addr", "", "override server.grpcAddr (ext_authz + health)")
	cmd.Flags().StringVar(&httpAddr, "http-addr", "", "override server.httpAddr (/metrics, /healthz, /readyz)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func serve(ctx context.Context, path, grpcAddr, httpAddr string, cfg *config.Config, log *slog.Logger) error {
	st, err := ops.New(ctx, path, cfg, ops.Options{Log: log, Version: version})
	if err != nil {
		return err
	}
	defer func() {
		shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = st.Close(shut)
	}()
	opts := st.ServeOptions(engine.ServeOptions{
		ConfigPath: path,
		GRPCAddr:   grpcAddr,
		HTTPAddr:   httpAddr,
		Log:        log,
	})
	if cfg.ControlPlane.Enabled {
		cp, err := controlplane.Open(ctx, controlplane.Options{Config: cfg, Keys: st.Keys(), Build: st.Builder().Build, Log: log})
		if err != nil {
			return err
		}
		defer cp.Close()
		cp.Wire(&opts)
	}
	return engine.Serve(ctx, opts)
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
