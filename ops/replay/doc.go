// Package replay answers "what would this configuration have done to that
// traffic?": it decides every request of an audit log again with a
// candidate configuration (and policy directory) and reports the
// decisions whose outcome changes.
//
// Authentication is never re-run — no token is ever recorded. A request
// whose token was verified is replayed with the recorded verified claims,
// to which the candidate's identity section is applied as far as it can be
// without the token (issuer configured, audience accepted, tenant); a
// request refused at authentication keeps its recorded 401 (or error).
// Everything else — routing, firewall, trusted services, policy — runs
// for real on the candidate, at the decision's recorded time.
//
// Imports: ops/audit, ops/shadow (Redecide, Outcome, Compare), engine, authz,
// config, authz/token.
package replay
