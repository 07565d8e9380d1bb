// Package envoy is vaultwall's edge to Envoy: the ext_authz v3 gRPC server
// (envoy.service.auth.v3.Authorization/Check) and grpc.health.v1, and the
// two pure translators around the decision pipeline — CheckRequest →
// authz.Request and authz.Response → CheckResponse. Protobuf stops here.
//
// Check allocates little: the authz.Request, the Decision (through
// Pipeline.DecideInto) and an allowed CheckResponse share one block, so a
// check whose token and verdict are cached makes 5 allocations in all
// (bench's TestCheckAllocsCached); a refusal's response has its own block.
//
// Decide is the one guarded way from a CheckRequest to a Decision: Check
// and the control plane's Explain both go through it, so a panic — in the
// translation, or in a stage, which the pipeline turns into its 500
// refusal — is the same fail-closed refusal in both, never a crashed
// process. Check then hands every decision to its authz.Observer (audit,
// metrics, shadow), recovering a panic there too.
//
// Health reports SERVING once a pipeline is set, unless the owner has
// taken it over with SetServing (vaultwall serve: the engine's readiness,
// the same rule as /readyz).
//
// A refusal is always an OK RPC whose CheckResponse.status is non-zero,
// never a gRPC error: Envoy treats RPC errors as "could not ask" and, when
// failure_mode_allow is on, lets the request through. Every value the
// response echoes has been through authz.Sanitize, so it always marshals.
// That holds for requests that reach Check: grpc-go answers a CheckRequest
// whose string fields are not UTF-8 (a header value in
// attributes.request.http.headers) with INTERNAL and one over
// server.maxRecvMsgBytes with RESOURCE_EXHAUSTED before Check runs, which is
// why every shipped Envoy and Istio configuration fails closed. Header
// values sent as bytes (header_map, encode_raw_headers) reach Check.
//
// The directory also holds the configuration users deploy — envoy.yaml,
// envoy-behind-l7.yaml, envoy-multi-vault.yaml, the Istio manifests in istio/ and the
// multi-vault overlay on them in istio-multi-vault/ — whose tests load
// every file with Envoy's, Istio's and Kubernetes' own API types and check
// the settings vaultwall relies on.
//
// Imports: authz, go-control-plane, grpc-go, protobuf. config and the
// Istio, Kubernetes and kustomize modules are used by tests only and never
// linked into the binary.
package envoy
