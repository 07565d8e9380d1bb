// Package vaultwallv1 is the generated Go code of vaultwall's control-plane
// API, proto/vaultwall/v1/*.proto (buf generate with the pinned local
// protoc-gen-go and protoc-gen-go-grpc: `make proto`; `make check` fails
// when it drifts). The service is implemented by package controlplane.
//
// Imports: google.golang.org/protobuf and google.golang.org/grpc only.
package vaultwallv1
