// Package envoy is vaultwall's side of Envoy: the ext_authz v3 gRPC adapter
// (CheckRequest → authz.Request → CheckResponse), and the configuration users
// deploy in front of their vault — envoy.yaml, envoy-behind-l7.yaml and the
// Istio manifests in istio/ — whose tests load every file with Envoy's, Istio's
// and Kubernetes' own API types and check the settings vaultwall relies on.
//
// Imports: authz and its sub-packages, go-control-plane, grpc-go. The Istio,
// Kubernetes and kustomize modules are used by tests only and never linked
// into the binary.
package envoy
