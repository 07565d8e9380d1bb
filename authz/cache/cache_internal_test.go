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
