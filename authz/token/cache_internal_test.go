package token

import (
	"context"
	"strings"
	"testing"
	"time"
	"unsafe"
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
	k := hashToken("t")
	o := c.do(t.Context(), &k, time.Now, func() outcome { panic("boom") })
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
	k := hashToken("t")
	started, release := make(chan struct{}), make(chan struct{})
	go c.do(t.Context(), &k, time.Now, func() outcome {
		close(started)
		<-release
		return outcome{err: context.Canceled}
	})
	<-started
	done := make(chan outcome)
	go func() {
		done <- c.do(t.Context(), &k, time.Now, func() outcome { return outcome{deny: unauthorized("verified again")} })
	}()
	for c.coalesced.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	if o := <-done; o.deny == nil || o.deny.Message != "verified again" {
		t.Errorf("the waiter got %+v", o)
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
