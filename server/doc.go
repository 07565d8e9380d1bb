// Package server is the composition root of `vaultwall serve`: Serve is
// the one function that says what runs in the process, in the order it
// starts — the operations Stack (key store, tracer, metrics, audit log,
// shadow evaluator, engine.Builder), the control plane when enabled, the
// ext_authz server and the engine that feeds it, gRPC health and the HTTP
// listener (/healthz, /readyz, /metrics), the configuration watcher and
// SIGHUP reloads — and how it stops.
//
// On reload (each engine swap) the Stack follows the new configuration:
// the audit log is reopened when the audit section changes (another path,
// sink or rotation; enabled or disabled), and the shadow evaluator is
// restarted when the shadow section changes; the candidate itself reloads
// on its own when its files change. Tracing settings, like the listen
// addresses and TLS, take effect on restart.
//
// Imports: config, engine, envoy, controlplane, ops/..., authz/token,
// prometheus, grpc. Only cmd/ imports server (tests too may, to run a
// whole process in-process).
package server
