// Package cache is the one cache of the request path: Map, a bounded,
// sharded map from keys to values that expire, with single-flight calls
// for the keys it misses. The verified-token and refused-token caches of
// authz/token and the decision cache of rego are Maps.
//
// It owns:
//   - placement: a key (a string, or bytes looked up without a copy) is
//     placed by a keyed 64-bit hash (hash/maphash, one seed per Map, or
//     shared by Maps that are to place keys alike), but every entry and
//     every call in flight holds the key itself, compared in full before
//     it is served or joined: two keys that collide share a slot, never a
//     value. An entry holds its own copy of its key, never the caller's
//     bytes;
//   - expiry: each entry expires at a time in unix nanoseconds, and is
//     never served from then on; Config.Valid may refuse an entry earlier
//     (authz/token: the issuer's keys changed). An entry found unusable is
//     dropped;
//   - the bound: Config.Capacity entries, spread over up to 16 shards
//     (each on its own cache line, its reads under a read lock). A full
//     shard first drops the entries no longer usable, then an arbitrary
//     one. Nothing is allocated for the shards until the first entry is
//     kept, so an idle Map (one per vault) costs about a hundred bytes;
//   - single flight: Do calls fn at most once at a time per key, while
//     concurrent Do calls for the key wait for its value, each bounded by
//     its own context. Only a value is shared and kept: when fn fails (an
//     error or a panic), each waiter calls fn for itself and keeps
//     nothing;
//   - the counters (Stats): hits, misses (calls of fn), coalesced waits,
//     evictions, entries and capacity, for the metrics of its users.
//
// What a value means, how long it may be kept and what to do with a
// failure belong to the user: a Map knows keys, values, times and
// counters.
//
// Map rather than Cache: the package says what it is for, the type what
// it is.
//
// Imports: the standard library only.
package cache
