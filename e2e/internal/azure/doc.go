// Package azure is the plumbing that lets the unmodified Azure SDK for Go
// Key Vault clients (azsecrets, azkeys) talk to a vault behind a test front
// proxy: a TokenCredential whose tokens a test mints, and an HTTP client
// that resolves https://<vault>.vault.azure.net (port 443, so the SDK's
// challenge-resource check passes unchanged) to a loopback front, trusts the
// test CA, and can present a client certificate and a PROXY v2 header. No
// client option such as DisableChallengeResourceVerification is set.
//
// Test infrastructure only. Imports: azcore, azsecrets, azkeys,
// e2e/internal/front (its client side), the standard library.
package azure
