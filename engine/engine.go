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
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/config"
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
	// overlays, for a vault of vaults.dir (Fleet), gives the overlay of
	// the vault the file names (overlay is nil then).
	overlays VaultOverlays

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
	// ignored are the file's properties the overlay overrides, and
	// ignoredSig those with the file's values (see noteIgnored).
	ignored    []string
	ignoredSig string

	// readFile reads every input (os.ReadFile; tests script renames
	// landing between reads).
	readFile func(string) ([]byte, error)
	// virtual: path names no file (a vault of the control-plane store,
	// whose readFile returns the stored document).
	virtual bool

	// A vault's file of vaults.dir (Fleet) is parsed onto the main file:
	// parseBase replaces config.Parse (nil: config.Parse), baseVersion names
	// the main file's version in the digest, and admit may refuse a built
	// runtime before it goes into force (a hostname another vault holds).
	parseBase   func(name string, data []byte) (*config.Config, error)
	baseVersion func() string
	admit       func(rt *Runtime) error
	// retireOld, when set, takes the runtime a load replaced, for the
	// Fleet to retire once the Set that holds it is no longer in force.
	retireOld func(old *Runtime)

	// The last parse of the configuration file, by its bytes: the watcher
	// asks for the inputs twice a poll, and a configuration with thousands
	// of rules takes tens of milliseconds to parse.
	parsedMu   sync.Mutex
	parsedRaw  []byte
	parsedBase string
	parsedCfg  *config.Config
}

// New returns an engine for the configuration at path. onSwap runs after
// each successful (re)load, with the new runtime.
func New(path string, build BuildFunc, log *slog.Logger, onSwap ...func(*Runtime)) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{path: path, build: build, log: log, onSwap: onSwap, readFile: os.ReadFile}
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

// ParseFunc parses a configuration file's bytes on their own: config.Parse,
// or for a vault of vaults.dir config.ParseVault onto the main file.
type ParseFunc func(name string, data []byte) (*config.Config, error)

// VaultOverlays gives each vault of vaults.dir its own overlay: the
// control plane's stored state of that vault.
type VaultOverlays interface {
	// OverlayFor is the overlay of the vault whose file, parsed on its own
	// (without any overlay), is base: base.Vault.Name names the vault.
	// parse parses that file as the engine does (config.ParseVault onto
	// the main file), for the overlay to lay its state over. nil: none.
	OverlayFor(base *config.Config, parse ParseFunc) Overlay
}

// SetOverlay makes every later load lay o over the file. Call it before
// the first Load.
func (e *Engine) SetOverlay(o Overlay) {
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	e.overlay = o
}

// overlayOf is the overlay of a load of data: the engine's own, or, for a
// vault of vaults.dir, the one of the vault the file names (resolved from
// the file's own parse, which is cached); nil when there is none or the
// file does not parse on its own (the load reports that).
func (e *Engine) overlayOf(data []byte) Overlay {
	if e.overlay != nil || e.overlays == nil {
		return e.overlay
	}
	base := e.parsed(data)
	if base == nil {
		return nil
	}
	return e.overlays.OverlayFor(base, e.parseFile)
}

// Current is the runtime in force, nil before the first successful load.
func (e *Engine) Current() *Runtime { return e.current.Load() }

// ErrPanic marks a load refused because parsing or building panicked (a
// bug in vaultwall, never in the configuration alone): the running
// configuration stays in force, as for any refused load.
var ErrPanic = errors.New("internal error while loading (a panic, logged with its stack)")

// Load loads the configuration and builds it. On failure the running
// runtime (if any) stays in force and the error — every problem, with file,
// line and field — is returned and remembered for /readyz.
//
// The configuration file is read once per load: the bytes hashed into the
// digest are the bytes parsed, so a failure is recorded against exactly
// the input that failed. A panic while parsing or building is a refused
// load (ErrPanic), never a dead process.
func (e *Engine) Load(ctx context.Context) error {
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	data, err := e.readFile(e.path)
	var digest string
	if err == nil {
		digest = e.digest(data)
		if cur := e.current.Load(); cur != nil && cur.Digest == digest {
			e.restored(cur)
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
	var rt *Runtime
	if err == nil {
		rt, err = e.load(withReloads(ctx, e.reloads.Load()), data)
	}
	if err == nil && e.admit != nil {
		if err = e.admit(rt); err != nil {
			rt.Close()
			rt = nil
		}
	}
	if err != nil && digest != "" && e.digest(data) != digest {
		// An input besides the file's bytes (a policy or key file, the
		// overlay) changed while building: the failure may belong to
		// neither version, so the next poll tries again.
		digest = ""
	}
	var ignored []string
	var ignoredSig string
	if err == nil && e.overlayOf(data) != nil {
		ignored, ignoredSig = ignoredFile(e.parsed(data), rt.Config)
	}
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
	e.noteIgnored(ignored, ignoredSig)
	old := e.current.Swap(rt)
	for _, f := range e.onSwap {
		f(rt)
	}
	if e.retireOld != nil {
		e.retireOld(old)
	} else {
		old.retire()
	}
	e.log.Info("configuration loaded", "file", e.path, "generation", rt.Generation, "vault", rt.Config.Vault.Name,
		"policyFiles", len(rt.PolicyFiles))
	return nil
}

// noteIgnored records the file's properties that the overlay overrides
// (for /readyz) and warns when they, or the file's values for them, change:
// an edit there takes no effect. Called with e.mu held.
func (e *Engine) noteIgnored(ignored []string, sig string) {
	e.ignored = ignored
	if sig == e.ignoredSig {
		return
	}
	switch {
	case sig != "":
		e.log.Warn("the configuration file sets properties the control plane owns; the file's values are ignored "+
			"(change them through the management API, or make the file agree)", "file", e.path, "properties", ignored)
	case e.ignoredSig != "":
		e.log.Info("the configuration file's properties agree with the control plane's again", "file", e.path)
	}
	e.ignoredSig = sig
}

// restored clears the last error when the inputs are again exactly those
// of the runtime in force (a rejected edit was undone).
func (e *Engine) restored(cur *Runtime) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lastErr == nil {
		return
	}
	e.lastErr = nil
	e.failedDigest = ""
	e.lastAttempt = time.Now()
	e.log.Info("configuration restored to the one in force; the last reload error is cleared",
		"file", e.path, "generation", cur.Generation)
}

// load parses data (with the overlay, if any) and builds it. A panic in
// either becomes an error wrapping ErrPanic.
func (e *Engine) load(ctx context.Context, data []byte) (rt *Runtime, err error) {
	defer func() {
		if r := recover(); r != nil {
			rt, err = nil, &config.FieldError{File: e.path, Err: panicError(e.log, e.path, r)}
		}
	}()
	var cfg *config.Config
	if o := e.overlayOf(data); o != nil {
		cfg, err = o.Parse(e.path, data)
	} else if cfg = e.parsed(data); cfg == nil {
		// The digest's parse of these bytes is the one built (a
		// configuration is read-only once parsed); parse again only to
		// report why it failed.
		cfg, err = e.parseFile(e.path, data)
	}
	if err != nil {
		return nil, err
	}
	rt, err = e.build(ctx, cfg)
	if err != nil {
		return nil, cfg.Annotate(err)
	}
	rt.Config = cfg
	return rt, nil
}

// parseFile parses the file's bytes alone (without the overlay).
func (e *Engine) parseFile(name string, data []byte) (*config.Config, error) {
	if e.parseBase != nil {
		return e.parseBase(name, data)
	}
	return config.Parse(name, data)
}

// maxPanicText bounds the panic value quoted in errors and logs.
const maxPanicText = 300

// panicError logs a recovered panic with its stack and the file being
// loaded, and returns it as an error wrapping ErrPanic (the caller adds the
// file).
func panicError(log *slog.Logger, file string, r any) error {
	text := fmt.Sprint(r)
	if len(text) > maxPanicText {
		text = text[:maxPanicText] + "…"
	}
	log.Error("panic while loading the configuration; load refused", "file", file, "panic", text,
		"stack", string(debug.Stack()))
	return fmt.Errorf("%w: %s", ErrPanic, text)
}

// Compile loads the configuration at path and builds it once, for the
// one-shot commands (config validate, check). Like a reload, a panic while
// parsing or building is returned as an error wrapping ErrPanic. The caller
// closes the runtime.
func Compile(ctx context.Context, path string, build BuildFunc, log *slog.Logger) (*Runtime, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	e := &Engine{path: path, build: build, log: log}
	return e.load(ctx, data)
}

// digest hashes the configuration bytes and, when the configuration names
// them, the policy directory's .rego files and local key sets, so a reload
// happens only on a real change.
func (e *Engine) digest(data []byte) string {
	h := sha256.New()
	h.Write(data)
	fmt.Fprintf(h, "\x00reloads\x00%d", e.reloads.Load())
	if o := e.overlayOf(data); o != nil {
		fmt.Fprintf(h, "\x00overlay\x00%s", o.Version())
	}
	if e.baseVersion != nil {
		fmt.Fprintf(h, "\x00base\x00%s", e.baseVersion())
	}
	for _, f := range e.watchedFiles(e.inputsOf(e.parsed(data))) {
		b, err := e.readFile(f)
		if err != nil {
			continue // a file vanishing mid-edit shows up in the build error
		}
		fmt.Fprintf(h, "\x00%s\x00", f)
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// watchedFiles are the extra inputs of a configuration: operator policy
// files and local key sets.
func (e *Engine) watchedFiles(dirs, extra []string) []string {
	var files []string
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

// inputs reads the configuration cheaply (no build) to learn which
// directories and files it depends on (the watcher).
func (e *Engine) inputs() (dirs, files []string) {
	data, err := e.readFile(e.path)
	if err != nil {
		return e.inputsOf(nil)
	}
	return e.inputsOf(e.parsed(data))
}

// inputsOf lists the directories and files c depends on; for a nil c (the
// file does not parse), those of the runtime in force.
func (e *Engine) inputsOf(c *config.Config) (dirs, files []string) {
	if c == nil {
		if rt := e.current.Load(); rt != nil {
			c = rt.Config
		}
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

// parse reads and parses the configuration file; nil when it does not
// load.
func (e *Engine) parse() *config.Config {
	raw, err := e.readFile(e.path)
	if err != nil {
		return nil
	}
	return e.parsed(raw)
}

// parsed parses configuration bytes (the file alone, without the
// overlay), or returns the last parse when they have not changed; nil when
// they do not parse (or parsing panics: the load reports that).
func (e *Engine) parsed(raw []byte) (cfg *config.Config) {
	defer func() {
		if recover() != nil {
			cfg = nil
		}
	}()
	e.parsedMu.Lock()
	defer e.parsedMu.Unlock()
	base := ""
	if e.baseVersion != nil {
		base = e.baseVersion()
	}
	if e.parsedCfg != nil && bytes.Equal(raw, e.parsedRaw) && base == e.parsedBase {
		return e.parsedCfg
	}
	cfg, err := e.parseFile(e.path, raw)
	if err != nil {
		return nil
	}
	e.parsedRaw, e.parsedBase, e.parsedCfg = raw, base, cfg
	return cfg
}

// Watch reloads on change until ctx ends: fsnotify on the configuration's
// directory and the policy directory (Kubernetes ConfigMaps swap a symlink,
// so watch directories, not files), with a periodic re-check as a fallback
// for events a watcher misses.
func (e *Engine) Watch(ctx context.Context, poll time.Duration) error {
	e.mu.Lock()
	e.watching = true
	e.mu.Unlock()
	return watchLoop(ctx, poll, e.log, e.watchDirs, func(ctx context.Context) { _ = e.Load(ctx) })
}

// watchDirs are the directories whose changes may change the runtime.
func (e *Engine) watchDirs() []string {
	dirs, files := e.inputs()
	var want []string
	if !e.virtual {
		want = append(want, filepath.Dir(e.path))
	}
	want = append(want, dirs...)
	for _, f := range files {
		want = append(want, filepath.Dir(f))
	}
	return want
}

// watchLoop calls load on every change in the directories dirs names (asked
// again after each load: a reload may name new ones) and every poll.
func watchLoop(ctx context.Context, poll time.Duration, log *slog.Logger, dirs func() []string, load func(context.Context)) error {
	// Without inotify (its per-user instance limit is small and shared),
	// the periodic re-check alone keeps the configuration current.
	var events <-chan fsnotify.Event
	var werrs <-chan error
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("cannot watch files; relying on periodic re-check", "error", err)
	} else {
		defer w.Close()
		events, werrs = w.Events, w.Errors
	}
	watched := map[string]bool{}
	rewatch := func() {
		if w == nil {
			return
		}
		for _, d := range dirs() {
			if !watched[d] {
				if err := w.Add(d); err == nil {
					watched[d] = true
				} else {
					log.Warn("cannot watch directory; relying on periodic re-check", "dir", d, "error", err)
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
			log.Warn("file watcher error", "error", err)
		case <-debounce:
			debounce = nil
			load(ctx)
			rewatch()
		case <-ticker.C:
			load(ctx)
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
	// IgnoredFileProperties are properties the configuration file sets
	// whose value is not in force: the control plane's stored value
	// overrides them ("file:line: properties.networkAcls").
	IgnoredFileProperties []string `json:"ignoredFileProperties,omitempty"`
}

// Status reports the current generation and the last reload error.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Status{Generation: e.generation, LastAttempt: e.lastAttempt, Failures: e.failures,
		IgnoredFileProperties: e.ignored}
	if rt := e.current.Load(); rt != nil {
		s.Loaded = true
		s.LoadedAt = rt.Loaded
	}
	if e.lastErr != nil {
		s.LastError = e.lastErr.Error()
	}
	return s
}
