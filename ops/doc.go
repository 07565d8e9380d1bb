// Package ops assembles vaultwall's operations around the decision
// engine for one serving process: the key store and engine.Builder, the
// Prometheus registry and metrics, the OpenTelemetry tracer, the audit log
// writer and the shadow evaluator, all built from the configuration, and
// the engine.ServeOptions that plug them into engine.Serve (Observer,
// gRPC interceptors, readiness probes, reload hooks).
//
// On reload (engine OnSwap) it follows the new configuration: the audit
// log is reopened when the audit section changes (another path, sink or
// rotation; enabled or disabled), and the shadow evaluator is restarted
// when the shadow section changes; the candidate itself reloads on its own
// when its files change. Tracing settings, like the listen addresses and
// TLS, take effect on restart.
//
// Imports: engine, envoy, audit, metrics, shadow, tracing, authz/config,
// authz/token, prometheus, grpc.
package ops
