// Package etcdtest starts a real etcd server in the test process
// (go.etcd.io/etcd/server/v3/embed) on loopback ports, for tests of the
// etcd store and of replicas converging through it.
//
// Imports: go.etcd.io/etcd/server/v3/embed, go.etcd.io/etcd/client/v3, zap
// (to silence etcd) and the standard library. Tests only.
package etcdtest
