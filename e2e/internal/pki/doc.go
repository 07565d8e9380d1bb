// Package pki mints the certificates the end-to-end suite needs: a CA per
// trust domain, server certificates for *.vault.azure.net fronts and
// upstreams, and client certificates with URI, DNS or subject-only
// identities — all in memory, ECDSA P-256 so minting stays fast.
//
// Test infrastructure only. Imports: the standard library.
package pki
