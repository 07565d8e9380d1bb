package tracing

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
)

// CheckMethod is the ext_authz RPC that gets a span.
const CheckMethod = "/envoy.service.auth.v3.Authorization/Check"

// Tracer makes spans for checks and their stages. A nil *Tracer is valid
// and does nothing; prefer leaving hooks unset when tracing is off.
type Tracer struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

var _ authz.DecisionTracer = (*Tracer)(nil)

// New starts the OTLP exporter of cfg laid over the standard OTEL_*
// environment variables (Resolve). It returns nil (no tracing, no cost)
// when neither names a collector. The exporter connects lazily: a
// collector that is down loses spans, never checks.
func New(ctx context.Context, cfg config.Tracing, version string) (*Tracer, error) {
	set := Resolve(cfg, os.Getenv)
	if !set.Enabled {
		return nil, nil
	}
	var exp sdktrace.SpanExporter
	var err error
	switch set.Protocol {
	case config.TracingHTTP:
		var opts []otlptracehttp.Option
		if set.Endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(set.Endpoint))
		}
		if set.Timeout > 0 {
			opts = append(opts, otlptracehttp.WithTimeout(set.Timeout))
		}
		if set.Insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	default:
		var opts []otlptracegrpc.Option
		if set.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpoint(set.Endpoint))
		}
		if set.Timeout > 0 {
			opts = append(opts, otlptracegrpc.WithTimeout(set.Timeout))
		}
		if set.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	return newTracer(exp, set, version, resource.Environment(), sdktrace.WithBatcher(exp)), nil
}

// NewWithExporter builds a Tracer on exp from cfg alone (no environment);
// opts replace the default batching span processor (tests pass
// sdktrace.WithSyncer).
func NewWithExporter(exp sdktrace.SpanExporter, cfg config.Tracing, version string, opts ...sdktrace.TracerProviderOption) *Tracer {
	return newTracer(exp, Resolve(cfg, func(string) string { return "" }), version, resource.Empty(), opts...)
}

// newTracer builds the provider: base (OTEL_RESOURCE_ATTRIBUTES) under
// service.name and service.version.
func newTracer(exp sdktrace.SpanExporter, set Settings, version string, base *resource.Resource, opts ...sdktrace.TracerProviderOption) *Tracer {
	res, err := resource.Merge(base, resource.NewSchemaless(
		attribute.String("service.name", set.ServiceName),
		attribute.String("service.version", version),
	))
	if err != nil { // schemaless on both sides: cannot conflict
		res = resource.NewSchemaless(attribute.String("service.name", set.ServiceName), attribute.String("service.version", version))
	}
	if len(opts) == 0 {
		opts = []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp)}
	}
	opts = append(opts,
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(set.Ratio))),
	)
	tp := sdktrace.NewTracerProvider(opts...)
	return &Tracer{
		tp:     tp,
		tracer: tp.Tracer("github.com/vaultwall/vaultwall"),
		prop: propagation.NewCompositeTextMapPropagator(
			propagation.TraceContext{},
			b3.New(b3.WithInjectEncoding(b3.B3MultipleHeader|b3.B3SingleHeader)),
		),
	}
}

// Shutdown flushes and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

var stageSpans = func() []string {
	names := make([]string, int(authz.StageAuthorize)+1)
	for s := range names {
		names[s] = "vaultwall." + authz.Stage(s).String()
	}
	return names
}()

// StartStage starts a span for one stage of the pipeline (authz.Tracer).
// The pipeline ends a stage's span as soon as the stage has run, before the
// refusal is written, so each span records its own stage's verdict; the
// Check span carries the final status and code.
func (t *Tracer) StartStage(ctx context.Context, stage authz.Stage) (context.Context, func(d *authz.Decision)) {
	name := "vaultwall.stage"
	if int(stage) < len(stageSpans) {
		name = stageSpans[stage]
	}
	ctx, span := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindInternal))
	return ctx, func(d *authz.Decision) {
		if span.IsRecording() {
			stageAttributes(span, stage, d)
		}
		span.End()
	}
}

func stageAttributes(span trace.Span, stage authz.Stage, d *authz.Decision) {
	switch stage {
	case authz.StageClassify:
		if d.Operation.Name != "" {
			span.SetAttributes(attribute.String("vaultwall.operation", d.Operation.Name))
		}
	case authz.StageAuthenticate:
		span.SetAttributes(attribute.Bool("vaultwall.authenticated", d.Caller != nil))
	case authz.StageFirewall:
		n := &d.Network
		span.SetAttributes(attribute.Bool("vaultwall.allowed", n.Allowed), attribute.String("vaultwall.rule", n.Rule))
		if !n.Allowed && n.Code != "" {
			span.SetAttributes(attribute.String("vaultwall.code", n.Code))
		}
	case authz.StageAuthorize:
		a := &d.Authz
		span.SetAttributes(attribute.Bool("vaultwall.allowed", d.Allowed), attribute.String("vaultwall.model", a.Model),
			attribute.String("vaultwall.rule", a.Rule))
		if !d.Allowed && d.Denial != nil {
			span.SetAttributes(attribute.String("vaultwall.code", d.Denial.ErrorCode()))
		}
		if d.Err != nil {
			span.SetStatus(codes.Error, "could not decide")
		}
	}
}

// UnaryInterceptor brackets each Check in its server span. The span
// starts, stamped with the time the call arrived, once the pipeline starts
// the decision (StartDecision) and the checked request's headers are
// known; it ends here, after Check has answered, with the decision's
// result. A call that never reached a pipeline (none loaded yet, or a
// CheckRequest whose translation panicked) still gets its span.
func (t *Tracer) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if info.FullMethod != CheckMethod {
			return handler(ctx, req)
		}
		c := &check{start: time.Now(), ctx: ctx, parent: ctx}
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			c.parent = t.prop.Extract(ctx, mdCarrier(md))
		}
		resp, err := handler(context.WithValue(ctx, checkKey{}, c), req)
		if c.span == nil {
			t.startCheck(c, nil)
		}
		endCheck(c.span, c.d, err)
		return resp, err
	}
}

// check is one Check call in flight, from the interceptor to the pipeline
// and back. One goroutine uses it: Check runs the pipeline in the handler's.
type check struct {
	start  time.Time
	ctx    context.Context // the call's
	parent context.Context // the call's, with the trace context of its gRPC metadata
	span   trace.Span      // the Check span, once started
	d      *authz.Decision // the decision being made; final once the handler returns
}

type checkKey struct{}

// StartDecision starts the Check span when the decision is a Check the
// interceptor saw (authz.DecisionTracer); the stages' spans are its
// children. Other decisions (Explain, vaultwall check) get no Check span.
func (t *Tracer) StartDecision(ctx context.Context, d *authz.Decision) context.Context {
	c, ok := ctx.Value(checkKey{}).(*check)
	if !ok || c.span != nil {
		return ctx
	}
	c.d = d
	t.startCheck(c, d.Request)
	return trace.ContextWithSpan(ctx, c.span)
}

// startCheck starts the server span of one Check. Its parent is the trace
// context in the call's gRPC metadata (Envoy tracing the ext_authz call),
// else the one in the checked request's headers (req nil: unknown).
func (t *Tracer) startCheck(c *check, req *authz.Request) {
	parent := c.parent
	method := ""
	if req != nil {
		method = req.Method
		if !trace.SpanContextFromContext(parent).IsValid() && len(req.Headers) > 0 {
			parent = t.prop.Extract(c.ctx, propagation.MapCarrier(req.Headers))
		}
	}
	_, c.span = t.tracer.Start(parent, "ext_authz.Check",
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithTimestamp(c.start),
		trace.WithAttributes(
			attribute.String("rpc.system", "grpc"),
			attribute.String("rpc.method", "Check"),
			attribute.String("http.request.method", method),
		))
}

// endCheck records the decision's result on span — the values Envoy gets
// as the response's dynamic metadata and status — and ends it.
func endCheck(span trace.Span, d *authz.Decision, err error) {
	if span.IsRecording() {
		if d != nil {
			span.SetAttributes(
				attribute.String("vaultwall.decision_id", authz.Sanitize(d.ID, authz.MaxEchoValue)),
				attribute.String("vaultwall.operation", authz.Sanitize(d.Operation.Name, authz.MaxEchoValue)),
				attribute.String("vaultwall.stage", authz.Sanitize(d.Stage.String(), authz.MaxEchoValue)),
				attribute.Bool("vaultwall.allowed", d.Allowed),
			)
			if !d.Allowed {
				den := d.Denial
				if den == nil { // as authz's Response: cannot happen through Decide
					den = &authz.Denial{Status: 500, Code: "InternalServerError"}
				}
				if c := authz.Sanitize(den.ErrorCode(), authz.MaxEchoValue); c != "" {
					span.SetAttributes(attribute.String("vaultwall.code", c))
				}
				span.SetAttributes(attribute.Int("http.response.status_code", den.Status))
			}
		}
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}

// mdCarrier reads gRPC metadata as a propagation carrier.
type mdCarrier metadata.MD

func (c mdCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c mdCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c mdCarrier) Keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}
