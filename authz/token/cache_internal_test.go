package token

import (
	"context"
	"hash/maphash"
	"strings"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/cache"
)

// A verification that panics fails closed: an error, no caller, and the
// flight is released (the next verification of the token runs).
func TestDoPanicFailsClosed(t *testing.T) {
	c := newTokenCache(10, maphash.Seed{})
	o := verifyOnce(t.Context(), c, c.Hash("t"), "t", time.Now, func() outcome { panic("boom") })
	if o.err == nil || o.caller != nil || !strings.Contains(o.err.Error(), "boom") {
		t.Errorf("outcome %+v", o)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	o = verifyOnce(ctx, c, c.Hash("t"), "t", time.Now, func() outcome { return outcome{deny: unauthorized("verified again")} })
	if o.deny == nil || c.Stats().Coalesced != 0 {
		t.Errorf("the flight was not released: %+v", o)
	}
}

// When the request verifying a token gives up, a waiter whose own request
// is still live verifies in its place instead of inheriting the error.
func TestDoLeaderGivesUp(t *testing.T) {
	c := newTokenCache(10, maphash.Seed{})
	k := c.Hash("t")
	started, release := make(chan struct{}), make(chan struct{})
	go verifyOnce(t.Context(), c, k, "t", time.Now, func() outcome {
		close(started)
		<-release
		return outcome{err: context.Canceled}
	})
	<-started
	done := make(chan outcome)
	go func() {
		done <- verifyOnce(t.Context(), c, k, "t", time.Now, func() outcome { return outcome{deny: unauthorized("verified again")} })
	}()
	for c.Stats().Coalesced == 0 {
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
	c := newTokenCache(10, maphash.Seed{})
	const k = cache.Hash(42) // both tokens land here, as a collision would
	src := &source{}
	src.keys.Store(&keySet{gen: 1})
	alice := &authz.Caller{ObjectID: "alice"}
	now := time.Now()
	c.Put(k, "token-a", &outcome{caller: alice, src: src, gen: 1, expires: now.Add(time.Hour)}, now.Add(time.Hour).UnixNano(), now.UnixNano())
	if got := cachedCaller(c, k, "token-b", now.UnixNano()); got != nil {
		t.Fatalf("token-b was served token-a's caller %+v", got)
	}
	if got := cachedCaller(c, k, "token-a", now.UnixNano()); got != alice {
		t.Fatalf("token-a: %+v", got)
	}

	started, release := make(chan struct{}), make(chan struct{})
	leader := make(chan outcome)
	go func() {
		leader <- verifyOnce(t.Context(), c, k, "token-c", time.Now, func() outcome {
			close(started)
			<-release
			return outcome{caller: alice, src: src, gen: 1, expires: now.Add(time.Hour)}
		})
	}()
	<-started
	bob := &authz.Caller{ObjectID: "bob"}
	o := verifyOnce(t.Context(), c, k, "token-d", time.Now, func() outcome {
		return outcome{caller: bob, src: src, gen: 1, expires: now.Add(time.Hour)}
	})
	if o.caller != bob || c.Stats().Coalesced != 0 {
		t.Fatalf("token-d got %+v (coalesced %d): it joined token-c's flight", o.caller, c.Stats().Coalesced)
	}
	close(release)
	if o := <-leader; o.caller != alice {
		t.Fatalf("token-c got %+v", o.caller)
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
	c := newTokenCache(10, maphash.Seed{})
	const k = cache.Hash(7)
	now := time.Now()
	putRefusal(c, k, "token-a", &outcome{deny: denySignature(), final: true}, now.UnixNano())
	if d := refusal(c, k, "token-b", now, 0); d != nil {
		t.Fatalf("token-b was served token-a's refusal %+v", d)
	}
	if got := cachedCaller(c, k, "token-a", now.UnixNano()); got != nil {
		t.Fatalf("a refusal served as caller %+v", got)
	}
	d1, d2 := refusal(c, k, "token-a", now, 0), refusal(c, k, "token-a", now, 0)
	if d1 == nil || d1 == d2 || d1.Message != denySignature().Message {
		t.Fatalf("token-a: %+v, %+v", d1, d2)
	}
}
