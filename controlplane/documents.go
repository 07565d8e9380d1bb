package controlplane

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
	v1 "github.com/vaultwall/vaultwall/controlplane/api/vaultwall/v1"
	"github.com/vaultwall/vaultwall/controlplane/store"
	"github.com/vaultwall/vaultwall/controlplane/store/etcdstore"
	"github.com/vaultwall/vaultwall/engine"
)

// SourceStore is the source ListVaults and /readyz name for a vault whose
// document the control plane keeps.
const SourceStore = "control-plane store"

// openDocuments opens the vault documents of a multi-vault configuration
// (nil when the store is replaced by Options.VaultStore without etcd: the
// tests' own stores) and reads them.
func (s *Server) openDocuments(ctx context.Context) error {
	sc := s.cfg.Store
	switch {
	case sc.Type == config.StoreEtcd && s.etcd != nil:
		s.docs = etcdstore.NewDocuments(s.etcd, sc.KeyPrefix, s.log)
	case sc.Type != config.StoreEtcd && s.openStore == nil:
		d, err := store.OpenFileDocuments(sc.Path)
		if err != nil {
			return fmt.Errorf("control-plane store: %w", err)
		}
		s.docs = d
	default:
		return nil
	}
	gctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := s.refreshDocs(gctx); err != nil {
		return fmt.Errorf("control-plane store: %w", err)
	}
	return nil
}

// refreshDocs reads the stored documents; changed tells whether any was
// created, changed or deleted since the last read.
func (s *Server) refreshDocs(ctx context.Context) (changed bool, err error) {
	docs, err := s.docs.List(ctx)
	if err != nil {
		return false, err
	}
	s.docMu.Lock()
	defer s.docMu.Unlock()
	changed = len(docs) != len(s.stored)
	if !changed {
		for i := range docs {
			if docs[i].Name != s.stored[i].Name || docs[i].Version != s.stored[i].Version {
				changed = true
				break
			}
		}
	}
	s.stored = docs
	return changed, nil
}

// StoredVaults implements engine.VaultSource: the documents as last read.
func (s *Server) StoredVaults() []engine.StoredVault {
	s.docMu.Lock()
	defer s.docMu.Unlock()
	out := make([]engine.StoredVault, 0, len(s.stored))
	for _, d := range s.stored {
		out = append(out, engine.StoredVault{Name: d.Name, Data: d.Data, Version: d.Version})
	}
	return out
}

var _ engine.VaultSource = (*Server)(nil)

// storedDoc is the stored document of the vault called name, if any.
func (s *Server) storedDoc(name string) (store.Document, bool) {
	s.docMu.Lock()
	defer s.docMu.Unlock()
	for _, d := range s.stored {
		if strings.EqualFold(d.Name, name) {
			return d, true
		}
	}
	return store.Document{}, false
}

// readBase reads a vault's document: its file, or for a stored vault
// (engine.StoredPath) the stored bytes.
func (s *Server) readBase(path string) ([]byte, error) {
	if engine.IsStored(path) {
		d, ok := s.storedDoc(strings.TrimPrefix(path, engine.StoredPrefix))
		if !ok {
			return nil, fmt.Errorf("vault %s: no longer in the control-plane store", strings.TrimPrefix(path, engine.StoredPrefix))
		}
		return d.Data, nil
	}
	return os.ReadFile(path)
}

// followDocs learns the documents other replicas (or an operator) create
// and delete: etcd's prefix watch, or a poll of the file store's
// directory, and loads the fleet on every change.
func (s *Server) followDocs(ctx context.Context, eng Loader) {
	var changes <-chan struct{}
	if w, ok := s.docs.(interface {
		Changes(context.Context) <-chan struct{}
	}); ok {
		changes = w.Changes(ctx)
	} else {
		ch := make(chan struct{})
		changes = ch
		go func() {
			defer close(ch)
			t := time.NewTicker(s.docPoll)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					select {
					case ch <- struct{}{}:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
	}
	for range changes {
		changed, err := s.refreshDocs(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("control plane: cannot read the stored vault documents; the vaults in force stay", "error", err)
			}
			continue
		}
		if !changed {
			continue
		}
		if err := eng.Load(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("control plane: stored vault documents changed; some vaults did not load", "error", err)
			continue
		}
		s.log.Info("control plane: stored vault documents applied", "vaults", names(s.set.Load()))
	}
}

// loadLocal applies a change of the documents to this replica's fleet
// before the RPC answers.
func (s *Server) loadLocal(ctx context.Context) error {
	if _, err := s.refreshDocs(ctx); err != nil {
		return fmt.Errorf("%w: %w", errStore, err)
	}
	if eng := s.eng.Load(); eng != nil {
		return (*eng).Load(context.WithoutCancel(ctx))
	}
	return nil
}

func (s *Server) docsUnsupported() error {
	if !s.multi {
		return status.Error(codes.FailedPrecondition, "vaults are created through the control plane only with vaults.dir (a multi-vault configuration)")
	}
	return status.Error(codes.FailedPrecondition, "this control plane's store keeps no vault documents")
}

// audited records ch once the call ends, with err's outcome.
func (s *Server) audited(ctx context.Context, ch *Change, err *error) {
	if *err != nil {
		ch.Error = (*err).Error()
		if ch.Outcome == "" {
			ch.Outcome = "refused"
		}
	} else if ch.Outcome == "" {
		ch.Outcome = "applied"
	}
	s.audit.Change(context.WithoutCancel(ctx), *ch)
}

func (s *Server) newChange(ctx context.Context, method, vault string) *Change {
	caller := CallerFrom(ctx)
	ch := &Change{Method: method, Caller: caller.String(), Address: peerAddress(ctx), Vault: vault}
	if caller != nil {
		ch.Reason = caller.Reason
	}
	return ch
}

// CreateVault implements VaultAdminService.
func (s *Server) CreateVault(ctx context.Context, req *v1.CreateVaultRequest) (_ *v1.CreateVaultResponse, err error) {
	ch := s.newChange(ctx, "CreateVault", "")
	defer s.audited(ctx, ch, &err)
	if s.docs == nil {
		return nil, s.docsUnsupported()
	}
	data := bytes.TrimSpace(req.GetDocument())
	if len(data) == 0 {
		return nil, toStatus(&PatchError{Field: "document", Msg: "required: a vault document (YAML or JSON) as a file of vaults.dir holds"})
	}
	if req.GetEtag() == "" {
		return nil, toStatus(&PatchError{Field: "etag", Msg: `required: send the etag of ListVaults, or "*" to create whatever vaults exist`})
	}
	if req.GetEtag() != "*" {
		if cur := s.listVaults().GetEtag(); cur != req.GetEtag() {
			ch.Outcome = "conflict"
			return nil, toStatus(&etagError{Sent: req.GetEtag(), Current: cur})
		}
	}
	data = req.GetDocument()
	mainData, err := os.ReadFile(s.path)
	if err != nil {
		return nil, toStatus(fmt.Errorf("%w: %v", errBase, err))
	}
	cfg, err := config.ParseVault(s.path, mainData, "document", data)
	if err != nil {
		return nil, toStatus(&invalidError{err})
	}
	name := cfg.Vault.Name
	ch.Vault = name
	set := s.set.Load()
	if rt := set.Vault(name); rt != nil {
		src := rt.Config.Path
		if engine.IsStored(src) {
			src = SourceStore
		}
		return nil, toStatus(fmt.Errorf("vault %q %w (defined by %s)", name, errExists, src))
	}
	if _, ok := s.storedDoc(name); ok {
		return nil, toStatus(fmt.Errorf("vault %q %w in the %s", name, errExists, SourceStore))
	}
	if err := hostConflicts(set, cfg); err != nil {
		return nil, toStatus(&invalidError{err})
	}
	if s.build != nil {
		rt, err := s.build(ctx, cfg)
		if err != nil {
			return nil, toStatus(&invalidError{err})
		}
		rt.Close()
	}
	version, err := s.docs.Create(ctx, strings.ToLower(name), data)
	if errors.Is(err, store.ErrExists) {
		return nil, toStatus(fmt.Errorf("vault %q %w in the %s", name, errExists, SourceStore))
	}
	if err != nil {
		ch.Outcome = "failed"
		return nil, toStatus(fmt.Errorf("%w: %w", errStore, err))
	}
	ch.EtagAfter = version
	if err := s.loadLocal(ctx); err != nil {
		s.log.Error("control plane: vault stored but not all vaults loaded", "vault", name, "error", err)
	}
	sum := &v1.VaultSummary{Name: name, Source: SourceStore, Hostnames: cfg.Hostnames(true), Etag: version}
	if rt := s.set.Load().Vault(name); rt != nil && engine.IsStored(rt.Config.Path) {
		sum.InForce = true
	}
	return &v1.CreateVaultResponse{Vault: sum}, nil
}

// hostConflicts refuses a document naming a hostname a vault in force
// holds (the vault in force keeps it, as the fleet's admit rule).
func hostConflicts(set *engine.Set, cfg *config.Config) error {
	if set == nil {
		return nil
	}
	want := map[string]bool{}
	for _, h := range cfg.Hostnames(true) {
		n, _ := authz.NormalizeHost(h)
		want[n] = true
	}
	var errs []error
	for _, rt := range set.Runtimes {
		for _, h := range rt.Config.Hostnames(true) {
			if n, _ := authz.NormalizeHost(h); want[n] {
				errs = append(errs, &config.FieldError{Field: "vault.hostnames",
					Err: fmt.Errorf("%w: %s is a hostname of vault %s, which keeps it", config.ErrDuplicate, n, rt.Config.Vault.Name)})
			}
		}
	}
	return errors.Join(errs...)
}

// DeleteVault implements VaultAdminService.
func (s *Server) DeleteVault(ctx context.Context, req *v1.DeleteVaultRequest) (_ *v1.DeleteVaultResponse, err error) {
	name := req.GetVault()
	ch := s.newChange(ctx, "DeleteVault", name)
	defer s.audited(ctx, ch, &err)
	if s.docs == nil {
		return nil, s.docsUnsupported()
	}
	if name == "" {
		return nil, toStatus(&PatchError{Field: "vault", Msg: "required"})
	}
	if req.GetEtag() == "" {
		return nil, toStatus(&PatchError{Field: "etag", Msg: `required: send the vault's etag of ListVaults or CreateVault, or "*"`})
	}
	doc, ok := s.storedDoc(name)
	if !ok {
		if rt := s.set.Load().Vault(name); rt != nil && !engine.IsStored(rt.Config.Path) {
			return nil, status.Errorf(codes.FailedPrecondition, "vault %q is defined by file %s: remove the file instead", rt.Config.Vault.Name, rt.Config.Path)
		}
		return nil, status.Errorf(codes.NotFound, "vault %q: no such vault in the %s", name, SourceStore)
	}
	ch.EtagBefore = doc.Version
	err = s.docs.Delete(ctx, doc.Name, req.GetEtag())
	switch {
	case errors.Is(err, store.ErrConflict):
		ch.Outcome = "conflict"
		cur := ""
		if _, rerr := s.refreshDocs(ctx); rerr == nil {
			if d, ok := s.storedDoc(name); ok {
				cur = d.Version
			}
		}
		return nil, toStatus(&etagError{Sent: req.GetEtag(), Current: cur})
	case errors.Is(err, store.ErrNotStored):
		_, _ = s.refreshDocs(ctx)
		return nil, status.Errorf(codes.NotFound, "vault %q: no such vault in the %s", name, SourceStore)
	case err != nil:
		ch.Outcome = "failed"
		return nil, toStatus(fmt.Errorf("%w: %w", errStore, err))
	}
	if err := s.loadLocal(ctx); err != nil {
		s.log.Error("control plane: vault deleted but not all vaults loaded", "vault", name, "error", err)
	}
	return &v1.DeleteVaultResponse{}, nil
}

// ListVaults implements VaultAdminService.
func (s *Server) ListVaults(ctx context.Context, _ *v1.ListVaultsRequest) (*v1.ListVaultsResponse, error) {
	return s.listVaults(), nil
}

// listVaults lists the vaults in force and stored; its etag is a digest
// of the list.
func (s *Server) listVaults() *v1.ListVaultsResponse {
	out := &v1.ListVaultsResponse{}
	seen := map[string]bool{}
	if set := s.set.Load(); set != nil {
		for _, rt := range set.Runtimes {
			sum := &v1.VaultSummary{Name: rt.Config.Vault.Name, Source: rt.Config.Path, Hostnames: rt.Config.Hostnames(true), InForce: true}
			if engine.IsStored(rt.Config.Path) {
				sum.Source = SourceStore
				if d, ok := s.storedDoc(rt.Config.Vault.Name); ok {
					sum.Etag = d.Version
					seen[d.Name] = true
				}
			}
			out.Vaults = append(out.Vaults, sum)
		}
	}
	s.docMu.Lock()
	for _, d := range s.stored {
		if !seen[d.Name] {
			out.Vaults = append(out.Vaults, &v1.VaultSummary{Name: d.Name, Source: SourceStore, Etag: d.Version})
		}
	}
	s.docMu.Unlock()
	slices.SortFunc(out.Vaults, func(a, b *v1.VaultSummary) int {
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	h := sha256.New()
	for _, v := range out.Vaults {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%v\x00%s\x00", strings.ToLower(v.Name), v.Source, v.Etag, v.InForce, strings.Join(v.Hostnames, ","))
	}
	out.Etag = "v-" + hex.EncodeToString(h.Sum(nil)[:8])
	return out
}
