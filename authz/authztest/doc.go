// Package authztest is vaultwall's test kit: certificate authorities and
// client/server certificates minted per test (ca.go, cert.go), helpers that
// reproduce what Envoy sends about a peer certificate, and issuers that sign
// JWTs against a JWKS they serve (issuer.go, jwt.go).
//
// Everything takes a testing.TB and fails the test on error, so call sites
// stay one line. Nothing here is for production use.
//
// Imports: the standard library, authz/token (Issuer.Config) and the authz
// packages' own dependencies.
// Never imported by non-test code.
package authztest
