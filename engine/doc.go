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
// A Fleet keeps every vault of a configuration: one Engine on the file
// for a single vault, or, with vaults.dir, one Engine per vault's file,
// each parsed onto the main file's process-wide sections
// (config.ParseVault). A vault's file is reloaded on its own — a broken
// one keeps that vault's running runtime, an edit rebuilds that vault
// alone — and a file claiming a name or hostname another vault in force
// holds is refused (admit), so a new file never takes another vault's
// traffic. Every change publishes an immutable Set: the runtimes and the
// authz.Vaults table that selects a vault by host.
//
// Ready is the one readiness rule, ReadySet its form for a Set: /readyz
// and gRPC health (both served by server) follow it.
//
// engine runs nothing on the network and exports no metrics: server
// assembles it with the listeners, and ops/metrics reads its Status.
//
// Imports: config, authz and its stage packages, rego, fsnotify, log/slog.
// Neither envoy nor Prometheus.
package engine
