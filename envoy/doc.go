// Package envoy is vaultwall's edge to Envoy: the ext_authz v3 gRPC server
// (envoy.service.auth.v3.Authorization/Check) and grpc.health.v1, and the
// two pure translators around the decision pipeline — CheckRequest →
// authz.Request and authz.Response → CheckResponse. Protobuf stops here.
//
// A refusal is always an OK RPC whose CheckResponse.status is non-zero,
// never a gRPC error: Envoy treats RPC errors as "could not ask" and, when
// failure_mode_allow is on, lets the request through.
//
// The directory also holds the configuration users deploy — envoy.yaml for a
// front proxy and istio/ for a mesh — with tests that validate both against
// Envoy's and Istio's API definitions.
//
// Imports: authz, authz/config, go-control-plane, grpc-go, protobuf.
package envoy
