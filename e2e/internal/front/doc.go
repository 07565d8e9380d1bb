// Package front is the end-to-end suite's front proxy: what a client's HTTPS
// request meets before vaultwall is asked about it. Front is the interface;
// NewFront picks a real Envoy started from one of the repository's shipped
// files (envoy/envoy.yaml, envoy/envoy-behind-l7.yaml) when one is available
// (ENVOY_BIN, or envoy on PATH) and otherwise the Go stand-in, StandIn, a
// faithful reproduction of the parts of Envoy's HTTP connection manager and
// ext_authz filter that vaultwall depends on (Envoy's side of the ext_authz
// wire contract, as envoy/README.md describes it): TLS with optional client
// certificates, PROXY protocol v2 with TLVs as connection metadata, the
// CheckRequest exactly as Envoy builds it, and Envoy's allow / deny / error
// semantics and header mutations. The package also holds the client side:
// dialing a front with a PROXY v2 header and TLVs, over TLS, HTTP/1.1 or h2.
//
// Both fronts take their behaviour from the shipped file: Shipped reads a
// file's knobs (PROXY protocol and TLV rules, trusted X-Forwarded-For hops,
// the ext_authz timeout, status_on_error, failure mode, mutation
// validation, metadata namespaces) into Options; RenderEnvoy turns the same
// file into a runnable bootstrap, changing only addresses, certificate
// files and server names, and refuses options whose knobs differ; Variant
// writes a copy of a shipped file with one named change for both fronts to
// run. RealEnvoy gives a test the Envoy binary, skipping without one except
// under E2E_FRONT=envoy, where a missing Envoy fails the test.
//
// The stand-in is kept honest by goldens: testdata/checkrequests holds the
// CheckRequests a real Envoy sent in a set of scenarios (recorded by a stub
// authorizer, normalised), testdata/answers what clients and the upstream
// got for each kind of ext_authz answer; the package's tests compare the
// stand-in with them on every machine, and a real Envoy where one is
// installed.
//
// Test infrastructure, not a product: it lives under e2e/internal so nothing
// outside the suite can import it.
//
// Imports: go-control-plane, grpc-go, protobuf, pires/go-proxyproto,
// google/uuid, sigs.k8s.io/yaml, authz/authztest (RenderEnvoy writes
// certificate files with WriteKeyPair), the standard library.
package front
