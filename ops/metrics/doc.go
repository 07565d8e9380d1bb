// Package metrics exports vaultwall's Prometheus metrics: decisions by
// stage and result code, the Check latency histogram, JWKS refreshes and
// key age, the verified-token and refused-token caches, the audit queue, shadow differences,
// and gRPC server metrics (go-grpc-middleware's prometheus provider).
// Configuration generation and reload failures come from StatusCollector.
//
// Every label value comes from a closed set: authz.Stage names, the Key
// Vault error codes vaultwall answers with (anything else is "other"),
// token.Trigger names, configured issuers, shadow.Kind names. Nothing from
// a request ever becomes a label. The per-Check cost is two atomic adds and
// a histogram observation on label children resolved at start-up.
//
// Also: the engine's status (StatusCollector: generation, reload failures)
// and the decision cache of the runtime in force (CacheCollector).
//
// Imports: authz, authz/token, ops/audit, ops/shadow, engine, prometheus
// client_golang, go-grpc-middleware/providers/prometheus, grpc.
package metrics
