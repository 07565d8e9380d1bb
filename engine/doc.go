// Package engine builds vaultwall's decision pipeline: an authz.Pipeline
// from a configuration (every stage compiled, every problem reported with
// file, line and field), kept current — watching the
// configuration file and policy directory and swapping in a new pipeline
// only when it builds — and reports readiness.
//
// A configuration or policy that fails to build never replaces the running
// one; the failure is logged and shown by /readyz until a good one lands.
// A panic while parsing or building (a bug) is such a failure too
// (ErrPanic, logged with its stack), never a dead process. Each load reads
// the configuration file once: the digest that marks a failed input is
// that of the bytes parsed.
//
// An Overlay (the control plane's stored properties) may be laid over the
// file on every load; loads are serialised, so the newest inputs win. A
// property the file sets but the overlay overrides is listed by /readyz
// (ignoredFileProperties) and warned about when it or its value in the
// file changes: such an edit takes no effect.
//
// Ready is the one readiness rule: /readyz and gRPC health (both served by
// server) follow it.
//
// engine runs nothing on the network and exports no metrics: server
// assembles it with the listeners, and ops/metrics reads its Status.
//
// Imports: config, authz and its stage packages, rego, fsnotify, log/slog.
// Neither envoy nor Prometheus.
package engine
