package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
)

var errNoRequest = errors.New("the record holds no request (vaultwall.request)")

// Counters count what happened to decisions handed to a Writer. One set can
// outlive several writers (a reload that moves the file), so metrics never
// go backwards.
type Counters struct {
	Written atomic.Uint64 // records written to the sink
	Dropped atomic.Uint64 // records dropped because the queue was full or the writer closed
	Failed  atomic.Uint64 // records lost to a sink error
}

// Options tune a Writer.
type Options struct {
	Log      *slog.Logger
	Counters *Counters
	// Stdout replaces os.Stdout for the stdout sink (tests).
	Stdout io.Writer
}

type item struct {
	d       *authz.Decision
	elapsed time.Duration
}

// Writer writes audit records off the hot path. Observe only enqueues; a
// single goroutine builds and writes the records.
type Writer struct {
	cfg    config.Audit
	q      chan item
	stop   chan struct{}
	done   chan struct{}
	closed atomic.Bool
	once   sync.Once
	sink   io.Writer
	closer io.Closer
	cnt    *Counters
	log    *slog.Logger
}

// New opens the sink of cfg and starts the writer. A file sink's directory
// is created and the file opened now, so a bad path fails the start (or the
// reload), not the first record.
func New(cfg config.Audit, o Options) (*Writer, error) {
	w := &Writer{
		cfg:  cfg,
		q:    make(chan item, max(cfg.QueueSize, 1)),
		stop: make(chan struct{}),
		done: make(chan struct{}),
		cnt:  o.Counters,
		log:  o.Log,
	}
	if w.cnt == nil {
		w.cnt = &Counters{}
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	switch cfg.Sink {
	case config.AuditSinkFile:
		if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o750); err != nil {
			return nil, fmt.Errorf("audit.path: %w", err)
		}
		f, err := os.OpenFile(cfg.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return nil, fmt.Errorf("audit.path: %w", err)
		}
		_ = f.Close()
		backups := cfg.MaxBackups
		if backups < 0 {
			backups = 0 // lumberjack: keep all
		}
		lj := &lumberjack.Logger{Filename: cfg.Path, MaxSize: cfg.MaxSizeMB, MaxBackups: backups,
			MaxAge: cfg.MaxAgeDays, Compress: cfg.Compress}
		w.sink, w.closer = lj, lj
	default:
		w.sink = o.Stdout
		if w.sink == nil {
			w.sink = os.Stdout
		}
	}
	go w.run()
	return w, nil
}

// Config is the configuration the writer was built from.
func (w *Writer) Config() config.Audit { return w.cfg }

var _ authz.Observer = (*Writer)(nil)

// Observe queues the decision for the log. It never blocks: with the queue
// full, the record is dropped and counted.
func (w *Writer) Observe(d *authz.Decision, elapsed time.Duration) {
	if w.closed.Load() {
		w.cnt.Dropped.Add(1)
		return
	}
	select {
	case w.q <- item{d, elapsed}:
	default:
		w.cnt.Dropped.Add(1)
	}
}

// Queued is the number of decisions waiting to be written.
func (w *Writer) Queued() int { return len(w.q) }

// Close stops taking decisions, writes those queued until ctx ends (what
// is left then is counted as dropped), and closes the sink.
func (w *Writer) Close(ctx context.Context) error {
	var err error
	w.once.Do(func() {
		w.closed.Store(true)
		close(w.stop)
		select {
		case <-w.done:
		case <-ctx.Done():
			err = ctx.Err()
			<-w.done // the worker stops after the record in hand
		}
		w.cnt.Dropped.Add(uint64(len(w.q)))
		if w.closer != nil {
			if cerr := w.closer.Close(); err == nil {
				err = cerr
			}
		}
	})
	return err
}

func (w *Writer) run() {
	defer close(w.done)
	// Records are batched, but every write to the sink holds whole records:
	// a rotating file then never splits one across two files.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	pending := 0
	var lastErrLog time.Time
	flush := func() {
		if buf.Len() == 0 {
			return
		}
		if _, err := w.sink.Write(buf.Bytes()); err != nil {
			w.cnt.Failed.Add(uint64(pending))
			w.logFailure(err, &lastErrLog)
		} else {
			w.cnt.Written.Add(uint64(pending))
		}
		buf.Reset()
		pending = 0
	}
	write := func(it item) {
		mark := buf.Len()
		if err := enc.Encode(FromDecision(it.d, it.elapsed)); err != nil {
			buf.Truncate(mark)
			w.cnt.Failed.Add(1)
			w.logFailure(err, &lastErrLog)
			return
		}
		pending++
		if buf.Len() >= 64<<10 {
			flush()
		}
	}
	for {
		select {
		case it := <-w.q:
			write(it)
			// Write what is already queued, then flush once.
			for n := len(w.q); n > 0; n-- {
				write(<-w.q)
			}
			flush()
		case <-w.stop:
			for {
				select {
				case it := <-w.q:
					write(it)
				default:
					flush()
					return
				}
			}
		}
	}
}

// logFailure logs a lost write at most once a minute.
func (w *Writer) logFailure(err error, last *time.Time) {
	if time.Since(*last) > time.Minute {
		*last = time.Now()
		w.log.Error("audit log write failed; records are being lost", "sink", w.cfg.Sink, "path", w.cfg.Path, "error", err)
	}
}
