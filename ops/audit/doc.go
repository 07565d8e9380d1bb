// Package audit writes vaultwall's decision log: one JSON record per
// decision, shaped like Azure Key Vault's AuditEvent diagnostic log
// (keyvault-spec §7), so the dashboards and queries written for Key Vault's
// logs read it, plus a "vaultwall" extension object holding the decision id,
// the deciding stage and rules, and enough of the request to decide it again
// (`vaultwall replay`).
//
// It owns:
//   - the record (Record, FromDecision) and its reading back (Read,
//     Record.Request);
//   - the Writer: an authz.Observer that hands each decision to a bounded
//     queue and returns; one goroutine turns decisions into records and
//     writes them to stdout or to a size-rotated file (lumberjack). A full
//     queue drops the record and counts it: a check never waits for, or
//     fails because of, the audit log.
//
// correlationId, clientInfo and resultDescription echo the client and go
// through authz.Sanitize; the request block keeps raw values for replay
// (encoding/json escapes control characters and invalid UTF-8).
//
// What a record never holds: the bearer token (the verified claims are
// recorded instead, under identity.claim), the authorization, cookie and
// any other request header outside RecordedHeaders, and secret values
// (vaultwall never sees bodies).
//
// Imports: authz, config, gopkg.in/natefinch/lumberjack.v2 and the
// standard library. No metrics library: Counters are read by the metrics
// package.
package audit
