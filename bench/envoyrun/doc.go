// Command envoyrun is `make bench-envoy`: what vaultwall adds to each vault
// call through a real Envoy. It renders the shipped envoy/envoy.yaml three
// times — (a) without the ext_authz filter, (b) with the no-op floor
// (bench/floor) as the authorizer, (c) with vaultwall on make bench's
// workload — starts the three Envoys, the floor, vaultwall and a minimal
// Key Vault–shaped upstream, and sends HTTPS load (vegeta, open loop, each
// connection opened with a PROXY v2 header carrying the client address of
// the workload's request) alternating the three: a closed-loop capacity run,
// then 25%, 50% and 75% of (a)'s capacity. Per configuration and rate it
// prints achieved rps, p50/p99/p99.9, Envoy's and the authorizer's CPU per
// request (/proc/<pid>/stat), errors, and what (b) and (c) add over (a).
//
// Imports: bench/workload, bench/internal/harness, bench/internal/procstat,
// authz/authztest (its TB-free NewCA and Mint mint the certificates),
// go-control-plane, protobuf, sigs.k8s.io/yaml, vegeta, go-proxyproto.
package main
