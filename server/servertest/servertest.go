package servertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/server"
)

// Start runs server.Serve with o (its Listening is replaced) until the test
// ends or stop is called, and returns the bound addresses once every
// listener is open. stop (also run at the end of the test; once is enough)
// cancels Serve and waits up to 15 s for it to stop, failing the test if it
// does not or returns an error: a graceful stop is part of what is tested.
func Start(t testing.TB, o server.Options) (a server.Addrs, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	addrs := make(chan server.Addrs, 1)
	done := make(chan error, 1)
	o.Listening = func(a server.Addrs) error { addrs <- a; return nil }
	go func() { done <- server.Serve(ctx, o) }()
	select {
	case a = <-addrs:
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("not listening after 20s")
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve returned %v after a graceful stop", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("serve did not stop within 15s")
			}
		})
	}
	t.Cleanup(stop)
	return a, stop
}
