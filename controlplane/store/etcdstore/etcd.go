package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vaultwall/vaultwall/controlplane/store"
)

// Store keeps the state under <prefix>state. The revision is the key's
// ModRevision, so the etag changes with every write, from any replica.
type Store struct {
	client *clientv3.Client
	key    string
	log    *slog.Logger
	own    bool
}

var _ store.Store = (*Store)(nil)

// New uses an existing client; Close leaves it open.
func New(client *clientv3.Client, prefix string, log *slog.Logger) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{client: client, key: prefix + "state", log: log}
}

// Open connects to etcd. The client dials lazily; the first Get tells
// whether etcd answers.
func Open(cfg clientv3.Config, prefix string, log *slog.Logger) (*Store, error) {
	c, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	s := New(c, prefix, log)
	s.own = true
	return s, nil
}

// Key is the etcd key holding the state.
func (s *Store) Key() string { return s.key }

// Get reads the key with a linearizable read. A missing key is the empty
// state at revision 0.
func (s *Store) Get(ctx context.Context) (store.Snapshot, error) {
	resp, err := s.client.Get(ctx, s.key)
	if err != nil {
		return store.Snapshot{}, fmt.Errorf("etcd get %s: %w", s.key, err)
	}
	if len(resp.Kvs) == 0 {
		return store.Snapshot{}, nil
	}
	kv := resp.Kvs[0]
	st, err := store.Decode(kv.Value)
	if err != nil {
		return store.Snapshot{}, fmt.Errorf("etcd key %s: %w", s.key, err)
	}
	return store.Snapshot{State: st, Revision: kv.ModRevision}, nil
}

// CompareAndSwap puts st if the key's ModRevision is still rev (0: the key
// does not exist), in one transaction.
func (s *Store) CompareAndSwap(ctx context.Context, rev int64, st store.State) (int64, error) {
	raw, err := store.Encode(st)
	if err != nil {
		return 0, err
	}
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(s.key), "=", rev)).
		Then(clientv3.OpPut(s.key, string(raw))).
		Else(clientv3.OpGet(s.key, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("etcd txn %s: %w", s.key, err)
	}
	if !resp.Succeeded {
		cur := int64(0)
		if rs := resp.Responses; len(rs) == 1 && rs[0].GetResponseRange() != nil && len(rs[0].GetResponseRange().Kvs) == 1 {
			cur = rs[0].GetResponseRange().Kvs[0].ModRevision
		}
		return 0, &store.ConflictError{Want: rev, Current: cur}
	}
	return resp.Header.Revision, nil
}

// Watch sends the current snapshot and then every change. It survives
// etcd restarts and compaction: when the watch breaks it reads the key
// again and watches from there, with a backoff.
func (s *Store) Watch(ctx context.Context) <-chan store.Snapshot {
	out := make(chan store.Snapshot, 1)
	send := func(snap store.Snapshot) {
		select {
		case <-out: // keep only the latest for a slow reader
		default:
		}
		out <- snap
	}
	go func() {
		defer close(out)
		backoff := 100 * time.Millisecond
		last := int64(-1)
		for ctx.Err() == nil {
			snap, err := s.Get(ctx)
			if err != nil {
				s.log.Warn("control-plane store: etcd read failed; retrying", "key", s.key, "error", err, "retryIn", backoff)
				if !sleep(ctx, backoff) {
					return
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
			if snap.Revision != last {
				last = snap.Revision
				send(snap)
			}
			// Watch from the revision after the read's header, so that no
			// write between the read and the watch is missed.
			wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			wch := s.client.Watch(wctx, s.key, clientv3.WithRev(snap.Revision+1))
			err = s.follow(wctx, wch, &last, send)
			cancel()
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("control-plane store: etcd watch ended; resuming", "key", s.key, "error", err)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}()
	return out
}

func (s *Store) follow(ctx context.Context, wch clientv3.WatchChan, last *int64, send func(store.Snapshot)) error {
	for resp := range wch {
		if err := resp.Err(); err != nil {
			return err
		}
		for _, ev := range resp.Events {
			if ev.Type == clientv3.EventTypeDelete {
				*last = ev.Kv.ModRevision
				send(store.Snapshot{Revision: ev.Kv.ModRevision})
				continue
			}
			st, err := store.Decode(ev.Kv.Value)
			if err != nil {
				// Never apply a state that does not decode; keep the one in force.
				s.log.Error("control-plane store: ignoring an undecodable state", "key", s.key, "revision", ev.Kv.ModRevision, "error", err)
				continue
			}
			*last = ev.Kv.ModRevision
			send(store.Snapshot{State: st, Revision: ev.Kv.ModRevision})
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("watch channel closed")
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Close closes the client if Open made it.
func (s *Store) Close() error {
	if s.own {
		return s.client.Close()
	}
	return nil
}
