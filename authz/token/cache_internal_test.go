package token

import (
	"context"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/vaultwall/vaultwall/authz"
)

func TestShardFillsACacheLine(t *testing.T) {
	if n := unsafe.Sizeof(shard{}); n != 64 {
		t.Errorf("shard is %d bytes, want 64: adjust its padding", n)
	}
}

// A verification that panics fails closed: an error, no caller, and the
// flight is released.
func TestDoPanicFailsClosed(t *testing.T) {
	c := newTokenCache(10)
	o := c.do(t.Context(), c.key("t"), "t", time.Now, func() outcome { panic("boom") })
	if o.err == nil || o.caller != nil || !strings.Contains(o.err.Error(), "boom") {
		t.Errorf("outcome %+v", o)
	}
	if len(c.flights) != 0 {
		t.Error("the flight was not released")
	}
}

// When the request verifying a token gives up, a waiter whose own request
// is still live verifies in its place instead of inheriting the error.
func TestDoLeaderGivesUp(t *testing.T) {
	c := newTokenCache(10)
	k := c.key("t")
	started, release := make(chan struct{}), make(chan struct{})
	go c.do(t.Context(), k, "t", time.Now, func() outcome {
		close(started)
		<-release
		return outcome{err: context.Canceled}
	})
	<-started
	done := make(chan outcome)
	go func() {
		done <- c.do(t.Context(), k, "t", time.Now, func() outcome { return outcome{deny: unauthorized("verified again")} })
	}()
	for c.coalesced.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	if o := <-done; o.deny == nil || o.deny.Message != "verified again" {
		t.Errorf("the waiter got %+v", o)
	}
}

// Two tokens whose keys collide share a slot, never a caller: a hit needs
// the stored token to equal the request's, and a verification in flight
// for one is never joined by the other.
func TestCacheKeyCollision(t *testing.T) {
	c := newTokenCache(10)
	const k = cacheKey(42) // both tokens land here, as a collision would
	src := &source{}
	src.keys.Store(&keySet{gen: 1})
	alice := &authz.Caller{ObjectID: "alice"}
	now := time.Now()
	c.put(k, "token-a", &outcome{caller: alice, src: src, gen: 1, expires: now.Add(time.Hour)}, now.UnixNano())
	if got := c.get(k, "token-b", now.UnixNano()); got != nil {
		t.Fatalf("token-b was served token-a's caller %+v", got)
	}
	if got := c.get(k, "token-a", now.UnixNano()); got != alice {
		t.Fatalf("token-a: %+v", got)
	}

	started, release := make(chan struct{}), make(chan struct{})
	leader := make(chan outcome)
	go func() {
		leader <- c.do(t.Context(), k, "token-c", time.Now, func() outcome {
			close(started)
			<-release
			return outcome{caller: alice, src: src, gen: 1, expires: now.Add(time.Hour)}
		})
	}()
	<-started
	bob := &authz.Caller{ObjectID: "bob"}
	o := c.do(t.Context(), k, "token-d", time.Now, func() outcome {
		return outcome{caller: bob, src: src, gen: 1, expires: now.Add(time.Hour)}
	})
	if o.caller != bob || c.coalesced.Load() != 0 {
		t.Fatalf("token-d got %+v (coalesced %d): it joined token-c's flight", o.caller, c.coalesced.Load())
	}
	close(release)
	if o := <-leader; o.caller != alice {
		t.Fatalf("token-c got %+v", o.caller)
	}
}

// The cache keeps its own copy of a token, not the request's header.
func TestCacheCopiesTheToken(t *testing.T) {
	c := newTokenCache(10)
	header := "Bearer " + strings.Repeat("x", 1000)
	tok := header[len("Bearer "):]
	src := &source{}
	src.keys.Store(&keySet{gen: 1})
	now := time.Now()
	c.put(c.key(tok), tok, &outcome{caller: &authz.Caller{}, src: src, gen: 1, expires: now.Add(time.Hour)}, now.UnixNano())
	e := c.shard(c.key(tok)).m[c.key(tok)]
	if e.token != tok || unsafe.StringData(e.token) == unsafe.StringData(tok) {
		t.Error("the entry shares the request's token bytes")
	}
}

func TestEcho(t *testing.T) {
	for in, want := range map[string]string{
		"kid-1":                   "kid-1",
		"a\r\nb\x00c\x7f":         "a??b?c?",
		"\xff\xfe":                "??",
		strings.Repeat("é", 100):  strings.Repeat("é", 64) + "…",
		strings.Repeat("k", 1000): strings.Repeat("k", 128) + "…",
	} {
		if got := echo(in); got != want {
			t.Errorf("echo(%q) = %q, want %q", in, got, want)
		}
	}
}

// A refusal is served only to its own token, as a copy, and never as a
// caller.
func TestRefusalKeyCollision(t *testing.T) {
	c := newTokenCache(10)
	const k = cacheKey(7)
	now := time.Now()
	c.putRefusal(k, "token-a", &outcome{deny: denySignature(), final: true}, now.UnixNano())
	if d := c.refusal(k, "token-b", now, 0); d != nil {
		t.Fatalf("token-b was served token-a's refusal %+v", d)
	}
	if got := c.get(k, "token-a", now.UnixNano()); got != nil {
		t.Fatalf("a refusal served as caller %+v", got)
	}
	d1, d2 := c.refusal(k, "token-a", now, 0), c.refusal(k, "token-a", now, 0)
	if d1 == nil || d1 == d2 || d1.Message != denySignature().Message {
		t.Fatalf("token-a: %+v, %+v", d1, d2)
	}
}
