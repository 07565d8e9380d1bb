package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/server"
)

func newServeCmd() *cobra.Command {
	var path, grpcAddr, httpAddr, addrFile string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "serve ext_authz (gRPC) for Envoy, and /metrics, /healthz, /readyz (HTTP)",
		Long: "Serve Envoy's ext_authz v3 and grpc.health.v1 on server.grpcAddr and /metrics, /healthz and\n" +
			"/readyz on server.httpAddr. The configuration and policy directory are reloaded when they change;\n" +
			"one that does not validate is refused and the running one kept. SIGHUP reloads at once, even when\n" +
			"nothing changed (issuer keys fetched afresh, a new generation). SIGTERM stops gracefully.\n\n" +
			"With --addr-file, the bound addresses are written to FILE as JSON ({\"grpc\":\"127.0.0.1:41234\",\n" +
			"\"http\":\"127.0.0.1:41235\"}, plus \"admin\" with the control plane) once every listener is open,\n" +
			"so a supervisor or a test can use port 0. The file appears whole (written aside, then renamed);\n" +
			"readiness is still /readyz.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// SIGHUP reloads instead of killing, from the start: a signal
			// that arrives before the first load is served after it.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			log := newLogger(cfg.Log)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, path, grpcAddr, httpAddr, addrFile, cfg, log, hup)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "configuration file (required)")
	cmd.Flags().StringVar(&grpcAddr, "grpc-addr", "", "override server.grpcAddr (ext_authz + health)")
	cmd.Flags().StringVar(&httpAddr, "http-addr", "", "override server.httpAddr (/metrics, /healthz, /readyz)")
	cmd.Flags().StringVar(&addrFile, "addr-file", "", "write the bound addresses to this file as JSON once listening (for port 0)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func serve(ctx context.Context, path, grpcAddr, httpAddr, addrFile string, cfg *config.Config, log *slog.Logger, hup <-chan os.Signal) error {
	o := server.Options{ConfigPath: path, Config: cfg, GRPCAddr: grpcAddr, HTTPAddr: httpAddr, Log: log, Version: version, Reload: hup}
	if addrFile != "" {
		o.Listening = func(a server.Addrs) error { return writeAddrFile(addrFile, a) }
	}
	return server.Serve(ctx, o)
}

// writeAddrFile writes the bound addresses as JSON beside path and renames
// the result into place, so a reader polling for path never sees half a file.
func writeAddrFile(path string, a server.Addrs) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("--addr-file: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("--addr-file: %w", err)
	}
	return nil
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
