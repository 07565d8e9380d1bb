package cache

import (
	"context"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
)

// Key is what a Map is keyed by: a string, or bytes (looked up without
// being copied; only an entry kept holds a copy).
type Key interface{ string | []byte }

// Hash places a key in a Map: a keyed 64-bit hash (hash/maphash) of it.
// It only places the key. Every entry and every call in flight holds its
// key, compared in full before it is served or joined, so two keys that
// collide share a slot (the later evicts the earlier), never a value.
type Hash uint64

// Config is what New builds a Map from.
type Config[V any] struct {
	// Capacity is the most entries the Map holds; it must be positive.
	Capacity int
	// Seed keys Hash. Two Maps with the same seed place a key alike, so
	// that one Hash serves both. The zero Seed draws a random one.
	Seed maphash.Seed
	// Valid, when set, says whether a value not yet expired may still be
	// served; an entry it refuses is dropped as an expired one is.
	Valid func(V) bool
}

// Stats are a Map's counters.
type Stats struct {
	Hits      uint64 // values served: by Get, or by Do finding one another call just kept
	Misses    uint64 // calls of fn by Do (a miss that did the work)
	Coalesced uint64 // Do calls that waited for another's fn
	Evictions uint64 // entries dropped to make room, or found expired or invalid
	Entries   int    // entries held now
	Capacity  int    // Config.Capacity
}

// Map is a bounded map from keys to values that expire, with single-flight
// calls for the keys it misses. It is sharded so that reads take no single
// lock, and safe for concurrent use. The zero Map is not usable: call New.
//
// A Map costs little until used: its shards are allocated when it first
// keeps an entry, a shard's map when the shard first keeps one, and the
// calls in flight when Do first calls fn; so one idle Map per vault
// (rego's decision cache) stays small.
type Map[K Key, V any] struct {
	seed     maphash.Seed
	valid    func(V) bool
	shards   atomic.Pointer[[]shard[V]] // nil until an entry is kept
	nshards  int
	capacity int

	hits, misses, coalesced, evictions atomic.Uint64

	fmu     sync.Mutex
	flights map[Hash]*flight[V] // nil until Do first calls fn
}

// maxShards: a full shard scans its entries to make room, so a shard stays
// a sixteenth of the capacity.
const maxShards = 16

type shard[V any] struct {
	mu  sync.RWMutex
	m   map[Hash]entry[V]
	max int
	_   [24]byte // a shard fills a 64-byte cache line: neighbours do not share one
}

type entry[V any] struct {
	key     string // the key itself: a hit compares it in full
	val     V
	expires int64 // unix nanoseconds; unusable from then on
}

type flight[V any] struct {
	key  string
	done chan struct{}
	val  V
	ok   bool // fn returned a value (no error, no panic)
}

// New returns an empty Map. It panics when cfg.Capacity is not positive.
func New[K Key, V any](cfg Config[V]) *Map[K, V] {
	if cfg.Capacity <= 0 {
		panic("cache: Capacity must be positive")
	}
	if cfg.Seed == (maphash.Seed{}) {
		cfg.Seed = maphash.MakeSeed()
	}
	return &Map[K, V]{
		seed:     cfg.Seed,
		valid:    cfg.Valid,
		nshards:  min(maxShards, cfg.Capacity),
		capacity: cfg.Capacity,
	}
}

// allocShards returns the shards, allocating them on the first call.
func (m *Map[K, V]) allocShards() []shard[V] {
	if s := m.shards.Load(); s != nil {
		return *s
	}
	n := m.nshards
	shards := make([]shard[V], n)
	for i := range shards {
		// The shards' bounds add up to the capacity exactly.
		shards[i].max = m.capacity / n
		if i < m.capacity%n {
			shards[i].max++
		}
	}
	if !m.shards.CompareAndSwap(nil, &shards) {
		return *m.shards.Load()
	}
	return shards
}

// Seed returns the seed that keys the Map's Hash, for a Map that is to
// place keys alike.
func (m *Map[K, V]) Seed() maphash.Seed { return m.seed }

// Hash returns the hash that places key.
func (m *Map[K, V]) Hash(key K) Hash {
	switch k := any(key).(type) {
	case string:
		return Hash(maphash.String(m.seed, k))
	case []byte:
		return Hash(maphash.Bytes(m.seed, k))
	}
	panic("unreachable")
}

// shard returns the shard h is placed in; nil while the Map has kept
// nothing.
func (m *Map[K, V]) shard(h Hash) *shard[V] {
	s := m.shards.Load()
	if s == nil {
		return nil
	}
	return shardOf(*s, h)
}

func shardOf[V any](shards []shard[V], h Hash) *shard[V] {
	return &shards[uint64(h>>32)%uint64(len(shards))]
}

func (m *Map[K, V]) usable(e *entry[V], now int64) bool {
	return now < e.expires && (m.valid == nil || m.valid(e.val))
}

// Get returns the value kept under key (placed by h) while it may be
// served at now (unix nanoseconds), dropping it once it may not.
func (m *Map[K, V]) Get(h Hash, key K, now int64) (V, bool) {
	sh := m.shard(h)
	if sh == nil {
		var zero V
		return zero, false
	}
	sh.mu.RLock()
	e, ok := sh.m[h]
	sh.mu.RUnlock()
	if !ok || e.key != string(key) {
		var zero V
		return zero, false
	}
	if !m.usable(&e, now) {
		sh.mu.Lock()
		if cur, ok := sh.m[h]; ok && !m.usable(&cur, now) {
			delete(sh.m, h)
			m.evictions.Add(1)
		}
		sh.mu.Unlock()
		var zero V
		return zero, false
	}
	m.hits.Add(1)
	return e.val, true
}

// Put keeps v under key (placed by h) until expires (unix nanoseconds);
// nothing when that is not after now. The entry holds its own copy of
// key, never the caller's bytes.
func (m *Map[K, V]) Put(h Hash, key K, v V, expires, now int64) {
	if expires > now {
		m.put(h, own(key, string(key)), v, expires, now)
	}
}

// own returns s, which is string(key), as a string an entry may hold: a
// copy, so that the entry does not pin the buffer the key was cut from (a
// request's header, a pooled buffer). string(key) of bytes is one already.
func own[K Key](key K, s string) string {
	if _, ok := any(key).(string); ok {
		return strings.Clone(s)
	}
	return s
}

// put makes room in a full shard by dropping the entries no longer usable,
// then, when none was, an arbitrary one.
func (m *Map[K, V]) put(h Hash, key string, v V, expires, now int64) {
	sh := shardOf(m.allocShards(), h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		sh.m = make(map[Hash]entry[V])
	}
	if _, ok := sh.m[h]; !ok && len(sh.m) >= sh.max {
		for k, e := range sh.m {
			if !m.usable(&e, now) {
				delete(sh.m, k)
				m.evictions.Add(1)
			}
		}
		if len(sh.m) >= sh.max {
			for k := range sh.m { // map order is random: a random eviction
				delete(sh.m, k)
				m.evictions.Add(1)
				break
			}
		}
	}
	sh.m[h] = entry[V]{key: key, val: v, expires: expires}
}

// Do calls fn for a key that missed (placed by h), at most once at a time
// per key: concurrent Do calls for the key wait for the first one's value
// instead, each bounded by its own ctx (when ctx ends first, Do returns
// ctx.Err() itself). fn returns the value, when it expires (unix
// nanoseconds: the value is kept until then, and not at all when that is
// not after now) and an error.
//
// Only a value is shared, and shared says that this call got another's.
// When fn fails (returns an error, or panics: the panic goes on in the
// call that ran fn), each waiter calls fn for itself and keeps nothing, so
// that one caller's failure never decides another's. A call in flight for
// another key on the same hash is never joined: Do calls fn on its own and
// keeps nothing.
func (m *Map[K, V]) Do(ctx context.Context, h Hash, key K, now int64, fn func() (V, int64, error)) (v V, shared bool, err error) {
	m.fmu.Lock()
	if f, ok := m.flights[h]; ok {
		m.fmu.Unlock()
		if f.key != string(key) {
			m.misses.Add(1)
			v, _, err = fn()
			return v, false, err
		}
		m.coalesced.Add(1)
		select {
		case <-f.done:
		case <-ctx.Done():
			return v, false, ctx.Err()
		}
		if f.ok {
			return f.val, true, nil
		}
		v, _, err = fn()
		return v, false, err
	}
	// The flight's key lives while this call does: it need not be a copy
	// (string(key) of bytes is one all the same).
	f := &flight[V]{key: string(key), done: make(chan struct{})}
	if m.flights == nil {
		m.flights = map[Hash]*flight[V]{}
	}
	m.flights[h] = f
	m.fmu.Unlock()
	defer func() {
		m.fmu.Lock()
		delete(m.flights, h)
		m.fmu.Unlock()
		close(f.done)
	}()

	if v, ok := m.Get(h, key, now); ok { // another call kept it between our miss and our lead
		f.val, f.ok = v, true
		return v, false, nil
	}
	m.misses.Add(1)
	v, expires, err := fn()
	if err != nil {
		return v, false, err
	}
	f.val, f.ok = v, true
	if expires > now {
		m.put(h, own(key, f.key), v, expires, now)
	}
	return v, false, nil
}

// Stats returns the Map's counters.
func (m *Map[K, V]) Stats() Stats {
	s := Stats{
		Hits:      m.hits.Load(),
		Misses:    m.misses.Load(),
		Coalesced: m.coalesced.Load(),
		Evictions: m.evictions.Load(),
		Capacity:  m.capacity,
	}
	shards := m.shards.Load()
	if shards == nil {
		return s
	}
	for i := range *shards {
		sh := &(*shards)[i]
		sh.mu.RLock()
		s.Entries += len(sh.m)
		sh.mu.RUnlock()
	}
	return s
}
