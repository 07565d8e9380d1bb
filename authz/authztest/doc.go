// Package authztest is vaultwall's test kit: certificate authorities and
// client/server certificates minted per test (ca.go, cert.go) — the
// project's only test CA: unit tests, the e2e suite's CA per role and the
// bench's certificates all come from it —, helpers that reproduce what
// Envoy sends about a peer certificate, and issuers that sign JWTs against
// a JWKS they serve (issuer.go, jwt.go).
//
// Everything takes a testing.TB and fails the test on error, so call sites
// stay one line; the exceptions are NewCA and TestCA.Mint, which return
// their errors for a program that has no testing.TB (bench/envoyrun).
// Nothing here is for production use.
//
// Imports: the standard library, authz/token (Issuer.Config) and the authz
// packages' own dependencies. Imported by tests, by the e2e suite's
// infrastructure (e2e/internal/front) and by bench/envoyrun; never by the
// code vaultwall ships.
package authztest
