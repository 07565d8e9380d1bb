package etcdstore

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vaultwall/vaultwall/controlplane/store"
)

// Documents keeps each vault's document under <prefix><vault>/document
// (beside its state, <prefix><vault>/state). A document's version is its
// key's ModRevision.
type Documents struct {
	client *clientv3.Client
	prefix string
	log    *slog.Logger
}

var _ store.Documents = (*Documents)(nil)

// NewDocuments uses an existing client; prefix is controlPlane.store.keyPrefix.
func NewDocuments(client *clientv3.Client, prefix string, log *slog.Logger) *Documents {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Documents{client: client, prefix: prefix, log: log}
}

// DocumentKey is the key of the document of the vault called name.
func DocumentKey(prefix, name string) string {
	return prefix + strings.ToLower(name) + "/document"
}

// nameOf is the vault of a document key, "" for any other key.
func (d *Documents) nameOf(key string) string {
	rest, ok := strings.CutPrefix(key, d.prefix)
	if !ok {
		return ""
	}
	name, ok := strings.CutSuffix(rest, "/document")
	if !ok || name == "" || strings.Contains(name, "/") {
		return ""
	}
	return name
}

// List reads every document key under the prefix.
func (d *Documents) List(ctx context.Context) ([]store.Document, error) {
	resp, err := d.client.Get(ctx, d.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcd get %s*: %w", d.prefix, err)
	}
	var out []store.Document
	for _, kv := range resp.Kvs {
		if name := d.nameOf(string(kv.Key)); name != "" {
			out = append(out, store.Document{Name: name, Data: kv.Value, Version: strconv.FormatInt(kv.ModRevision, 10)})
		}
	}
	return out, nil
}

// Create puts the document if its key does not exist, in one transaction.
func (d *Documents) Create(ctx context.Context, name string, data []byte) (string, error) {
	key := DocumentKey(d.prefix, name)
	resp, err := d.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(data))).
		Commit()
	if err != nil {
		return "", fmt.Errorf("etcd txn %s: %w", key, err)
	}
	if !resp.Succeeded {
		return "", fmt.Errorf("%w: %s", store.ErrExists, key)
	}
	return strconv.FormatInt(resp.Header.Revision, 10), nil
}

// Delete deletes the document key if its ModRevision is still version.
func (d *Documents) Delete(ctx context.Context, name, version string) error {
	key := DocumentKey(d.prefix, name)
	cmp := clientv3.Compare(clientv3.CreateRevision(key), ">", 0)
	if version != "*" {
		rev, err := strconv.ParseInt(version, 10, 64)
		if err != nil || rev <= 0 {
			return fmt.Errorf("%w: %q is not an etag this store issued", store.ErrConflict, version)
		}
		cmp = clientv3.Compare(clientv3.ModRevision(key), "=", rev)
	}
	resp, err := d.client.Txn(ctx).If(cmp).Then(clientv3.OpDelete(key)).Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).Commit()
	if err != nil {
		return fmt.Errorf("etcd txn %s: %w", key, err)
	}
	if !resp.Succeeded {
		if rs := resp.Responses; len(rs) == 1 && rs[0].GetResponseRange() != nil && len(rs[0].GetResponseRange().Kvs) == 1 {
			return fmt.Errorf("%w (etag %s, current %d)", store.ErrConflict, version, rs[0].GetResponseRange().Kvs[0].ModRevision)
		}
		return store.ErrNotStored
	}
	return nil
}

// Changes signals every change of a document under the prefix (another
// replica's create or delete) until ctx ends, with a prefix watch that is
// resumed, with a backoff, when it breaks; the reader lists again.
func (d *Documents) Changes(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	signal := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	go func() {
		defer close(out)
		backoff := 100 * time.Millisecond
		for ctx.Err() == nil {
			wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			wch := d.client.Watch(wctx, d.prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
			signal() // anything missed while the watch was down
			var err error
			for resp := range wch {
				if err = resp.Err(); err != nil {
					break
				}
				for _, ev := range resp.Events {
					if d.nameOf(string(ev.Kv.Key)) != "" {
						signal()
						break
					}
				}
			}
			cancel()
			if ctx.Err() != nil {
				return
			}
			d.log.Warn("control-plane store: etcd watch of the vault documents ended; resuming", "prefix", d.prefix, "error", err)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}()
	return out
}
