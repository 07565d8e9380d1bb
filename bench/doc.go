// Package bench holds vaultwall's performance harness: the in-process
// benchmark of the whole Check path (check_test.go), the load workload
// (bench/workload), the no-op ext_authz floor server (bench/floor), the
// `make bench` runner (bench/run) and the `make bench-envoy` runner through a
// real Envoy (bench/envoyrun). See README.md.
//
// Imports: anything in the module; nothing imports it.
package bench
