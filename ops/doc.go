// Package ops is the roof of vaultwall's operations, one package each:
// audit (the audit log), metrics (Prometheus), tracing (OpenTelemetry),
// shadow (a candidate configuration decided beside the enforced one),
// replay (audit records decided again) and opstest (their test kit). Each
// observes authz.Decision values; none of them decides. server assembles
// them for `vaultwall serve`.
//
// Imports: nothing: a roof. Its packages import authz, config, engine and
// each other (metrics reads audit and shadow; replay reads both), never
// controlplane, envoy or server.
package ops
