// Command floor is the load benchmark's floor: an ext_authz v3 server that
// answers OK without looking at the request. It listens with the gRPC
// options vaultwall serves with (envoy.GRPCServerOptions) and registers the
// same health and reflection services, so that what separates it from
// vaultwall under `make bench` is the decision and nothing else.
//
// Imports: envoy (for the server options), config, grpc,
// go-control-plane.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/envoy"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9191", "gRPC listen address")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

// floor answers every Check with OK.
type floor struct {
	authv3.UnimplementedAuthorizationServer
}

var ok = &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(code.Code_OK)}}

func (floor) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return ok, nil
}

func run(addr string) error {
	opts := envoy.GRPCServerOptions(envoy.ServerOptions{MaxRecvMsgBytes: config.DefaultMaxRecvMsgBytes})
	g := grpc.NewServer(opts...)
	authv3.RegisterAuthorizationServer(g, floor{})
	hs := health.NewServer()
	hs.SetServingStatus(envoy.HealthService, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(g, hs)
	reflection.Register(g)
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		g.GracefulStop()
	}()
	return g.Serve(lis)
}
