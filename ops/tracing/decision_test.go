package tracing_test

import (
	"context"
	"net"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/envoy"
	"github.com/vaultwall/vaultwall/ops/opstest"
	"github.com/vaultwall/vaultwall/ops/tracing"
)

// A decision made outside a Check call (Explain, vaultwall check) gets its
// stages' spans and no Check span: the Check span is the call's.
func TestDecisionOutsideCheckHasNoCheckSpan(t *testing.T) {
	ratio := 1.0
	exp := tracetest.NewInMemoryExporter()
	tr := tracing.NewWithExporter(exp, config.Tracing{SamplingRatio: &ratio}, "test", sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	r := opstest.New(t)
	r.Builder.Tracer = tr
	srv := r.Server(r.Runtime(r.WriteConfig("vault.yaml", "")), nil)
	srv.Decide(t.Context(), opstest.Check(r.Token(), "203.0.113.10", "GET", "/secrets/db?api-version=7.5",
		"traceparent", "00-"+envoyTrace+"-"+envoySpan+"-"+sampledFlag))
	var names []string
	for _, s := range exp.GetSpans() {
		names = append(names, s.Name)
		if s.Name == "ext_authz.Check" || s.Parent.IsValid() {
			t.Errorf("span %s (parent %s): want root stage spans only", s.Name, s.Parent.SpanID())
		}
	}
	if len(names) != 4 {
		t.Errorf("spans %v, want the four stages'", names)
	}
}

// A Check that never reaches a pipeline (none loaded yet) still gets its
// Check span, without stage spans.
func TestCheckWithoutPipelineHasItsSpan(t *testing.T) {
	ratio := 1.0
	exp := tracetest.NewInMemoryExporter()
	tr := tracing.NewWithExporter(exp, config.Tracing{SamplingRatio: &ratio}, "test", sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	g := grpc.NewServer(grpc.ChainUnaryInterceptor(tr.UnaryInterceptor()))
	envoy.NewServer(nil, nil).Register(g)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(l) }()
	t.Cleanup(g.Stop)
	cc, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	if _, err := authv3.NewAuthorizationClient(cc).Check(t.Context(), opstest.Check("", "203.0.113.10", "GET", "/secrets")); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Name != "ext_authz.Check" {
		t.Fatalf("%d spans, want the Check span alone", len(spans))
	}
}
