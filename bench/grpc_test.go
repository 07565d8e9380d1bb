package bench_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vaultwall/vaultwall/bench/workload"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/envoy"
	"github.com/vaultwall/vaultwall/ops/metrics"
)

type floorServer struct {
	authv3.UnimplementedAuthorizationServer
}

var floorOK = &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(code.Code_OK)}}

func (floorServer) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return floorOK, nil
}

// BenchmarkCheckGRPC is make bench in one process: the workload's mix of
// CheckRequests over a loopback gRPC connection, answered by the floor
// (bench/floor's no-op server) or by vaultwall's envoy.Server with the
// metrics observer and interceptors `vaultwall serve` installs. cpu-ns/op
// is the whole process's CPU (client and server); profile it with
// -cpuprofile and focus on the server side.
func BenchmarkCheckGRPC(b *testing.B) {
	srv, _, w := server(b, workload.Options{IPRules: 10, SubnetRules: 2, AccessPolicies: 10})
	for _, name := range []string{"floor", "vaultwall"} {
		b.Run(name, func(b *testing.B) {
			m := metrics.New(prometheus.NewRegistry())
			opts := envoy.GRPCServerOptions(envoy.ServerOptions{MaxRecvMsgBytes: config.DefaultMaxRecvMsgBytes})
			if name == "vaultwall" {
				opts = append(opts, m.GRPCServerOptions()...)
			}
			g := grpc.NewServer(opts...)
			if name == "floor" {
				authv3.RegisterAuthorizationServer(g, floorServer{})
			} else {
				vw := envoy.NewServer(nil, m)
				vw.SetVaults(srv.Vaults())
				vw.Register(g)
			}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go func() { _ = g.Serve(l) }()
			defer g.Stop()
			conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			c := authv3.NewAuthorizationClient(conn)
			ctx := b.Context()
			for _, r := range w.Requests[:2000] {
				if _, err := c.Check(ctx, r.Check); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			cpu := cpuTime()
			b.SetParallelism(8)
			var next atomicCounter
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.add() % uint64(len(w.Requests))
					if _, err := c.Check(ctx, w.Requests[i].Check); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

type atomicCounter struct{ n atomic.Uint64 }

func (a *atomicCounter) add() uint64 { return a.n.Add(1) }
