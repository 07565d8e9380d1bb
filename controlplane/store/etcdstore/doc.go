// Package etcdstore is the control plane's store for a fleet: the state is
// one etcd key, written with a transaction that compares the key's
// ModRevision with the writer's etag, and watched by every replica.
//
// Imports: controlplane/store, go.etcd.io/etcd/client/v3 and the standard
// library.
package etcdstore
