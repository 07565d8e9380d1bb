// Package e2e holds vaultwall's whole-system tests: a real client speaks
// HTTPS to a front proxy, which asks vaultwall over ext_authz, which lets
// the request through to a Key Vault–shaped upstream or answers like Key
// Vault. The scenario tests live here as *_test.go files: TestMain builds
// the vaultwall binary once; each top-level test is one group — one
// `vaultwall serve` process on a generated configuration, an HTTPS OIDC
// issuer, the fake vault and a front built from a shipped envoy/*.yaml
// (system_test.go) — and its subtests are Key Vault's documented scenarios:
// the firewall (IPv4, IPv6, virtual networks, X-Forwarded-For), private
// endpoints, trusted services, the 401 challenge, access policies and RBAC,
// vaultwall's own endpoints and management API, fail-closed answers when
// vaultwall is slow, stopped or restarted, encode_raw_headers, and the
// unmodified Azure SDK clients for Go and for Python (python/keyvault_sdk.py,
// run by TestPythonSDK with the interpreter of `make py`). README.md lists
// what each asserts.
//
// The infrastructure they start lives in e2e/internal, one package per
// concern, so nothing outside the suite can import test machinery and each
// piece is tested on its own:
//
//   - front: the front proxy — a real Envoy from a shipped envoy/*.yaml
//     (make test installs Envoy 1.40; E2E_FRONT=envoy makes a missing one
//     a failure), else a Go stand-in of Envoy's ext_authz filter checked
//     against CheckRequests recorded from real Envoy — and the client side
//     (PROXY v2 headers, TLS identities);
//   - fakevault: an in-memory Key Vault data plane over HTTPS;
//   - azure: Azure SDK for Go plumbing (token credential, routing of
//     *.vault.azure.net to loopback);
//   - authzstub: a stub ext_authz server for tests of the above.
//
// Certificates — a CA per role, minted per test — come from the project's
// test kit, authz/authztest.
//
// Imports: authz, config, authz/authztest, proto/vaultwall/v1,
// e2e/internal/..., the Azure SDK, grpc-go, sigs.k8s.io/yaml.
package e2e
