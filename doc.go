// Package vaultwall is the module's root and holds no product code: its
// tests check the repository as a whole.
//
//   - TestLayering states the layering of the packages and fails naming
//     each import that breaks it: authz/... is plain Go (no protobuf, gRPC,
//     OPA, YAML or config); only the edges (envoy/, server/, controlplane/,
//     cmd/, e2e/, bench/) speak go-control-plane; engine builds and reloads
//     without envoy or Prometheus; config composes the stages' sections;
//     ops/... observes decisions and serves nothing; only cmd/ imports
//     server/ and cmd/.
//   - TestTopLevelFolders keeps at most twelve top-level folders with Go
//     code, each listed in README's layout.
//   - The docs tests: docs/troubleshooting.md names every message vaultwall
//     logs and every result code it counts, and the repository's Markdown
//     links stay inside the repository and point at files that exist.
package vaultwall
