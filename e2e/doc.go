// Package e2e holds vaultwall's whole-system tests: a real client speaks
// HTTPS to a front proxy, which asks vaultwall over ext_authz, which lets
// the request through to a Key Vault–shaped upstream or answers like Key
// Vault. The scenario tests (Key Vault's firewall, trusted services, the
// 401 challenge, access policies) live here as *_test.go files.
//
// The infrastructure they start lives in e2e/internal, one package per
// concern, so nothing outside the suite can import test machinery and each
// piece is tested on its own:
//
//   - front: the front proxy — a real Envoy from envoy/envoy.yaml when one
//     is available, else a faithful Go stand-in of Envoy's ext_authz
//     filter — and the client side (PROXY v2 headers, TLS identities);
//   - fakevault: an in-memory Key Vault data plane over HTTPS;
//   - azure: Azure SDK for Go plumbing (token credential, routing of
//     *.vault.azure.net to loopback);
//   - authzstub: a stub ext_authz server for tests of the above;
//   - pki: CAs and certificates minted per test.
//
// Imports: e2e/internal/..., the Azure SDK, go-control-plane, grpc-go.
package e2e
