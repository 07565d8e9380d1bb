// Package authzstub is a tiny ext_authz v3 gRPC server for tests of the
// front proxy and the SDK plumbing: a handler function decides, and every
// CheckRequest is recorded. It stands in for vaultwall where vaultwall's
// own decisions are not what a test is about.
//
// Test infrastructure only. Imports: grpc-go, go-control-plane.
package authzstub
