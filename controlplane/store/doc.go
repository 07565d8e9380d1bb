// Package store keeps the vault properties that vaultwall's control plane
// owns (publicNetworkAccess, networkAcls, accessPolicies, roleAssignments,
// roleDefinitions) behind one small interface: Get, CompareAndSwap on a
// revision (the API's etag), and Watch.
//
// File is the single-node store: the whole state in one JSON file, replaced
// atomically (temp file in the same directory, fsync, rename, fsync of the
// directory), so a process killed at any point leaves either the previous
// or the new file, and a write that returned is on disk. The etcd store for
// fleets lives in store/etcdstore. ReadFile reads a state file without
// opening the store (config validate).
//
// Imports: authz, config, fsnotify and the standard library.
package store
