// Package tracing exports OpenTelemetry spans for vaultwall's checks over
// OTLP (gRPC or HTTP): one server span per Check, continuing the trace
// Envoy started — from the ext_authz call's own gRPC metadata when Envoy
// traces the call, else from the trace headers of the request it asks
// about (W3C traceparent or B3, single or multi header) — and one child
// span per pipeline stage through the authz.Tracer hook.
//
// It reads decisions, never Envoy's messages: the gRPC interceptor marks a
// Check call in its context; the pipeline's authz.DecisionTracer hook
// (StartDecision) starts the call's span, parented from the authz.Request's
// headers when the call's metadata carries no trace; and the interceptor
// ends it with the authz.Decision's result — the values Envoy gets as
// dynamic metadata and status. Decisions made outside a Check call
// (Explain, vaultwall check) get stage spans only, as they always did.
//
// Settings come from the configuration's tracing section laid over the
// standard OpenTelemetry environment variables (OTEL_EXPORTER_OTLP_*,
// OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER[_ARG], OTEL_SDK_DISABLED,
// OTEL_RESOURCE_ATTRIBUTES) over the defaults: per setting the file wins
// (Resolve).
//
// Off by default at no cost: without a collector (tracing.endpoint or
// OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT), New returns nil, the
// pipeline's Tracer stays nil and no interceptor is installed. Sampling
// follows Envoy's decision when it sent one (parent-based) and
// tracing.samplingRatio otherwise. Span attributes carry the operation,
// decision id and result code — never headers, tokens or claims.
//
// Imports: authz, config, grpc (the interceptor, its metadata),
// go.opentelemetry.io/otel (+ sdk, OTLP exporters, B3 propagator). Never
// go-control-plane nor envoy: what a span says comes from the Decision.
package tracing
