package controlplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/controlplane/store"
	"github.com/vaultwall/vaultwall/controlplane/store/etcdstore"
	"github.com/vaultwall/vaultwall/engine"
)

// vaultState is what the control plane keeps for one vault: its store and
// the overlay holding the newest state of it known to this process. A
// configuration without vaults.dir has one (Server.single); with
// vaults.dir each vault has its own, opened when the fleet first loads the
// vault (Server.OverlayFor), so that a write to one vault never changes
// another's revision, etag or runtime.
type vaultState struct {
	key     string // the vault's name in lower case; "" for a single-vault configuration
	store   store.Store
	overlay *Overlay
}

// target is the vault a request is about, as the engine has it in force.
type target struct {
	v    *vaultState
	name string          // vault.name as configured
	file string          // the vault's configuration file
	rt   *engine.Runtime // nil in a single-vault configuration
}

// VaultStateFile is the file store's file of the vault called name in a
// multi-vault configuration: path with the vault's name (lower case)
// before its extension, vaultwall-state.json → vaultwall-state.<vault>.json.
func VaultStateFile(path, name string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "." + strings.ToLower(name) + ext
}

// VaultKeyPrefix is the etcd key prefix of the vault called name in a
// multi-vault configuration: <keyPrefix><name, lower case>/, whose key is
// <prefix>state. With the default prefixes it is the key a single-vault
// configuration of the same (lower-case) vault uses: /vaultwall/<vault>/state.
func VaultKeyPrefix(prefix, name string) string {
	return prefix + strings.ToLower(name) + "/"
}

// openVaultStore opens the store of the vault key (a multi-vault
// configuration).
func (s *Server) openVaultStore(key string) (store.Store, error) {
	if s.openStore != nil {
		return s.openStore(key)
	}
	sc := s.cfg.Store
	if sc.Type == config.StoreEtcd {
		return etcdstore.New(s.etcd, VaultKeyPrefix(sc.KeyPrefix, key), s.log), nil
	}
	return store.OpenFile(VaultStateFile(sc.Path, key))
}

// vault returns the state of the vault called name, opening its store and
// reading it the first time (a multi-vault configuration).
func (s *Server) vault(ctx context.Context, name string) (*vaultState, error) {
	key := strings.ToLower(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.vaults[key]; v != nil {
		return v, nil
	}
	st, err := s.openVaultStore(key)
	if err != nil {
		return nil, fmt.Errorf("%w: vault %s: %w", errStore, name, err)
	}
	gctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	snap, err := st.Get(gctx)
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("%w: vault %s: %w", errStore, name, err)
	}
	v := &vaultState{key: key, store: st, overlay: NewOverlay(snap)}
	s.vaults[key] = v
	s.log.Info("control plane: vault state opened", "vault", name, "revision", snap.Etag())
	if s.running != nil { // Run is serving: follow this vault's store too
		ctx, eng := s.running, s.runEng
		s.follows.Go(func() { s.follow(ctx, eng, v) })
	}
	return v, nil
}

// OverlayFor implements engine.VaultOverlays: the overlay of the vault
// base names lays that vault's stored state over its file parsed with
// parse (config.ParseVault onto the main file). A store that cannot be
// read gives an overlay whose Parse fails: the vault keeps the runtime in
// force (or does not start), never one without its stored state, and the
// next load tries the store again.
func (s *Server) OverlayFor(base *config.Config, parse engine.ParseFunc) engine.Overlay {
	v, err := s.vault(context.Background(), base.Vault.Name)
	if err != nil {
		return &failedOverlay{err: err, n: s.openFailures.Add(1)}
	}
	return &vaultOverlay{v: v, parse: parse}
}

var _ engine.VaultOverlays = (*Server)(nil)

// vaultOverlay is one vault's stored state over its file.
type vaultOverlay struct {
	v     *vaultState
	parse engine.ParseFunc
}

func (o *vaultOverlay) Parse(path string, data []byte) (*config.Config, error) {
	return MergeWith(o.parse, path, data, o.v.overlay.Snapshot().State)
}

func (o *vaultOverlay) Version() string { return o.v.overlay.Version() }

// failedOverlay is a vault whose store could not be read.
type failedOverlay struct {
	err error
	n   uint64
}

func (o *failedOverlay) Parse(path string, _ []byte) (*config.Config, error) {
	return nil, &config.FieldError{File: path, Err: o.err}
}

// Version differs on every attempt, so the next load retries the store.
func (o *failedOverlay) Version() string { return fmt.Sprintf("unavailable-%d", o.n) }

// names lists the vaults in force.
func names(set *engine.Set) []string {
	var out []string
	if set != nil {
		for _, rt := range set.Runtimes {
			if rt.Config != nil {
				out = append(out, rt.Config.Vault.Name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// vaultName is the vault name a request sends ("" for none).
func vaultName(req any) string {
	if r, ok := req.(interface{ GetVault() string }); ok {
		return r.GetVault()
	}
	return ""
}

// resolve names the vault a request is about: name, or with name empty the
// only vault in force. It fails with INVALID_ARGUMENT when name is empty
// and several vaults are in force, and NOT_FOUND when no vault in force is
// called name; both list the vaults.
func (s *Server) resolve(name string) (*engine.Runtime, error) {
	set := s.set.Load()
	if set == nil || len(set.Runtimes) == 0 {
		return nil, fmt.Errorf("%w: no configuration is loaded yet", errBase)
	}
	if name == "" {
		if len(set.Runtimes) == 1 {
			return set.Runtimes[0], nil
		}
		return nil, &PatchError{Field: "vault", Msg: fmt.Sprintf("required: this vaultwall serves %d vaults (%s); name one", len(set.Runtimes), strings.Join(names(set), ", "))}
	}
	rt := set.Vault(name)
	if rt == nil {
		return nil, status.Errorf(codes.NotFound, "vault %q: no such vault (this vaultwall serves %s)", name, strings.Join(names(set), ", "))
	}
	return rt, nil
}

// singleName is the vault of a single-vault configuration: the one in
// force, else the one configured at Open.
func (s *Server) singleName() string {
	if set := s.set.Load(); set != nil && len(set.Runtimes) == 1 && set.Runtimes[0].Config != nil {
		return set.Runtimes[0].Config.Vault.Name
	}
	return s.name
}

// target resolves a request's vault and its control-plane state.
func (s *Server) target(ctx context.Context, name string) (target, error) {
	if !s.multi {
		vn := s.singleName()
		if name != "" && !strings.EqualFold(name, vn) {
			return target{}, status.Errorf(codes.NotFound, "vault %q: no such vault (this vaultwall serves %s)", name, vn)
		}
		return target{v: s.single, name: vn, file: s.path}, nil
	}
	rt, err := s.resolve(name)
	if err != nil {
		return target{}, err
	}
	t := target{name: rt.Config.Vault.Name, file: rt.Config.Path, rt: rt}
	if t.v, err = s.vault(ctx, t.name); err != nil {
		return target{}, err
	}
	return t, nil
}

// parser is how a write parses the vault's file: config.Parse, or for a
// vault of vaults.dir config.ParseVault onto the main file as it is now.
func (s *Server) parser(t target) (engine.ParseFunc, error) {
	if !s.multi {
		return config.Parse, nil
	}
	mainData, err := os.ReadFile(s.path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBase, err)
	}
	return func(name string, data []byte) (*config.Config, error) {
		return config.ParseVault(s.path, mainData, name, data)
	}, nil
}

// policyVault is the vault name the control-plane policy sees for a
// request naming name: that vault as configured, or the only one; name as
// sent when it names no vault in force (the call fails later).
func (s *Server) policyVault(name string) string {
	if !s.multi {
		if vn := s.singleName(); name == "" || strings.EqualFold(name, vn) {
			return vn
		}
		return name
	}
	if rt, err := s.resolve(name); err == nil && rt.Config != nil {
		return rt.Config.Vault.Name
	}
	return name
}
