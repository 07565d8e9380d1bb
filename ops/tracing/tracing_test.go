package tracing_test

import (
	"context"
	"net"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/ops/opstest"
	"github.com/vaultwall/vaultwall/ops/tracing"
)

const (
	envoyTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	envoySpan   = "00f067aa0ba902b7"
	grpcTrace   = "0af7651916cd43dd8448eb211c80319c"
	grpcSpan    = "b7ad6b7169203331"
	sampledFlag = "01"
)

type rig struct {
	exp    *tracetest.InMemoryExporter
	client authv3.AuthorizationClient
	tok    string
}

// newRig serves ext_authz over real gRPC with the tracer's interceptor and
// a pipeline traced by the same tracer.
func newRig(t *testing.T, ratio float64) *rig {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tr := tracing.NewWithExporter(exp, config.Tracing{SamplingRatio: &ratio}, "test", sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	r := opstest.New(t)
	r.Builder.Tracer = tr
	srv := r.Server(r.Runtime(r.WriteConfig("vault.yaml", "")), nil)
	g := grpc.NewServer(grpc.ChainUnaryInterceptor(tr.UnaryInterceptor()))
	srv.Register(g)
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
	rg := &rig{exp: exp, client: authv3.NewAuthorizationClient(cc)}
	rg.tok = r.Token()
	return rg
}

func (r *rig) check(t *testing.T, ctx context.Context, headers ...string) {
	t.Helper()
	cr := opstest.Check(r.tok, "192.0.2.1", "GET", "/secrets/db?api-version=7.5", headers...)
	if _, err := r.client.Check(ctx, cr); err != nil {
		t.Fatal(err)
	}
}

// The Check span continues Envoy's trace from the request's traceparent;
// one child span per stage, the refusing one carrying its code.
func TestCheckSpanContinuesTraceparent(t *testing.T) {
	r := newRig(t, 0)
	r.check(t, t.Context(), "traceparent", "00-"+envoyTrace+"-"+envoySpan+"-"+sampledFlag)
	spans := r.exp.GetSpans()
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	check, ok := byName["ext_authz.Check"]
	if !ok {
		t.Fatalf("no Check span in %d spans", len(spans))
	}
	if check.SpanContext.TraceID().String() != envoyTrace || check.Parent.SpanID().String() != envoySpan || !check.Parent.IsRemote() {
		t.Fatalf("Check span trace %s parent %s: not Envoy's", check.SpanContext.TraceID(), check.Parent.SpanID())
	}
	attrs := map[string]string{}
	for _, a := range check.Attributes {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	if attrs["vaultwall.code"] != "ForbiddenByFirewall" || attrs["vaultwall.operation"] != "SecretGet" ||
		attrs["vaultwall.allowed"] != "false" || attrs["http.response.status_code"] != "403" || attrs["vaultwall.decision_id"] == "" {
		t.Errorf("Check attributes = %v", attrs)
	}
	for _, stage := range []string{"vaultwall.classify", "vaultwall.authenticate", "vaultwall.firewall"} {
		s, ok := byName[stage]
		if !ok {
			t.Fatalf("no %s span", stage)
		}
		if s.Parent.SpanID() != check.SpanContext.SpanID() || s.SpanContext.TraceID() != check.SpanContext.TraceID() {
			t.Errorf("%s is not a child of the Check span", stage)
		}
	}
	if _, ok := byName["vaultwall.authorize"]; ok {
		t.Error("a span for a stage that never ran")
	}
	fw := map[string]string{}
	for _, a := range byName["vaultwall.firewall"].Attributes {
		fw[string(a.Key)] = a.Value.Emit()
	}
	if fw["vaultwall.code"] != "ForbiddenByFirewall" || fw["vaultwall.allowed"] != "false" || fw["vaultwall.rule"] != "defaultAction=Deny" {
		t.Errorf("firewall span attributes = %v", fw)
	}
	for _, s := range spans {
		for _, a := range s.Attributes {
			if v := a.Value.Emit(); len(v) > 20 && strings.Contains(r.tok, v) {
				t.Fatalf("span %s holds part of the token", s.Name)
			}
		}
	}
}

// B3 headers (Envoy's zipkin tracer) are continued too.
func TestCheckSpanContinuesB3(t *testing.T) {
	r := newRig(t, 0)
	r.check(t, t.Context(), "x-b3-traceid", envoyTrace, "x-b3-spanid", envoySpan, "x-b3-sampled", "1")
	r.check(t, t.Context(), "b3", envoyTrace+"-"+envoySpan+"-1")
	n := 0
	for _, s := range r.exp.GetSpans() {
		if s.Name == "ext_authz.Check" {
			n++
			if s.SpanContext.TraceID().String() != envoyTrace || s.Parent.SpanID().String() != envoySpan {
				t.Errorf("B3 parent not continued: %s/%s", s.SpanContext.TraceID(), s.Parent.SpanID())
			}
		}
	}
	if n != 2 {
		t.Fatalf("%d Check spans, want 2", n)
	}
}

// Envoy's trace of the ext_authz call itself (gRPC metadata) is the
// closer parent and wins over the checked request's headers.
func TestGRPCMetadataWins(t *testing.T) {
	r := newRig(t, 0)
	ctx := metadata.AppendToOutgoingContext(t.Context(), "traceparent", "00-"+grpcTrace+"-"+grpcSpan+"-01")
	r.check(t, ctx, "traceparent", "00-"+envoyTrace+"-"+envoySpan+"-01")
	for _, s := range r.exp.GetSpans() {
		if s.Name == "ext_authz.Check" && (s.SpanContext.TraceID().String() != grpcTrace || s.Parent.SpanID().String() != grpcSpan) {
			t.Fatalf("Check span parent %s/%s, want the gRPC call's", s.SpanContext.TraceID(), s.Parent.SpanID())
		}
	}
}

// Envoy's sampling decision is followed; without one, the ratio applies.
func TestSampling(t *testing.T) {
	r := newRig(t, 0)
	r.check(t, t.Context(), "traceparent", "00-"+envoyTrace+"-"+envoySpan+"-00")
	r.check(t, t.Context())
	if n := len(r.exp.GetSpans()); n != 0 {
		t.Fatalf("%d spans recorded for unsampled checks", n)
	}
	all := newRig(t, 1)
	all.check(t, t.Context())
	if n := len(all.exp.GetSpans()); n != 4 { // Check, classify, authenticate, firewall
		t.Fatalf("%d spans with ratio 1, want 4", n)
	}
}

func TestNewDisabled(t *testing.T) {
	tr, err := tracing.New(t.Context(), config.Tracing{}, "x")
	if tr != nil || err != nil {
		t.Fatalf("New without endpoint = %v, %v", tr, err)
	}
	var nilTracer *tracing.Tracer
	if err := nilTracer.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}
