package cache

import (
	"strings"
	"testing"
	"unsafe"
)

func TestShardFillsACacheLine(t *testing.T) {
	if n := unsafe.Sizeof(shard[struct{ a, b, c int }]{}); n != 64 {
		t.Errorf("shard is %d bytes, want 64: adjust its padding", n)
	}
}

// An entry keeps its own copy of a string key, not the caller's bytes (a
// token cut from a request's header).
func TestPutCopiesTheKey(t *testing.T) {
	m := New[string](Config[int]{Capacity: 10})
	header := "Bearer " + strings.Repeat("x", 1000)
	tok := header[len("Bearer "):]
	h := m.Hash(tok)
	m.Put(h, tok, 1, 1, 0)
	e := m.shard(h).m[h]
	if e.key != tok || unsafe.StringData(e.key) == unsafe.StringData(tok) {
		t.Error("the entry shares the caller's key bytes")
	}
	// Do keeps a copy too.
	h2 := m.Hash(header)
	_, _, _ = m.Do(t.Context(), h2, header, 0, func() (int, int64, error) { return 1, 1, nil })
	if e := m.shard(h2).m[h2]; e.key != header || unsafe.StringData(e.key) == unsafe.StringData(header) {
		t.Error("an entry kept by Do shares the caller's key bytes")
	}
}

// A Map costs one allocation until it keeps something: one idle Map per
// vault must stay small. Its shards come with the first entry kept.
func TestNewIsLazy(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = New[string](Config[int]{Capacity: 10000}) }); n > 1 {
		t.Errorf("New allocates %v times, want 1", n)
	}
	m := New[string](Config[int]{Capacity: 10000})
	h := m.Hash("k")
	if _, ok := m.Get(h, "k", 0); ok {
		t.Error("an empty Map served a value")
	}
	if s := m.Stats(); s.Entries != 0 || s.Capacity != 10000 {
		t.Errorf("stats of an unused Map: %+v", s)
	}
	if m.shards.Load() != nil || m.flights != nil {
		t.Error("Get or Stats allocated the shards or the flights")
	}
	m.Put(h, "k", 1, 2, 1)
	shards := m.shards.Load()
	if shards == nil || len(*shards) != maxShards {
		t.Fatalf("after Put: shards = %v", shards)
	}
	total, maps := 0, 0
	for i := range *shards {
		total += (*shards)[i].max
		if (*shards)[i].m != nil {
			maps++
		}
	}
	if total != 10000 || maps != 1 {
		t.Errorf("shard bounds add up to %d (want 10000); %d shard maps allocated (want 1)", total, maps)
	}
	if v, ok := m.Get(h, "k", 1); !ok || v != 1 {
		t.Errorf("Get after Put = %v, %v", v, ok)
	}
}
