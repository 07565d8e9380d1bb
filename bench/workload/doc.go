// Package workload generates the load benchmark's vault and traffic: a
// configuration with many IP rules, subnet rules and access policies, an
// issuer's keys as a JWKS file, RS256 tokens for many callers, and a data
// set of Envoy CheckRequests mixing allowed, firewall-denied, 401 and
// policy-denied requests.
//
// It is used by bench/run (make bench), bench/envoyrun (make bench-envoy,
// with Options.Sources bounding the client addresses) and by the in-process
// Check benchmark, so that all measure the same mix.
//
// Imports: go-control-plane (the CheckRequest), jwx (signing), protobuf.
package workload
