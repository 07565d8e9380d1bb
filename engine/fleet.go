package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
)

// Set is what is in force: every vault's runtime, and the table that
// selects a vault by a request's host. It is immutable; any vault's reload
// publishes a new Set.
type Set struct {
	Generation uint64
	Published  time.Time
	// Main is the configuration of the process-wide sections: the main
	// file in a multi-vault configuration, the one vault's otherwise.
	Main *config.Config
	// Runtimes are the vaults in force, by name.
	Runtimes []*Runtime
	// Vaults selects a vault's pipeline by host.
	Vaults *authz.Vaults
	// Multi is true for a configuration with vaults.dir.
	Multi bool

	byName map[string]*Runtime // lower-case vault name → runtime
}

// Vault is the runtime of the vault called name (any case), nil if none.
func (s *Set) Vault(name string) *Runtime {
	if s == nil {
		return nil
	}
	if s.byName != nil {
		return s.byName[strings.ToLower(name)]
	}
	for _, rt := range s.Runtimes {
		if strings.EqualFold(rt.Config.Vault.Name, name) {
			return rt
		}
	}
	return nil
}

// Fleet keeps every vault of a configuration in force and reloads each on
// its own. A configuration without vaults.dir is one vault (one Engine on
// the file, as it always was). With vaults.dir, each file of the directory
// is an Engine whose configuration is that file parsed onto the main
// file's process-wide sections (config.ParseVault): a change of one vault's
// file rebuilds that vault alone, a broken file keeps that vault's running
// runtime, and a change of the main file rebuilds every vault.
type Fleet struct {
	// PolicyDir, when set before Load, replaces every vault's policy.dir
	// as a watched input (shadow candidates; see Engine.PolicyDir).
	PolicyDir string

	path     string
	build    BuildFunc
	log      *slog.Logger
	onSwap   []func(*Set)
	overlay  Overlay
	overlays VaultOverlays
	source   VaultSource
	// stored are the documents of source as of this load, by pseudo path.
	stored   map[string]StoredVault
	readFile func(string) ([]byte, error)

	// loadMu serialises loads: of the main file, and through it of every
	// vault's Engine.
	loadMu sync.Mutex
	single *Engine
	vaults map[string]*Engine // by file path
	main   atomic.Pointer[mainFile]
	dirty  bool // a vault's runtime changed during this load
	// claims are the names and hostnames the vaults in force hold, by the
	// key (file) of the vault holding them: admit asks them in constant
	// time whatever the number of vaults. Kept under loadMu.
	claims map[string]claim
	// claimed lists each key's entries of claims.
	claimed map[string][]string
	// retiring are the runtimes this load replaced: the Set in force
	// still serves them until publish swaps in the next one.
	retiring []*Runtime
	set      atomic.Pointer[Set]
	// known is what Status reads: the engines as of the last load, so
	// that /readyz and a scrape never wait for a load (building a
	// thousand vaults takes seconds).
	known   atomic.Pointer[knownEngines]
	gen     uint64
	reloads atomic.Uint64

	mu          sync.Mutex
	lastErr     error
	lastAttempt time.Time
	failures    uint64
}

// claim is who holds a vault name ("name:<lower name>") or a hostname
// ("host:<normal host>").
type claim struct {
	key, vault string
}

type knownEngines struct {
	single *Engine
	vaults []*Engine // by file path
}

// mainFile is the main file of a multi-vault configuration as last read.
type mainFile struct {
	raw    []byte
	digest string
	cfg    *config.Config
}

// NewFleet returns a fleet for the configuration at path. onSwap runs after
// each load that changed what is in force, with the new Set.
func NewFleet(path string, build BuildFunc, log *slog.Logger, onSwap ...func(*Set)) *Fleet {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fleet{path: path, build: build, log: log, onSwap: onSwap, readFile: os.ReadFile,
		vaults: map[string]*Engine{}}
}

// SetOverlay lays o over a single-vault configuration (the control plane).
// Call it before the first Load.
func (f *Fleet) SetOverlay(o Overlay) {
	f.loadMu.Lock()
	defer f.loadMu.Unlock()
	f.overlay = o
}

// SetVaultOverlays gives each vault of vaults.dir the overlay v names for
// it (the control plane's per-vault state): a vault's digest includes its
// overlay's Version, so a change of one vault's state rebuilds that vault
// alone. Call it before the first Load.
func (f *Fleet) SetVaultOverlays(v VaultOverlays) {
	f.loadMu.Lock()
	defer f.loadMu.Unlock()
	f.overlays = v
}

// StoredVault is a vault whose whole document (a vault file's content)
// comes from a VaultSource rather than a file of vaults.dir.
type StoredVault struct {
	Name    string
	Data    []byte
	Version string
}

// VaultSource is a second source of vault documents (the control plane's
// store): each is loaded as a file of vaults.dir is, under the pseudo path
// StoredPath(name).
type VaultSource interface {
	// StoredVaults lists the documents as last known, without I/O.
	StoredVaults() []StoredVault
}

// StoredPrefix starts the pseudo path of a stored vault.
const StoredPrefix = "controlplane:"

// StoredPath is the pseudo path of the stored vault called name.
func StoredPath(name string) string { return StoredPrefix + strings.ToLower(name) }

// IsStored reports whether path is a stored vault's pseudo path.
func IsStored(path string) bool { return strings.HasPrefix(path, StoredPrefix) }

// SetVaultSource adds the vaults of src to those of vaults.dir (a
// multi-vault configuration only). Call it before the first Load.
func (f *Fleet) SetVaultSource(src VaultSource) {
	f.loadMu.Lock()
	defer f.loadMu.Unlock()
	f.source = src
}

// Set is what is in force, nil before the first successful load.
func (f *Fleet) Set() *Set { return f.set.Load() }

// Current is the runtime of a single-vault configuration; nil in a
// multi-vault one (use Set) and before the first load.
func (f *Fleet) Current() *Runtime {
	s := f.set.Load()
	if s == nil || s.Multi || len(s.Runtimes) != 1 {
		return nil
	}
	return s.Runtimes[0]
}

// Main is the configuration of the process-wide sections in force, nil
// before the first load.
func (f *Fleet) Main() *config.Config {
	if s := f.set.Load(); s != nil {
		return s.Main
	}
	return nil
}

// Reload loads every vault even when its inputs have not changed (SIGHUP):
// see Engine.Reload.
func (f *Fleet) Reload(ctx context.Context) error {
	f.reloads.Add(1)
	return f.Load(ctx)
}

// Load reads the main file and loads every vault that changed. The error
// joins the main file's problem or every vault's, each naming its file; the
// vaults that loaded are in force whatever the others did.
func (f *Fleet) Load(ctx context.Context) error {
	f.loadMu.Lock()
	defer f.loadMu.Unlock()
	f.dirty = false
	mainErr, vaultErr := f.load(ctx)
	if f.dirty {
		f.publish()
	}
	k := &knownEngines{single: f.single}
	for _, e := range f.vaults {
		k.vaults = append(k.vaults, e)
	}
	sort.Slice(k.vaults, func(i, j int) bool { return k.vaults[i].path < k.vaults[j].path })
	f.known.Store(k)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastAttempt = time.Now()
	if mainErr != nil {
		f.failures++
	}
	f.lastErr = mainErr
	if mainErr != nil {
		return mainErr
	}
	return vaultErr
}

// load returns the main file's problem, or else the vaults' (which each
// vault's Engine records and counts).
func (f *Fleet) load(ctx context.Context) (mainErr, vaultErr error) {
	raw, err := f.readFile(f.path)
	if err != nil {
		return err, nil
	}
	cfg, err := f.parseMain(raw)
	if err != nil && len(f.vaults) > 0 {
		return err, nil // a multi-vault main file: every vault stays
	}
	if err != nil || cfg.Vaults.Dir == "" {
		// One vault: its Engine reads, records and reports the file
		// exactly as it always has.
		f.dropVaults(nil)
		if f.single == nil {
			f.single = New(f.path, f.build, f.log, func(*Runtime) { f.dirty = true })
			f.single.PolicyDir = f.PolicyDir
			f.single.readFile = f.readFile
			f.single.overlay = f.overlay
		}
		f.single.reloads.Store(f.reloads.Load())
		return nil, f.single.Load(ctx)
	}
	if f.single != nil { // the configuration became a multi-vault one
		if rt := f.single.Current(); rt != nil {
			f.retiring = append(f.retiring, rt)
		}
		f.single = nil
		f.dirty = true
	}
	files, err := vaultFiles(cfg.Vaults.Dir)
	if err != nil {
		return &config.FieldError{File: f.path, Field: "vaults.dir", Err: err}, nil
	}
	f.stored = map[string]StoredVault{}
	if f.source != nil {
		for _, sv := range f.source.StoredVaults() {
			p := StoredPath(sv.Name)
			f.stored[p] = sv
			files = append(files, p)
		}
	}
	if len(files) == 0 {
		return &config.FieldError{File: f.path, Field: "vaults.dir",
			Err: fmt.Errorf("%w: %s holds no vault file (*.yaml, *.yml, *.json)", config.ErrRequired, cfg.Vaults.Dir)}, nil
	}
	f.dropVaults(files)
	var errs []error
	for _, file := range files {
		e := f.vaults[file]
		if e == nil {
			e = f.newVault(file)
			f.vaults[file] = e
		}
		e.reloads.Store(f.reloads.Load())
		if err := e.Load(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return nil, errors.Join(errs...)
}

// parseMain parses the main file, reusing the last parse of the same
// bytes (a poll reads it every few seconds).
func (f *Fleet) parseMain(raw []byte) (*config.Config, error) {
	sum := sha256.Sum256(raw)
	digest := hex.EncodeToString(sum[:])
	if m := f.main.Load(); m != nil && m.digest == digest {
		return m.cfg, nil
	}
	cfg, err := config.Parse(f.path, raw)
	if err != nil {
		return nil, err
	}
	f.main.Store(&mainFile{raw: raw, digest: digest, cfg: cfg})
	return cfg, nil
}

// newVault is the Engine of one vault's file.
func (f *Fleet) newVault(file string) *Engine {
	e := New(file, f.build, f.log, func(rt *Runtime) { f.dirty = true; f.claim(file, rt) })
	e.PolicyDir = f.PolicyDir
	e.readFile = f.readFile
	if IsStored(file) {
		// The document's bytes as of the load (every load runs under
		// loadMu, which also guards stored); its other inputs are files.
		e.virtual = true
		e.readFile = func(p string) ([]byte, error) {
			if p != file {
				return f.readFile(p)
			}
			sv, ok := f.stored[file]
			if !ok {
				return nil, fmt.Errorf("vault %s: no longer in the control-plane store", strings.TrimPrefix(file, StoredPrefix))
			}
			return sv.Data, nil
		}
	}
	e.parseBase = func(name string, data []byte) (*config.Config, error) {
		m := f.main.Load()
		return config.ParseVault(f.path, m.raw, name, data)
	}
	e.baseVersion = func() string { return f.main.Load().digest }
	e.overlays = f.overlays
	e.admit = func(rt *Runtime) error { return f.admit(file, rt) }
	e.retireOld = func(old *Runtime) {
		if old != nil {
			f.retiring = append(f.retiring, old)
		}
	}
	return e
}

// dropVaults retires the vaults whose files are gone (all of them when
// keep is nil).
func (f *Fleet) dropVaults(keep []string) {
	want := map[string]bool{}
	for _, k := range keep {
		want[k] = true
	}
	for file, e := range f.vaults {
		if want[file] {
			continue
		}
		if rt := e.Current(); rt != nil && IsStored(file) {
			f.log.Info("vault removed: deleted from the control-plane store", "vault", rt.Config.Vault.Name)
			f.retiring = append(f.retiring, rt)
			f.dirty = true
		} else if rt != nil {
			f.log.Info("vault removed: its file is gone", "file", file, "vault", rt.Config.Vault.Name)
			f.retiring = append(f.retiring, rt)
			f.dirty = true
		}
		f.unclaim(file)
		delete(f.vaults, file)
	}
}

// claimKeys are the claims entries of a vault's runtime.
func claimKeys(rt *Runtime) []string {
	keys := []string{"name:" + strings.ToLower(rt.Config.Vault.Name)}
	for _, h := range rt.Config.Hostnames(true) {
		if n, ok := authz.NormalizeHost(h); ok {
			keys = append(keys, "host:"+n)
		}
	}
	return keys
}

// claim records what the vault of key holds now that rt is in force.
func (f *Fleet) claim(key string, rt *Runtime) {
	f.unclaim(key)
	if f.claims == nil {
		f.claims, f.claimed = map[string]claim{}, map[string][]string{}
	}
	keys := claimKeys(rt)
	for _, k := range keys {
		if _, taken := f.claims[k]; !taken { // admit refused any other holder
			f.claims[k] = claim{key: key, vault: rt.Config.Vault.Name}
		}
	}
	f.claimed[key] = keys
}

func (f *Fleet) unclaim(key string) {
	for _, k := range f.claimed[key] {
		if f.claims[k].key == key {
			delete(f.claims, k)
		}
	}
	delete(f.claimed, key)
}

// admit refuses a vault whose name or hostname another vault in force
// holds: the vault in force keeps it, so a new file can never take over
// another vault's traffic.
func (f *Fleet) admit(file string, rt *Runtime) error {
	var errs []error
	for _, k := range claimKeys(rt) {
		c, taken := f.claims[k]
		if !taken || c.key == file {
			continue
		}
		if host, ok := strings.CutPrefix(k, "host:"); ok {
			errs = append(errs, &config.FieldError{Field: "vault.hostnames",
				Err: fmt.Errorf("%w: %s is a hostname of vault %s (%s), which keeps it", config.ErrDuplicate, host, c.vault, c.key)})
		} else {
			errs = append(errs, &config.FieldError{Field: "vault.name",
				Err: fmt.Errorf("%w: %q is also the vault of %s, which keeps it", config.ErrDuplicate, rt.Config.Vault.Name, c.key)})
		}
	}
	return rt.Config.Annotate(errors.Join(errs...))
}

// publish builds the Set from every vault's runtime in force and hands it
// to onSwap.
func (f *Fleet) publish() {
	var rts []*Runtime
	var vaults *authz.Vaults
	var err error
	multi := f.single == nil
	var main *config.Config
	if !multi {
		rt := f.single.Current()
		if rt == nil {
			return
		}
		rts, main = []*Runtime{rt}, rt.Config
		vaults, err = singleVaults(rt)
	} else {
		if m := f.main.Load(); m != nil {
			main = m.cfg
		}
		var entries []authz.VaultEntry
		for _, e := range f.vaults {
			if rt := e.Current(); rt != nil {
				rts = append(rts, rt)
			}
		}
		sort.Slice(rts, func(i, j int) bool { return rts[i].Config.Vault.Name < rts[j].Config.Vault.Name })
		for _, rt := range rts {
			entries = append(entries, authz.VaultEntry{Pipeline: rt.Pipeline, Hostnames: rt.Config.Hostnames(true)})
		}
		vaults, err = authz.NewVaults(entries)
	}
	if err != nil { // admit keeps the table consistent; never serve a wrong one
		f.log.Error("the vaults' host table is inconsistent; the one in force stays", "error", err)
		return
	}
	f.gen++
	s := &Set{Generation: f.gen, Published: time.Now(), Main: main, Runtimes: rts, Vaults: vaults, Multi: multi,
		byName: make(map[string]*Runtime, len(rts))}
	for _, rt := range rts {
		s.byName[strings.ToLower(rt.Config.Vault.Name)] = rt
	}
	f.set.Store(s)
	for _, fn := range f.onSwap {
		fn(s)
	}
	// Only now is no new check decided by the replaced runtimes: a
	// rebuild of every vault may take longer than their grace period.
	for _, old := range f.retiring {
		old.retire()
	}
	f.retiring = nil
}

// vaultFiles lists the vault documents of dir: its *.yaml, *.yml and *.json
// files, sorted; hidden files (a Kubernetes ConfigMap's ..data links, an
// editor's swap files) and subdirectories are skipped.
func vaultFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, de := range ents {
		name := de.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		switch strings.ToLower(filepath.Ext(name)) {
		case ".yaml", ".yml", ".json":
		default:
			continue
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			continue
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// Watch reloads on change until ctx ends: the main file's directory, the
// vaults directory, and every vault's inputs (see Engine.Watch).
func (f *Fleet) Watch(ctx context.Context, poll time.Duration) error {
	return watchLoop(ctx, poll, f.log, f.watchDirs, func(ctx context.Context) { _ = f.Load(ctx) })
}

func (f *Fleet) watchDirs() []string {
	f.loadMu.Lock()
	defer f.loadMu.Unlock()
	want := []string{filepath.Dir(f.path)}
	if m := f.main.Load(); m != nil && m.cfg.Vaults.Dir != "" {
		want = append(want, m.cfg.Vaults.Dir)
	}
	if f.single != nil {
		want = append(want, f.single.watchDirs()...)
	}
	for _, e := range f.vaults {
		want = append(want, e.watchDirs()...)
	}
	return want
}

// VaultStatus is one vault's file's state.
type VaultStatus struct {
	Vault string `json:"vault,omitempty"`
	File  string `json:"file"`
	// Source is "file", or "control-plane store" for a stored vault
	// (whose File is its pseudo path, controlplane:<vault>).
	Source string `json:"source"`
	Status
}

// FleetStatus is the state for /readyz and metrics: the main file's (a
// single vault's, without vaults.dir) and, with vaults.dir, each vault's.
type FleetStatus struct {
	Status
	Vaults []VaultStatus `json:"vaults,omitempty"`
}

// Status reports what is in force and the last errors.
func (f *Fleet) Status() FleetStatus {
	k := f.known.Load()
	if k == nil {
		k = &knownEngines{}
	}
	if k.single != nil {
		return FleetStatus{Status: k.single.Status()}
	}
	engines := k.vaults
	var out FleetStatus
	f.mu.Lock()
	out.LastAttempt, out.Failures = f.lastAttempt, f.failures
	if f.lastErr != nil {
		out.LastError = f.lastErr.Error()
	}
	f.mu.Unlock()
	if s := f.set.Load(); s != nil {
		out.Loaded, out.Generation, out.LoadedAt = true, s.Generation, s.Published
	}
	for _, e := range engines {
		vs := VaultStatus{File: e.path, Source: "file", Status: e.Status()}
		if IsStored(e.path) {
			vs.Source = "control-plane store"
		}
		if rt := e.Current(); rt != nil {
			vs.Vault = rt.Config.Vault.Name
		}
		out.Loaded = out.Loaded && vs.Loaded
		out.Failures += vs.Failures
		if out.LastError == "" && vs.LastError != "" {
			out.LastError = vs.LastError
		}
		out.Vaults = append(out.Vaults, vs)
	}
	return out
}

// ReadySet is Ready for every vault in force: ready when a Set is in
// force, holds a vault, and every vault's probes pass. In a multi-vault
// configuration each probe is named after its vault.
func ReadySet(s *Set, probes []ProbeFunc) (bool, []Probe) {
	if s == nil || len(s.Runtimes) == 0 {
		return false, nil
	}
	ready := true
	var all []Probe
	for _, rt := range s.Runtimes {
		ok, ps := Ready(rt, probes)
		ready = ready && ok
		if s.Multi {
			for i := range ps {
				ps[i].Name = "vault " + rt.Config.Vault.Name + ": " + ps[i].Name
			}
		}
		all = append(all, ps...)
	}
	return ready, all
}

// VaultsOf is the host table of one runtime served alone: every host, or
// only its hostnames when its configuration lists them. A runtime that
// fails to make one (cannot happen past validation) gives nil: refused.
func VaultsOf(rt *Runtime) *authz.Vaults {
	v, _ := singleVaults(rt)
	return v
}

func singleVaults(rt *Runtime) (*authz.Vaults, error) {
	if rt == nil {
		return nil, nil
	}
	if rt.Config != nil {
		if hs := rt.Config.Hostnames(false); len(hs) > 0 {
			return authz.NewVaults([]authz.VaultEntry{{Pipeline: rt.Pipeline, Hostnames: hs}})
		}
	}
	return authz.SingleVault(rt.Pipeline), nil
}

// SetOf is the Set of one runtime served alone (check, tests).
func SetOf(rt *Runtime) *Set {
	return &Set{Generation: rt.Generation, Published: rt.Loaded, Main: rt.Config, Runtimes: []*Runtime{rt}, Vaults: VaultsOf(rt)}
}

// CompileSet loads the configuration at path once, every vault of it, for
// the one-shot commands (config validate, check): any vault that does not
// build fails it, with every problem. The caller closes the Set.
func CompileSet(ctx context.Context, path string, build BuildFunc, log *slog.Logger) (*Set, error) {
	f := NewFleet(path, build, log)
	err := f.Load(ctx)
	s := f.Set()
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases every runtime of a one-shot Set (CompileSet).
func (s *Set) Close() {
	if s == nil {
		return
	}
	for _, rt := range s.Runtimes {
		rt.Close()
	}
}
