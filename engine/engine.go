package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/config"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/rego"
)

// Runtime is one built configuration: the pipeline and what it was built
// from.
type Runtime struct {
	Config     *config.Config
	Pipeline   *authz.Pipeline
	Generation uint64
	Digest     string // of the configuration and policy files it was built from
	Loaded     time.Time
	// PolicyFiles are the operator policy files loaded (empty: shipped only).
	PolicyFiles []string
	// Authenticator verifies tokens for this runtime (readiness, metrics).
	Authenticator *token.Authenticator
	// Policy is the compiled authorization policy.
	Policy *rego.Policy

	closers []func()
}

// retireAfter is how long a replaced runtime lives on for checks that
// started on it.
const retireAfter = 30 * time.Second

// Close releases what the runtime holds now (one-shot runtimes: check,
// validate).
func (rt *Runtime) Close() {
	for _, c := range rt.closers {
		c()
	}
	rt.closers = nil
}

// retire releases what the runtime holds once in-flight checks are done.
func (rt *Runtime) retire() {
	if rt == nil || len(rt.closers) == 0 {
		return
	}
	time.AfterFunc(retireAfter, func() {
		for _, c := range rt.closers {
			c()
		}
	})
}

// BuildFunc compiles a configuration into a runtime (the pipeline and its
// stages); it must not change anything outside what it returns.
type BuildFunc func(ctx context.Context, cfg *config.Config) (*Runtime, error)

// Engine keeps the current runtime and reloads it when its inputs change.
type Engine struct {
	// PolicyDir, when set before Load, replaces the configuration's
	// policy.dir as a watched input (a Builder with the same PolicyDir
	// builds it: shadow candidates).
	PolicyDir string

	path    string
	build   BuildFunc
	log     *slog.Logger
	onSwap  []func(*Runtime)
	current atomic.Pointer[Runtime]
	reloads atomic.Uint64 // Reload calls, part of the digest
	overlay Overlay

	// loadMu serialises loads, so that a slower build of older inputs can
	// never replace a newer runtime (the file watcher and the control plane
	// both reload).
	loadMu      sync.Mutex
	mu          sync.Mutex
	generation  uint64
	lastErr     error
	lastAttempt time.Time
	failures    uint64
	watching    bool
	// failedDigest is the input that last failed to build.
	failedDigest string

	// The last parse of the configuration file, by its bytes: the watcher
	// asks for the inputs twice a poll, and a configuration with thousands
	// of rules takes tens of milliseconds to parse.
	parsedMu  sync.Mutex
	parsedRaw []byte
	parsedCfg *config.Config
}

// New returns an engine for the configuration at path. onSwap runs after
// each successful (re)load, with the new runtime.
func New(path string, build BuildFunc, log *slog.Logger, onSwap ...func(*Runtime)) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{path: path, build: build, log: log, onSwap: onSwap}
}

// Overlay supplies configuration that does not come from the file: the
// control plane's stored vault properties, laid over the file's.
type Overlay interface {
	// Parse parses and validates the configuration file's contents with
	// the overlay applied.
	Parse(path string, data []byte) (*config.Config, error)
	// Version changes whenever Parse would give another result.
	Version() string
}

// SetOverlay makes every later load lay o over the file. Call it before
// the first Load.
func (e *Engine) SetOverlay(o Overlay) {
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	e.overlay = o
}

// Current is the runtime in force, nil before the first successful load.
func (e *Engine) Current() *Runtime { return e.current.Load() }

// Load loads the configuration and builds it. On failure the running
// runtime (if any) stays in force and the error — every problem, with file,
// line and field — is returned and remembered for /readyz.
func (e *Engine) Load(ctx context.Context) error {
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	digest, err := e.digest()
	if err == nil {
		if cur := e.current.Load(); cur != nil && cur.Digest == digest {
			return nil // nothing changed
		}
		e.mu.Lock()
		same := digest == e.failedDigest
		last := e.lastErr
		e.mu.Unlock()
		if same {
			return last // already rejected; do not rebuild and re-log
		}
	}
	rt, err := e.load(ctx, digest, err)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lastAttempt = time.Now()
	if err != nil {
		e.lastErr = err
		e.failedDigest = digest
		e.failures++
		if e.current.Load() != nil {
			e.log.Error("configuration rejected; the running configuration stays in force", "file", e.path, "error", err)
		}
		return err
	}
	e.generation++
	rt.Generation = e.generation
	rt.Digest = digest
	rt.Loaded = time.Now()
	e.lastErr = nil
	e.failedDigest = ""
	old := e.current.Swap(rt)
	for _, f := range e.onSwap {
		f(rt)
	}
	old.retire()
	e.log.Info("configuration loaded", "file", e.path, "generation", rt.Generation, "vault", rt.Config.Vault.Name,
		"policyFiles", len(rt.PolicyFiles))
	return nil
}

func (e *Engine) load(ctx context.Context, digest string, digestErr error) (*Runtime, error) {
	if digestErr != nil {
		return nil, digestErr
	}
	var cfg *config.Config
	var err error
	if e.overlay != nil {
		var data []byte
		if data, err = os.ReadFile(e.path); err == nil {
			cfg, err = e.overlay.Parse(e.path, data)
		}
	} else {
		cfg, err = config.Load(e.path)
	}
	if err != nil {
		return nil, err
	}
	rt, err := e.build(ctx, cfg)
	if err != nil {
		return nil, cfg.Annotate(err)
	}
	rt.Config = cfg
	return rt, nil
}

// digest hashes the configuration file and, when it names one, the policy
// directory's .rego files, so a reload happens only on a real change.
func (e *Engine) digest() (string, error) {
	data, err := os.ReadFile(e.path)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(data)
	fmt.Fprintf(h, "\x00reloads\x00%d", e.reloads.Load())
	if e.overlay != nil {
		fmt.Fprintf(h, "\x00overlay\x00%s", e.overlay.Version())
	}
	for _, f := range e.watchedFiles() {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a file vanishing mid-edit shows up in the build error
		}
		fmt.Fprintf(h, "\x00%s\x00", f)
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// watchedFiles are the extra inputs of the current configuration: operator
// policy files and local key sets.
func (e *Engine) watchedFiles() []string {
	var files []string
	dirs, extra := e.inputs()
	for _, dir := range dirs {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && filepath.Ext(p) == ".rego" {
				files = append(files, p)
			}
			return nil
		})
	}
	files = append(files, extra...)
	sort.Strings(files)
	return files
}

// inputs reads the configuration cheaply (no validation) to learn which
// directories and files it depends on.
func (e *Engine) inputs() (dirs, files []string) {
	cfg := e.current.Load()
	var c *config.Config
	if cfg != nil {
		c = cfg.Config
	}
	if fresh := e.parse(); fresh != nil {
		c = fresh
	}
	if c == nil {
		return nil, nil
	}
	if e.PolicyDir != "" {
		dirs = append(dirs, e.PolicyDir)
	} else if c.Policy.Dir != "" {
		dirs = append(dirs, c.Policy.Dir)
	}
	for _, is := range c.Identity.Issuers {
		if is.JWKSFile != "" {
			files = append(files, is.JWKSFile)
		}
	}
	return dirs, files
}

// parse loads the configuration file, or returns the last parse when its
// bytes have not changed; nil when it does not load.
func (e *Engine) parse() *config.Config {
	raw, err := os.ReadFile(e.path)
	if err != nil {
		return nil
	}
	e.parsedMu.Lock()
	defer e.parsedMu.Unlock()
	if e.parsedCfg != nil && bytes.Equal(raw, e.parsedRaw) {
		return e.parsedCfg
	}
	cfg, err := config.Parse(e.path, raw)
	if err != nil {
		return nil
	}
	e.parsedRaw, e.parsedCfg = raw, cfg
	return cfg
}

// Watch reloads on change until ctx ends: fsnotify on the configuration's
// directory and the policy directory (Kubernetes ConfigMaps swap a symlink,
// so watch directories, not files), with a periodic re-check as a fallback
// for events a watcher misses.
func (e *Engine) Watch(ctx context.Context, poll time.Duration) error {
	// Without inotify (its per-user instance limit is small and shared),
	// the periodic re-check alone keeps the configuration current.
	var events <-chan fsnotify.Event
	var werrs <-chan error
	w, err := fsnotify.NewWatcher()
	if err != nil {
		e.log.Warn("cannot watch files; relying on periodic re-check", "error", err)
	} else {
		defer w.Close()
		events, werrs = w.Events, w.Errors
	}
	e.mu.Lock()
	e.watching = true
	e.mu.Unlock()
	watched := map[string]bool{}
	rewatch := func() {
		if w == nil {
			return
		}
		dirs, files := e.inputs()
		want := []string{filepath.Dir(e.path)}
		want = append(want, dirs...)
		for _, f := range files {
			want = append(want, filepath.Dir(f))
		}
		for _, d := range want {
			if !watched[d] {
				if err := w.Add(d); err == nil {
					watched[d] = true
				} else {
					e.log.Warn("cannot watch directory; relying on periodic re-check", "dir", d, "error", err)
				}
			}
		}
	}
	rewatch()
	if poll <= 0 {
		poll = 5 * time.Second
	}
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return errors.New("watcher closed")
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			debounce = time.After(150 * time.Millisecond) // editors write in bursts
		case err, ok := <-werrs:
			if !ok {
				return errors.New("watcher closed")
			}
			e.log.Warn("file watcher error", "error", err)
		case <-debounce:
			debounce = nil
			_ = e.Load(ctx)
			rewatch()
		case <-ticker.C:
			_ = e.Load(ctx)
			rewatch()
		}
	}
}

// Status is the engine's state for /readyz and metrics.
type Status struct {
	Loaded      bool      `json:"loaded"`
	Generation  uint64    `json:"generation"`
	LoadedAt    time.Time `json:"loadedAt,omitzero"`
	LastError   string    `json:"lastError,omitempty"`
	LastAttempt time.Time `json:"lastAttempt,omitzero"`
	Failures    uint64    `json:"reloadFailures"`
}

// Status reports the current generation and the last reload error.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Status{Generation: e.generation, LastAttempt: e.lastAttempt, Failures: e.failures}
	if rt := e.current.Load(); rt != nil {
		s.Loaded = true
		s.LoadedAt = rt.Loaded
	}
	if e.lastErr != nil {
		s.LastError = e.lastErr.Error()
	}
	return s
}
