// Package chaos is vaultwall's reliability suite: `make chaos` prints its
// table, and a short smoke of the same run is part of `make test`.
//
// It builds vaultwall from this tree, starts it on loopback with a real
// HTTPS OIDC issuer (authz/authztest) and an operator policy directory, and
// drives it over gRPC with bounded open-loop load whose every request has a
// known right answer: an allowed read, a caller outside the firewall, no
// token, a forged token, an operation no access policy grants, and an object
// an operator rule denies. While the load runs it injects one fault at a
// time — the issuer failing in four ways, its keys rotating, the
// configuration file and the policy directory replaced by broken ones and
// restored, SIGTERM and SIGKILL with a restart, oversized, malformed and
// hostile messages, a flood of unique tokens — and counts, per fault, the
// requests, the wrong allows (always a failure), the wrong refusals, the
// RPC errors and the time until the answers were right again. A soak then
// holds about 70% of the measured capacity and reports the growth of RSS,
// goroutines and open file descriptors after warm-up.
//
// Everything is in _test.go files: the suite uses the test kit, which only
// tests may import. Only loopback addresses are used.
//
// Imports: authz/authztest, config, bench/internal/harness,
// go-control-plane's auth types, grpc-go, the standard library.
package chaos
