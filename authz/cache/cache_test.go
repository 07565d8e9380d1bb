package cache_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz/cache"
)

const hour = int64(time.Hour)

func newMap[K cache.Key](capacity int) *cache.Map[K, string] {
	return cache.New[K](cache.Config[string]{Capacity: capacity})
}

func TestGetPut(t *testing.T) {
	m := newMap[string](10)
	h := m.Hash("k")
	if _, ok := m.Get(h, "k", 0); ok {
		t.Fatal("a hit in an empty map")
	}
	m.Put(h, "k", "v", hour, 0)
	if v, ok := m.Get(h, "k", 1); !ok || v != "v" {
		t.Fatalf("Get = %q, %v", v, ok)
	}
	m.Put(m.Hash("late"), "late", "v", 5, 5) // expires at now: not kept
	if s := m.Stats(); s.Hits != 1 || s.Entries != 1 || s.Capacity != 10 || s.Misses != 0 {
		t.Errorf("stats %+v", s)
	}
}

// An entry is served before its expiry, never from then on, and dropped
// when found expired.
func TestExpiry(t *testing.T) {
	m := newMap[string](10)
	h := m.Hash("k")
	m.Put(h, "k", "v", 100, 0)
	if _, ok := m.Get(h, "k", 99); !ok {
		t.Fatal("not served before its expiry")
	}
	if _, ok := m.Get(h, "k", 100); ok {
		t.Fatal("served at its expiry")
	}
	if s := m.Stats(); s.Entries != 0 || s.Evictions != 1 {
		t.Errorf("stats %+v: want the expired entry dropped", s)
	}
}

// Config.Valid refuses an entry before its expiry; it is dropped.
func TestValid(t *testing.T) {
	var gen atomic.Int64
	m := cache.New[string](cache.Config[int64]{Capacity: 10, Valid: func(v int64) bool { return v == gen.Load() }})
	h := m.Hash("k")
	m.Put(h, "k", 0, hour, 0)
	if _, ok := m.Get(h, "k", 1); !ok {
		t.Fatal("a valid entry was not served")
	}
	gen.Store(1)
	if _, ok := m.Get(h, "k", 1); ok {
		t.Fatal("an invalid entry was served")
	}
	if s := m.Stats(); s.Entries != 0 || s.Evictions != 1 {
		t.Errorf("stats %+v", s)
	}
}

// Two keys whose hashes collide share a slot, never a value.
func TestCollision(t *testing.T) {
	m := newMap[string](10)
	const h = cache.Hash(42) // both keys land here, as a collision would
	m.Put(h, "a", "value of a", hour, 0)
	if v, ok := m.Get(h, "b", 0); ok {
		t.Fatalf("b was served a's value %q", v)
	}
	if v, ok := m.Get(h, "a", 0); !ok || v != "value of a" {
		t.Fatalf("a: %q, %v", v, ok)
	}
	m.Put(h, "b", "value of b", hour, 0) // b takes the slot
	if _, ok := m.Get(h, "a", 0); ok {
		t.Fatal("a still served")
	}
	if v, ok := m.Get(h, "b", 0); !ok || v != "value of b" {
		t.Fatalf("b: %q, %v", v, ok)
	}
}

// A Map keyed by bytes keeps its own copy of a key: the caller's buffer
// may be reused at once.
func TestBytesKeyCopied(t *testing.T) {
	m := newMap[[]byte](10)
	buf := []byte("key-1")
	h := m.Hash(buf)
	m.Put(h, buf, "v", hour, 0)
	copy(buf, "XXXXX")
	if _, ok := m.Get(h, []byte("key-1"), 0); !ok {
		t.Fatal("the entry's key changed with the caller's buffer")
	}
	if _, ok := m.Get(h, buf, 0); ok {
		t.Fatal("served another key")
	}
}

func TestSeedShared(t *testing.T) {
	a := newMap[string](10)
	b := cache.New[[]byte](cache.Config[int]{Capacity: 1, Seed: a.Seed()})
	if a.Hash("token") != b.Hash([]byte("token")) {
		t.Error("two maps with one seed place a key differently")
	}
	if newMap[string](10).Hash("token") == a.Hash("token") {
		t.Error("two maps without a seed share one")
	}
}

func TestNewPanicsWithoutCapacity(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	newMap[string](0)
}

// The map holds at most its capacity, whatever the number of keys.
func TestBounded(t *testing.T) {
	m := newMap[string](20)
	for i := range 100 {
		k := fmt.Sprint(i)
		m.Put(m.Hash(k), k, k, hour, 0)
	}
	if s := m.Stats(); s.Entries > 20 || s.Entries < 10 || s.Evictions != uint64(100-s.Entries) {
		t.Errorf("stats %+v: want at most 20 entries", s)
	}
}

// A full shard drops what is no longer usable before anything else.
func TestFullShardDropsExpiredFirst(t *testing.T) {
	m := newMap[string](32) // 16 shards of 2; hashes below 1<<32 share the first
	m.Put(1, "soon", "v", 10, 0)
	m.Put(2, "later", "v", 100, 0)
	m.Put(3, "new", "v", 100, 50)
	if _, ok := m.Get(2, "later", 50); !ok {
		t.Error("a usable entry was evicted while an expired one was held")
	}
	if _, ok := m.Get(3, "new", 50); !ok {
		t.Error("the new entry was not kept")
	}
	if s := m.Stats(); s.Entries != 2 || s.Evictions != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestGetAllocs(t *testing.T) {
	s := newMap[string](10)
	b := newMap[[]byte](10)
	ks := strings.Repeat("s", 1000)
	kb := []byte(strings.Repeat("b", 300))
	s.Put(s.Hash(ks), ks, "v", hour, 0)
	b.Put(b.Hash(kb), kb, "v", hour, 0)
	if n := testing.AllocsPerRun(100, func() { s.Get(s.Hash(ks), ks, 0) }); n != 0 {
		t.Errorf("Get of a string key: %v allocations", n)
	}
	if n := testing.AllocsPerRun(100, func() { b.Get(b.Hash(kb), kb, 0) }); n != 0 {
		t.Errorf("Get of a bytes key: %v allocations", n)
	}
}

// Concurrent misses on one key call fn once; every caller gets its value.
func TestDoSingleFlight(t *testing.T) {
	m := newMap[string](10)
	h := m.Hash("k")
	const n = 16
	var calls atomic.Int32
	release := make(chan struct{})
	fn := func() (string, int64, error) {
		calls.Add(1)
		<-release
		return "v", hour, nil
	}
	var wg sync.WaitGroup
	var shared atomic.Int32
	for range n {
		wg.Go(func() {
			v, sh, err := m.Do(t.Context(), h, "k", 0, fn)
			if err != nil || v != "v" {
				t.Errorf("Do = %q, %v", v, err)
			}
			if sh {
				shared.Add(1)
			}
		})
	}
	// Every caller but the one running fn waits for it.
	for m.Stats().Coalesced < n-1 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if c := calls.Load(); c != 1 {
		t.Errorf("fn called %d times", c)
	}
	if s := m.Stats(); s.Misses != 1 || s.Coalesced != n-1 || shared.Load() != n-1 || s.Entries != 1 {
		t.Errorf("stats %+v, shared %d", s, shared.Load())
	}
	if v, ok := m.Get(h, "k", 1); !ok || v != "v" {
		t.Error("the value was not kept")
	}
}

// A Do that finds the value kept (another call kept it between its miss
// and its lead) serves it without calling fn.
func TestDoFindsKeptValue(t *testing.T) {
	m := newMap[string](10)
	h := m.Hash("k")
	m.Put(h, "k", "kept", hour, 0)
	v, shared, err := m.Do(t.Context(), h, "k", 0, func() (string, int64, error) {
		t.Error("fn called")
		return "", 0, nil
	})
	if v != "kept" || shared || err != nil {
		t.Errorf("Do = %q, %v, %v", v, shared, err)
	}
	if s := m.Stats(); s.Hits != 1 || s.Misses != 0 {
		t.Errorf("stats %+v", s)
	}
}

// A value that expires at or before now is returned, not kept.
func TestDoKeepsOnlyWhatOutlivesNow(t *testing.T) {
	m := newMap[string](10)
	h := m.Hash("k")
	if v, _, err := m.Do(t.Context(), h, "k", 100, func() (string, int64, error) { return "v", 100, nil }); v != "v" || err != nil {
		t.Fatalf("Do = %q, %v", v, err)
	}
	if s := m.Stats(); s.Entries != 0 {
		t.Errorf("kept: %+v", s)
	}
}

// Only a value is shared: when fn fails or panics, each waiter calls fn
// for itself and keeps nothing; the flight is released either way.
func TestDoFailureIsNotShared(t *testing.T) {
	errBoom := errors.New("boom")
	for _, lead := range []struct {
		name string
		fn   func() (string, int64, error)
	}{
		{"fails", func() (string, int64, error) { return "", hour, errBoom }},
		{"panics", func() (string, int64, error) { panic(errBoom) }},
	} {
		t.Run(lead.name, func(t *testing.T) {
			m := newMap[string](10)
			h := m.Hash("k")
			started, release := make(chan struct{}), make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				defer func() {
					if r := recover(); r != nil && r != errBoom {
						t.Errorf("panic %v", r)
					}
				}()
				_, _, err := m.Do(t.Context(), h, "k", 0, func() (string, int64, error) {
					close(started)
					<-release
					return lead.fn()
				})
				if !errors.Is(err, errBoom) {
					t.Errorf("the leader got %v", err)
				}
			})
			<-started
			var v string
			var shared bool
			var err error
			wg.Go(func() {
				v, shared, err = m.Do(t.Context(), h, "k", 0, func() (string, int64, error) { return "own", hour, nil })
			})
			for m.Stats().Coalesced == 0 {
				time.Sleep(time.Millisecond)
			}
			close(release)
			wg.Wait()
			if v != "own" || shared || err != nil {
				t.Fatalf("the waiter got %q, %v, %v; want its own value", v, shared, err)
			}
			if _, ok := m.Get(h, "k", 0); ok {
				t.Error("something was kept")
			}
			// The flight is gone: the next Do leads and calls fn.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if v, _, err := m.Do(ctx, h, "k", 0, func() (string, int64, error) { return "next", hour, nil }); v != "next" || err != nil {
				t.Errorf("after the failure: %q, %v", v, err)
			}
		})
	}
}

// A waiter whose context ends gives up with ctx.Err() itself, without
// calling fn; the leader's value is kept all the same.
func TestDoWaiterGivesUp(t *testing.T) {
	m := newMap[string](10)
	h := m.Hash("k")
	started, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		_, _, _ = m.Do(context.Background(), h, "k", 0, func() (string, int64, error) {
			close(started)
			<-release
			return "v", hour, nil
		})
	}()
	<-started
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := m.Do(ctx, h, "k", 0, func() (string, int64, error) {
		t.Error("fn called")
		return "", 0, nil
	}); err != context.Canceled { // ctx.Err() itself, not wrapped
		t.Errorf("err %v, want context.Canceled", err)
	}
	close(release)
	<-done
	if v, ok := m.Get(h, "k", 0); !ok || v != "v" {
		t.Error("the leader's value was not kept")
	}
}

// A call in flight for another key on the same hash is never joined.
func TestDoCollision(t *testing.T) {
	m := newMap[string](10)
	const h = cache.Hash(7)
	started, release := make(chan struct{}), make(chan struct{})
	leader := make(chan string)
	go func() {
		v, _, _ := m.Do(t.Context(), h, "a", 0, func() (string, int64, error) {
			close(started)
			<-release
			return "value of a", hour, nil
		})
		leader <- v
	}()
	<-started
	v, shared, err := m.Do(t.Context(), h, "b", 0, func() (string, int64, error) { return "value of b", hour, nil })
	if v != "value of b" || shared || err != nil || m.Stats().Coalesced != 0 {
		t.Fatalf("b got %q, %v, %v (stats %+v): it joined a's call", v, shared, err, m.Stats())
	}
	close(release)
	if v := <-leader; v != "value of a" {
		t.Fatalf("a got %q", v)
	}
	if _, ok := m.Get(h, "b", 0); ok {
		t.Error("b's value, made alone, was kept")
	}
	if s := m.Stats(); s.Misses != 2 {
		t.Errorf("stats %+v: want both calls of fn counted", s)
	}
}

// Many goroutines on a small map (run it with -race): a key is only ever
// served its own value, and the bound holds.
func TestConcurrent(t *testing.T) {
	var gen atomic.Int64
	type val struct {
		key string
		gen int64
	}
	m := cache.New[[]byte](cache.Config[val]{Capacity: 8, Valid: func(v val) bool { return v.gen >= gen.Load()-1 }})
	const keys = 40
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			buf := make([]byte, 0, 16)
			for i := range 3000 {
				k := fmt.Appendf(buf[:0], "key-%d", r.IntN(keys))
				h := m.Hash(k)
				if g == 0 && i%100 == 0 {
					gen.Add(1)
				}
				// A few hashes are forced to collide.
				if r.IntN(10) == 0 {
					h = cache.Hash(r.IntN(3))
				}
				now := int64(i)
				if v, ok := m.Get(h, k, now); ok {
					if v.key != string(k) {
						t.Errorf("%s was served the value of %s", k, v.key)
						return
					}
					continue
				}
				v, _, err := m.Do(t.Context(), h, k, now, func() (val, int64, error) {
					if r.IntN(20) == 0 {
						return val{}, 0, errors.New("failed")
					}
					return val{string(k), gen.Load()}, now + int64(r.IntN(500)), nil
				})
				if err == nil && v.key != string(k) {
					t.Errorf("%s was given the value of %s", k, v.key)
					return
				}
			}
		})
	}
	wg.Wait()
	if s := m.Stats(); s.Entries > 8 || s.Misses == 0 || s.Hits == 0 {
		t.Errorf("stats %+v", s)
	}
}

func BenchmarkGet(b *testing.B) {
	m := newMap[string](10000)
	k := strings.Repeat("t", 1000)
	h := m.Hash(k)
	m.Put(h, k, "v", hour, 0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := m.Get(m.Hash(k), k, 0); !ok {
				b.Error("miss")
				return
			}
		}
	})
}
