// Package shadow evaluates a candidate configuration and/or policy
// directory beside the enforced one and reports where they would decide
// differently — "would deny" (the enforced pipeline allowed) and "would
// allow" (it refused) — without ever touching the enforced decision.
//
// It owns:
//   - Redecide: running a request through a pipeline again with the
//     authenticate stage replaced by an outcome recorded earlier (a
//     verified caller, a 401, or an error), at the original decision time;
//     replay uses it too;
//   - Outcome and Compare: what counts as a different decision;
//   - the Evaluator: an authz.Observer that samples decisions into a
//     bounded queue (drops are counted; a check never waits), and workers
//     that decide each again with the candidate, which is built by the
//     same engine.Builder (so it shares the issuers' key store) and
//     reloaded like the main configuration.
//
// When the candidate's identity section and tenant equal the enforced
// one's, the enforced decision's verified caller (or 401) is reused:
// verifying the token again could only give the same answer, at a cost.
// When they differ, the candidate's own authenticator verifies the token
// (held in memory with the request, never logged), so a changed issuer or
// audience shows up as would-deny/would-allow too.
//
// Imports: authz, config, engine, log/slog. No metrics library:
// Stats is read by the metrics package.
package shadow
