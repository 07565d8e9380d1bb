package etcdstore_test

import (
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/controlplane/store"
	"github.com/vaultwall/vaultwall/controlplane/store/etcdstore"
	"github.com/vaultwall/vaultwall/controlplane/store/etcdstore/etcdtest"
)

func state(oids ...string) store.State {
	var ps []authz.AccessPolicy
	for _, o := range oids {
		ps = append(ps, authz.AccessPolicy{TenantID: "t", ObjectID: o, Permissions: authz.Permissions{Secrets: []string{"get"}}})
	}
	return store.State{AccessPolicies: &ps}
}

func TestEtcdCompareAndSwapAndWatch(t *testing.T) {
	srv := etcdtest.Start(t)
	a := etcdstore.New(srv.Client(t), "/vaultwall/test/", nil)
	b := etcdstore.New(srv.Client(t), "/vaultwall/test/", nil)

	watch := b.Watch(t.Context())
	if s := <-watch; s.Revision != 0 {
		t.Fatalf("empty key: %+v", s)
	}
	snap, err := a.Get(t.Context())
	if err != nil || snap.Revision != 0 {
		t.Fatalf("empty key: %+v %v", snap, err)
	}
	rev, err := a.CompareAndSwap(t.Context(), 0, state("x"))
	if err != nil || rev == 0 {
		t.Fatalf("create: %d %v", rev, err)
	}
	// The other replica sees it through its watch.
	select {
	case s := <-watch:
		if s.Revision != rev || (*s.State.AccessPolicies)[0].ObjectID != "x" {
			t.Fatalf("watched %+v, want revision %d", s, rev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the write was not watched")
	}
	// b read nothing before the write: its stale etag (0) is refused, with
	// the current revision, and nothing changes.
	_, err = b.CompareAndSwap(t.Context(), 0, state("y"))
	var ce *store.ConflictError
	if !errors.Is(err, store.ErrConflict) || !errors.As(err, &ce) || ce.Current != rev {
		t.Fatalf("stale create: %v", err)
	}
	rev2, err := b.CompareAndSwap(t.Context(), rev, state("x", "y"))
	if err != nil || rev2 <= rev {
		t.Fatalf("update: %d %v", rev2, err)
	}
	if _, err := a.CompareAndSwap(t.Context(), rev, state("z")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update accepted: %v", err)
	}
	got, _ := a.Get(t.Context())
	if got.Revision != rev2 || len(*got.State.AccessPolicies) != 2 {
		t.Fatalf("after the refused write: %+v", got)
	}
	select {
	case s := <-watch:
		if s.Revision != rev2 {
			t.Fatalf("watched %+v", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the update was not watched")
	}
}

func TestEtcdWatchSkipsUndecodableState(t *testing.T) {
	srv := etcdtest.Start(t)
	c := srv.Client(t)
	s := etcdstore.New(c, "/p/", nil)
	rev, err := s.CompareAndSwap(t.Context(), 0, state("x"))
	if err != nil {
		t.Fatal(err)
	}
	w := s.Watch(t.Context())
	<-w
	if _, err := c.Put(t.Context(), s.Key(), `{"accessPolicies": "not a list"}`); err != nil {
		t.Fatal(err)
	}
	rev3, err := s.CompareAndSwap(t.Context(), mustRev(t, s, c), state("y"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-w:
		if got.Revision != rev3 || (*got.State.AccessPolicies)[0].ObjectID != "y" {
			t.Fatalf("after a bad value: %+v (first write was %d)", got, rev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no snapshot after the bad value")
	}
	if _, err := s.Get(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// mustRev reads the key's revision even when its value does not decode,
// and checks that Get refuses such a value.
func mustRev(t *testing.T, s *etcdstore.Store, c *clientv3.Client) int64 {
	t.Helper()
	if _, err := s.Get(t.Context()); err == nil {
		t.Fatal("a bad value decoded")
	}
	resp, err := c.Get(t.Context(), s.Key())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("%v %v", resp, err)
	}
	return resp.Kvs[0].ModRevision
}

// TestOpen: Open dials the configured endpoints and owns its client: the
// store reads and writes through it, and Close closes it. New borrows a
// client and leaves it open. A configuration without endpoints is refused.
func TestOpen(t *testing.T) {
	srv := etcdtest.Start(t)
	s, err := etcdstore.Open(clientv3.Config{Endpoints: []string{srv.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}, "/open/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Key() != "/open/state" {
		t.Fatalf("key %q", s.Key())
	}
	rev, err := s.CompareAndSwap(t.Context(), 0, state("x"))
	if err != nil || rev == 0 {
		t.Fatalf("write through an opened store: %d %v", rev, err)
	}
	// The state is in etcd, under the prefix, for any other client.
	other := etcdstore.New(srv.Client(t), "/open/", nil)
	got, err := other.Get(t.Context())
	if err != nil || got.Revision != rev || (*got.State.AccessPolicies)[0].ObjectID != "x" {
		t.Fatalf("read back: %+v %v", got, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context()); err == nil {
		t.Fatal("the opened store still reads after Close: its client was not closed")
	}
	// New borrows: Close leaves the client to its owner.
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Get(t.Context()); err != nil {
		t.Fatalf("a borrowed client was closed: %v", err)
	}

	if _, err := etcdstore.Open(clientv3.Config{Logger: zap.NewNop()}, "/open/", nil); err == nil {
		t.Fatal("Open without endpoints succeeded")
	}
}
