package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// fileFormat names the file layout, so a future one is recognised.
const fileFormat = "vaultwall.state/v1"

// fileDoc is the file's content.
type fileDoc struct {
	Format   string          `json:"format"`
	Revision int64           `json:"revision"`
	State    json.RawMessage `json:"state"`
}

// File stores the state in one JSON file. Writers in one process are
// serialised by a mutex, and across processes by an advisory lock on
// <path>.lock, so two vaultwall processes sharing the file never lose a
// write; the revision lives in the file.
type File struct {
	path string
	poll time.Duration

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every local write
}

var _ Store = (*File)(nil)

// FileOption adjusts OpenFile.
type FileOption func(*File)

// WithPoll sets how often Watch re-reads the file besides file-system
// events (default 1s), for writers in other processes and missed events.
func WithPoll(d time.Duration) FileOption { return func(f *File) { f.poll = d } }

// OpenFile opens the file store at path, creating nothing until the first
// write. The directory must exist and be writable. Temporary files left by a
// writer that was killed mid-write are removed. A file that exists but does
// not parse is an error: vaultwall never starts on an empty state by
// mistake.
func OpenFile(path string, opts ...FileOption) (*File, error) {
	f := &File{path: path, poll: time.Second, changed: make(chan struct{})}
	for _, o := range opts {
		o(f)
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("state file %s: %s is not a directory", path, dir)
	}
	unlock, err := f.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	temps, _ := filepath.Glob(filepath.Join(dir, "."+filepath.Base(path)+".tmp-*"))
	for _, t := range temps {
		_ = os.Remove(t)
	}
	if _, _, err := f.read(); err != nil {
		return nil, err
	}
	return f, nil
}

// ReadFile reads the state file at path without opening the store: no
// lock, no clean-up, nothing created (config validate). A missing file is
// the empty state at revision 0.
func ReadFile(path string) (Snapshot, error) {
	st, rev, err := (&File{path: path}).read()
	if err != nil {
		return Snapshot{}, err
	}
	return Snapshot{State: st, Revision: rev}, nil
}

// Path is the state file.
func (f *File) Path() string { return f.path }

// Get reads the file.
func (f *File) Get(ctx context.Context) (Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return Snapshot{}, err
	}
	st, rev, err := f.read()
	if err != nil {
		return Snapshot{}, err
	}
	return Snapshot{State: st, Revision: rev}, nil
}

func (f *File) read() (State, int64, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, 0, nil
	}
	if err != nil {
		return State{}, 0, fmt.Errorf("state file: %w", err)
	}
	var doc fileDoc
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return State{}, 0, fmt.Errorf("state file %s: %w", f.path, err)
	}
	if doc.Format != fileFormat {
		return State{}, 0, fmt.Errorf("state file %s: format %q, want %q", f.path, doc.Format, fileFormat)
	}
	st, err := Decode(doc.State)
	if err != nil {
		return State{}, 0, fmt.Errorf("state file %s: %w", f.path, err)
	}
	return st, doc.Revision, nil
}

// CompareAndSwap writes st as revision rev+1 if the file is still at rev.
// The write is atomic and durable before it returns: temp file in the same
// directory, fsync, rename over the old file, fsync of the directory.
func (f *File) CompareAndSwap(ctx context.Context, rev int64, st State) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	unlock, err := f.lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	_, cur, err := f.read()
	if err != nil {
		return 0, err
	}
	if cur != rev {
		return 0, &ConflictError{Want: rev, Current: cur}
	}
	raw, err := Encode(st)
	if err != nil {
		return 0, err
	}
	doc, err := json.MarshalIndent(fileDoc{Format: fileFormat, Revision: rev + 1, State: raw}, "", "  ")
	if err != nil {
		return 0, err
	}
	if err := writeAtomic(f.path, append(doc, '\n')); err != nil {
		return 0, fmt.Errorf("state file: %w", err)
	}
	close(f.changed)
	f.changed = make(chan struct{})
	return rev + 1, nil
}

// writeAtomic replaces path with data so that a crash at any point leaves
// the old content or the new, never a mix, and the new content is on disk
// when it returns.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err = tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// The rename lives in the directory: without this fsync a power loss
	// could bring back the old file after the write was acknowledged.
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Watch sends the current snapshot and then each new one: at once for
// writes of this process, on file-system events (fsnotify on the
// directory, since the file is replaced by a rename) for other processes,
// and every poll period as a fallback.
func (f *File) Watch(ctx context.Context) <-chan Snapshot {
	out := make(chan Snapshot, 1)
	go func() {
		defer close(out)
		var events <-chan fsnotify.Event
		var errs <-chan error
		if w, err := fsnotify.NewWatcher(); err == nil {
			defer w.Close()
			if w.Add(filepath.Dir(f.path)) == nil {
				events, errs = w.Events, w.Errors
			}
		}
		ticker := time.NewTicker(f.poll)
		defer ticker.Stop()
		last := int64(-1)
		base := filepath.Base(f.path)
		for {
			f.mu.Lock()
			changed := f.changed
			f.mu.Unlock()
			if snap, err := f.Get(ctx); err == nil && snap.Revision != last {
				last = snap.Revision
				select { // keep only the latest for a slow reader
				case <-out:
				default:
				}
				out <- snap
			}
		wait:
			for {
				select {
				case <-ctx.Done():
					return
				case <-changed:
					break wait
				case <-ticker.C:
					break wait
				case <-errs: // drained so the watcher never blocks; the poll covers a lost event
				case ev := <-events:
					if filepath.Base(ev.Name) == base && !strings.HasSuffix(ev.Name, ".lock") {
						break wait
					}
				}
			}
		}
	}()
	return out
}

// Close releases nothing: the store holds no open file between calls.
func (f *File) Close() error { return nil }
