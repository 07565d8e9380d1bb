package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/peer"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/config"
	v1 "github.com/vaultwall/vaultwall/controlplane/api/vaultwall/v1"
	"github.com/vaultwall/vaultwall/controlplane/store"
	"github.com/vaultwall/vaultwall/controlplane/store/etcdstore"
	"github.com/vaultwall/vaultwall/engine"
	"github.com/vaultwall/vaultwall/envoy"
	"github.com/vaultwall/vaultwall/rego"
)

// Options wire a control plane.
type Options struct {
	// Config is the configuration as loaded at start: its controlPlane
	// section is read once.
	Config *config.Config
	// Keys is the process's key store, shared with the data plane.
	Keys *token.KeyStore
	// Build compiles a candidate configuration to validate a change
	// (engine.Builder.Build); the runtime is closed at once.
	Build engine.BuildFunc
	Log   *slog.Logger
	// Audit receives every change attempt (default: SlogAuditor on Log).
	Audit Auditor
	// Store replaces the store the configuration names (tests; a
	// single-vault configuration).
	Store store.Store
	// VaultStore replaces the store of each vault of a multi-vault
	// configuration (tests), by the vault's name in lower case.
	VaultStore func(vault string) (store.Store, error)
	// Listening, when set, is told the admin listener's address.
	Listening func(net.Addr)
}

// Server is vaultwall's control plane: the VaultAdminService, its
// authorization, the store and the overlay through which stored changes
// reach the engine.
type Server struct {
	v1.UnimplementedVaultAdminServiceServer

	cfg    config.ControlPlane
	path   string // the configuration file: the main file with vaults.dir
	name   string // the vault of a single-vault configuration, as at Open
	build  engine.BuildFunc
	keys   *token.KeyStore
	policy *rego.ControlPolicy
	admins *peer.Principals
	tls    *tls.Config
	log    *slog.Logger
	audit  Auditor
	listen func(net.Addr)

	authn authenticator
	set   atomic.Pointer[engine.Set]
	eng   atomic.Pointer[Loader]

	// multi: the configuration has vaults.dir (read at Open, like the
	// rest of controlPlane); single is the one vault's state otherwise.
	multi  bool
	single *vaultState
	// With vaults.dir, each vault's state by its name in lower case,
	// opened on the fleet's first load of the vault (OverlayFor); etcd is
	// the client every vault's etcd store shares.
	mu           sync.Mutex
	vaults       map[string]*vaultState
	etcd         *clientv3.Client
	openStore    func(vault string) (store.Store, error)
	openFailures atomic.Uint64
	// running and runEng are set while Run serves: a vault opened then is
	// followed at once; follows waits for every follower.
	running context.Context
	runEng  Loader
	follows sync.WaitGroup
	// docs keeps the vaults created through the API (multi-vault only;
	// nil otherwise), stored their documents as last read (docMu), docPoll
	// how often a file store's are read again.
	docs    store.Documents
	docMu   sync.Mutex
	stored  []store.Document
	docPoll time.Duration
}

// Loader applies a stored change: the engine (engine.Fleet) that the
// overlay feeds.
type Loader interface {
	Load(ctx context.Context) error
}

// Open opens the store the configuration names, reads the stored state
// (failing when the store cannot be read: vaultwall never serves stale
// rules by mistake), and compiles the control-plane policy.
func Open(ctx context.Context, o Options) (*Server, error) {
	cfg := o.Config
	cp := cfg.ControlPlane
	if !cp.Enabled {
		return nil, errors.New("controlplane: controlPlane.enabled is false")
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cp, path: cfg.Path, name: cfg.Vault.Name, build: o.Build, keys: o.Keys, log: log, audit: o.Audit, listen: o.Listening,
		multi: cfg.Vaults.Dir != "", vaults: map[string]*vaultState{}, openStore: o.VaultStore, docPoll: time.Second}
	if s.audit == nil {
		s.audit = SlogAuditor{Log: log}
	}
	var errs []error
	admins, err := peer.NewPrincipals("controlPlane.adminPrincipals", cp.AdminPrincipals)
	if err != nil {
		errs = append(errs, err)
	}
	s.admins = admins
	if cp.TLS.Enabled() {
		tc, err := cp.TLS.Load("controlPlane.tls", tls.VerifyClientCertIfGiven) // token callers need no certificate; one that is sent must verify
		if err != nil {
			errs = append(errs, err)
		}
		s.tls = tc
	}
	policy, err := rego.NewControl(ctx, cp.PolicyDir)
	if err != nil {
		errs = append(errs, err)
	}
	s.policy = policy
	if err := errors.Join(errs...); err != nil {
		return nil, cfg.Annotate(err)
	}
	if s.multi {
		// Each vault's store opens when the fleet first loads the vault
		// (OverlayFor); with etcd they share one client.
		if cp.Store.Type == config.StoreEtcd && s.openStore == nil {
			ec, err := etcdConfig(cp.Store)
			if err != nil {
				return nil, err
			}
			if s.etcd, err = clientv3.New(ec); err != nil {
				return nil, fmt.Errorf("control-plane store: etcd: %w", err)
			}
		}
		if err := s.openDocuments(ctx); err != nil {
			if s.etcd != nil {
				_ = s.etcd.Close()
			}
			return nil, err
		}
		return s, nil
	}
	st := o.Store
	if st == nil {
		if st, err = openStore(cfg, log); err != nil {
			return nil, err
		}
	}
	gctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	snap, err := st.Get(gctx)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("control-plane store: %w", err)
	}
	s.single = &vaultState{store: st, overlay: NewOverlay(snap)}
	return s, nil
}

func etcdConfig(sc config.Store) (clientv3.Config, error) {
	ec := clientv3.Config{Endpoints: sc.Endpoints, DialTimeout: sc.DialTimeout.D(), Logger: zap.NewNop()}
	if sc.TLS.Enabled() {
		tc, err := sc.TLS.Load("controlPlane.store.tls")
		if err != nil {
			return ec, err
		}
		ec.TLS = tc
	}
	return ec, nil
}

func openStore(cfg *config.Config, log *slog.Logger) (store.Store, error) {
	sc := cfg.ControlPlane.Store
	switch sc.Type {
	case config.StoreEtcd:
		ec, err := etcdConfig(sc)
		if err != nil {
			return nil, err
		}
		return etcdstore.Open(ec, sc.KeyPrefix, log)
	default:
		return store.OpenFile(sc.Path)
	}
}

// Multi reports whether the configuration has vaults.dir: each vault then
// has its own state, laid over it through OverlayFor (Fleet.SetVaultOverlays)
// instead of Overlay (Fleet.SetOverlay).
func (s *Server) Multi() bool { return s.multi }

// Overlay is what the engine lays over the configuration file of a
// single-vault configuration; nil with vaults.dir (see OverlayFor).
func (s *Server) Overlay() *Overlay {
	if s.single == nil {
		return nil
	}
	return s.single.overlay
}

// Store is the control plane's store of a single-vault configuration; nil
// with vaults.dir (see VaultStore).
func (s *Server) Store() store.Store {
	if s.single == nil {
		return nil
	}
	return s.single.store
}

// VaultStore is the store of the vault called name in a multi-vault
// configuration, nil until the fleet has loaded that vault.
func (s *Server) VaultStore(name string) store.Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.vaults[strings.ToLower(name)]; v != nil {
		return v.store
	}
	return nil
}

// Swap follows one runtime served alone (SwapSet of engine.SetOf(rt)).
func (s *Server) Swap(rt *engine.Runtime) { s.SwapSet(engine.SetOf(rt)) }

// SwapSet follows the engine: the Set in force names the vaults the API
// manages, answers Explain (selecting a vault by host, as Check does), and
// names each vault's issuers and tenant, whose tokens are accepted for the
// management audiences. server.Serve registers it among the engine's
// swaps.
func (s *Server) SwapSet(set *engine.Set) {
	s.set.Store(set)
	if len(s.cfg.Audiences) == 0 {
		return
	}
	byName := map[string]*token.Authenticator{}
	for _, rt := range set.Runtimes {
		if rt.Config == nil {
			continue
		}
		id := rt.Config.Identity
		id.Issuers = make([]config.Issuer, len(rt.Config.Identity.Issuers))
		for i, is := range rt.Config.Identity.Issuers {
			is.Audiences = s.cfg.Audiences
			id.Issuers[i] = is
		}
		authn, err := token.New(s.keys, id, rt.Config.AuthzVault())
		if err != nil {
			s.log.Error("control plane: cannot build the token authenticator; keeping the previous one", "vault", rt.Config.Vault.Name, "error", err)
			for _, a := range byName {
				a.Close()
			}
			return
		}
		byName[strings.ToLower(rt.Config.Vault.Name)] = authn
	}
	if len(byName) == 0 {
		return
	}
	s.authn.swap(byName)
}

// Run serves the admin API on controlPlane.listenAddr and applies every
// stored change to eng (from this replica or any other) until ctx ends.
// server.Serve runs it beside the listeners.
func (s *Server) Run(ctx context.Context, eng Loader) error {
	s.eng.Store(&eng)
	ln, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("control-plane listener: %w", err)
	}
	opts := []grpc.ServerOption{grpc.ChainUnaryInterceptor(s.unary), grpc.MaxRecvMsgSize(4 << 20)}
	if s.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.tls)))
	} else if ip := hostIP(ln.Addr()); ip == nil || !ip.IsLoopback() {
		s.log.Warn("control plane listening without TLS on a non-loopback address: tokens travel in clear", "addr", ln.Addr().String())
	}
	g := grpc.NewServer(opts...)
	v1.RegisterVaultAdminServiceServer(g, s)
	if s.listen != nil {
		s.listen(ln.Addr())
	}
	if s.single != nil {
		s.log.Info("control plane serving", "addr", ln.Addr().String(), "tls", s.tls != nil,
			"store", s.cfg.Store.Type, "revision", s.single.overlay.Version())
	} else {
		s.log.Info("control plane serving", "addr", ln.Addr().String(), "tls", s.tls != nil,
			"store", s.cfg.Store.Type, "vaults", names(s.set.Load()))
	}
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(ln) }()
	// Follow every vault's store: the single one, or each vault opened so
	// far and, from now on, each vault as it is opened (vault).
	s.mu.Lock()
	s.running, s.runEng = ctx, eng
	if s.single != nil {
		s.follows.Go(func() { s.follow(ctx, eng, s.single) })
	}
	for _, v := range s.vaults {
		s.follows.Go(func() { s.follow(ctx, eng, v) })
	}
	if s.docs != nil {
		s.follows.Go(func() { s.followDocs(ctx, eng) })
	}
	s.mu.Unlock()
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		g.Stop()
	}
	s.mu.Lock()
	s.running, s.runEng = nil, nil
	s.mu.Unlock()
	s.follows.Wait()
	s.authn.swap(nil)
	return err
}

func hostIP(a net.Addr) net.IP {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP
	}
	return nil
}

// follow applies every snapshot v's store announces.
func (s *Server) follow(ctx context.Context, eng Loader, v *vaultState) {
	for snap := range v.store.Watch(ctx) {
		if !v.overlay.Offer(snap) {
			continue
		}
		s.apply(ctx, eng, v, snap)
	}
}

func (s *Server) apply(ctx context.Context, eng Loader, v *vaultState, snap store.Snapshot) {
	start := time.Now()
	if err := eng.Load(ctx); err != nil {
		s.log.Error("control-plane state not applied; the configuration in force stays", "vault", v.key, "revision", snap.Etag(), "error", err)
		return
	}
	s.log.Info("control-plane state applied", "vault", v.key, "revision", snap.Etag(), "took", time.Since(start))
}

// Close closes every store (and the etcd client they share).
func (s *Server) Close() error {
	var errs []error
	if s.single != nil {
		errs = append(errs, s.single.store.Close())
	}
	s.mu.Lock()
	for _, v := range s.vaults {
		errs = append(errs, v.store.Close())
	}
	s.mu.Unlock()
	if s.etcd != nil {
		errs = append(errs, s.etcd.Close())
	}
	return errors.Join(errs...)
}

// loaded is the state read for a write, with the configuration it gives.
type loaded struct {
	snap  store.Snapshot
	data  []byte
	parse engine.ParseFunc
	cfg   *config.Config
}

// read returns the vault's current snapshot and the configuration in
// force with it, straight from the store and the files (a vault of
// vaults.dir: its file parsed onto the main file).
func (s *Server) read(ctx context.Context, t target) (loaded, error) {
	snap, err := t.v.store.Get(ctx)
	if err != nil {
		return loaded{}, fmt.Errorf("%w: %w", errStore, err)
	}
	parse, err := s.parser(t)
	if err != nil {
		return loaded{}, err
	}
	data, err := s.readBase(t.file)
	if err != nil {
		return loaded{}, fmt.Errorf("%w: %v", errBase, err)
	}
	cfg, err := MergeWith(parse, t.file, data, snap.State)
	if err != nil {
		return loaded{}, fmt.Errorf("%w: %v", errBase, err)
	}
	return loaded{snap: snap, data: data, parse: parse, cfg: cfg}, nil
}

// write runs one change: read, check the etag, mutate, validate (merged
// configuration and a full build), compare-and-swap, apply to the local
// engine before answering, audit (once, whatever the number of attempts).
// With etag "*" a compare-and-swap lost to another writer is retried from a
// fresh read until the change is applied, refused, or ctx ends.
func (s *Server) write(ctx context.Context, vault, name, etag string, mutate func(cur *config.Config, next *store.State) error) (*config.Config, store.Snapshot, error) {
	caller := CallerFrom(ctx)
	ch := Change{Method: name, Caller: caller.String(), Address: peerAddress(ctx), Vault: vault}
	if caller != nil {
		ch.Reason = caller.Reason
	}
	defer func() { s.audit.Change(context.WithoutCancel(ctx), ch) }()
	t, err := s.target(ctx, vault)
	if err != nil {
		ch.Outcome, ch.Error = "refused", err.Error()
		return nil, store.Snapshot{}, err
	}
	ch.Vault = t.name
	if etag == "" {
		err := withDetailsEtagRequired()
		ch.Outcome, ch.Error = "refused", err.Error()
		return nil, store.Snapshot{}, err
	}
	if etag != "*" && !canonicalEtag(etag) {
		err := &etagError{Sent: etag, Malformed: true}
		if cur, rerr := s.read(ctx, t); rerr == nil {
			err.Current = etagOf(cur.cfg, cur.snap)
			ch.EtagBefore = err.Current
		}
		ch.Outcome, ch.Error = "conflict", err.Error()
		return nil, store.Snapshot{}, err
	}
	for backoff := time.Millisecond; ; backoff = min(2*backoff, 50*time.Millisecond) {
		cfg, snap, outcome, err := s.attempt(ctx, t, &ch, etag, mutate)
		if err != nil && etag == "*" && errors.Is(err, store.ErrConflict) && ctx.Err() == nil {
			if !sleepJitter(ctx, backoff) {
				err = ctx.Err()
			} else {
				continue
			}
		}
		ch.Outcome = outcome
		if err != nil {
			ch.Error = err.Error()
			return nil, store.Snapshot{}, err
		}
		return cfg, snap, nil
	}
}

// attempt is one read-mutate-validate-swap of write.
func (s *Server) attempt(ctx context.Context, t target, ch *Change, etag string, mutate func(cur *config.Config, next *store.State) error) (*config.Config, store.Snapshot, string, error) {
	cur, err := s.read(ctx, t)
	if err != nil {
		return nil, store.Snapshot{}, "failed", err
	}
	ch.EtagBefore = etagOf(cur.cfg, cur.snap)
	if etag != "*" && etag != ch.EtagBefore {
		return nil, store.Snapshot{}, "conflict", &etagError{Sent: etag, Current: ch.EtagBefore}
	}
	next := cur.snap.State.Clone()
	if err := mutate(cur.cfg, &next); err != nil {
		return nil, store.Snapshot{}, "refused", err
	}
	before, after := diff(next, cur.cfg)
	ch.Before, ch.After = nil, nil
	if len(after) == 0 {
		ch.EtagAfter = ch.EtagBefore
		return cur.cfg, cur.snap, "unchanged", nil
	}
	ch.Before, ch.After = before, after
	cfg, err := MergeWith(cur.parse, t.file, cur.data, next)
	if err != nil {
		return nil, store.Snapshot{}, "refused", &invalidError{err}
	}
	if s.build != nil {
		rt, err := s.build(ctx, cfg)
		if err != nil {
			return nil, store.Snapshot{}, "refused", &invalidError{err}
		}
		rt.Close()
	}
	rev, err := t.v.store.CompareAndSwap(ctx, cur.snap.Revision, next)
	if errors.Is(err, store.ErrConflict) {
		e := &etagError{Sent: etag}
		if now, rerr := s.read(ctx, t); rerr == nil {
			e.Current = etagOf(now.cfg, now.snap)
		}
		return nil, store.Snapshot{}, "conflict", e
	}
	if err != nil {
		return nil, store.Snapshot{}, "failed", fmt.Errorf("%w: %w", errStore, err)
	}
	snap := store.Snapshot{State: next, Revision: rev}
	ch.EtagAfter = etagOf(cfg, snap)
	// Apply before answering. The store's watch may have offered the
	// snapshot first and be loading it now: Load waits for that load (loads
	// are serialised) and finds nothing left to do.
	t.v.overlay.Offer(snap)
	if eng := s.eng.Load(); eng != nil {
		// The state is stored: apply it even if the caller goes away now.
		if err := (*eng).Load(context.WithoutCancel(ctx)); err != nil {
			s.log.Error("control-plane state stored but not applied; the configuration in force stays", "etag", ch.EtagAfter, "error", err)
		}
	}
	return cfg, snap, "applied", nil
}

// sleepJitter waits between half of d and d, false when ctx ends first.
func sleepJitter(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d/2 + rand.N(d/2+1))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// refuse audits a write request refused before its write ran (outcome
// "refused") and returns the error as a status.
func (s *Server) refuse(ctx context.Context, method string, err error) error {
	caller := CallerFrom(ctx)
	if caller == nil {
		caller = &Caller{}
	}
	st := toStatus(err)
	s.refused(ctx, method, caller, "refused", st)
	return st
}

func withDetailsEtagRequired() error {
	return &PatchError{Field: "etag", Msg: `required: send the etag of GetVault (or of the previous write), or "*" to write unconditionally`}
}

// diff lists the properties whose value in force next changes, with the
// value before (from cfg) and after. A write that changes nothing in force
// (adding a rule that is there) is not stored.
func diff(next store.State, cfg *config.Config) (before, after map[string]any) {
	before, after = map[string]any{}, map[string]any{}
	cur := stateProperties(stateOf(&cfg.Properties))
	for name, v := range stateProperties(next) {
		if reflect.DeepEqual(cur[name], v) {
			continue
		}
		before[name], after[name] = cur[name], v
	}
	return before, after
}

// stateOf is the full state of the properties in force.
func stateOf(p *config.Properties) store.State {
	ap, ra, rd := p.AccessPolicies, p.RoleAssignments, p.RoleDefinitions
	st := store.State{PublicNetworkAccess: p.PublicNetworkAccess, NetworkAcls: p.NetworkAcls,
		AccessPolicies: &ap, RoleAssignments: &ra, RoleDefinitions: &rd}
	if st.PublicNetworkAccess == "" {
		st.PublicNetworkAccess = "Enabled"
	}
	return st
}

// GetVault implements VaultAdminService.
func (s *Server) GetVault(ctx context.Context, req *v1.GetVaultRequest) (*v1.GetVaultResponse, error) {
	t, err := s.target(ctx, req.GetVault())
	if err != nil {
		return nil, toStatus(err)
	}
	cur, err := s.read(ctx, t)
	if err != nil {
		return nil, toStatus(err)
	}
	return &v1.GetVaultResponse{Vault: vaultOf(cur.cfg, cur.snap)}, nil
}

// UpdateVaultProperties implements VaultAdminService.
func (s *Server) UpdateVaultProperties(ctx context.Context, req *v1.UpdateVaultPropertiesRequest) (*v1.UpdateVaultPropertiesResponse, error) {
	patch := NetworkPatch{
		Paths:               req.GetUpdateMask().GetPaths(),
		PublicNetworkAccess: publicAccessFromProto(req.GetProperties().GetPublicNetworkAccess()),
		NetworkAcls:         aclsFromProto(req.GetProperties().GetNetworkAcls()),
	}
	cfg, snap, err := s.write(ctx, req.GetVault(), "UpdateVaultProperties", req.GetEtag(), func(cur *config.Config, next *store.State) error {
		pna, acls, err := ApplyNetworkPatch(&cur.Properties, patch)
		if err != nil {
			return err
		}
		if pna != "" {
			next.PublicNetworkAccess = pna
		}
		if acls != nil {
			canonicalIPRules(acls.IPRules)
			next.NetworkAcls = acls
		}
		return nil
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &v1.UpdateVaultPropertiesResponse{Vault: vaultOf(cfg, snap)}, nil
}

// UpdateAccessPolicies implements VaultAdminService.
func (s *Server) UpdateAccessPolicies(ctx context.Context, req *v1.UpdateAccessPoliciesRequest) (*v1.UpdateAccessPoliciesResponse, error) {
	var kind PolicyUpdate
	switch req.GetKind() {
	case v1.AccessPolicyUpdateKind_ACCESS_POLICY_UPDATE_KIND_ADD:
		kind = PolicyAdd
	case v1.AccessPolicyUpdateKind_ACCESS_POLICY_UPDATE_KIND_REPLACE:
		kind = PolicyReplace
	case v1.AccessPolicyUpdateKind_ACCESS_POLICY_UPDATE_KIND_REMOVE:
		kind = PolicyRemove
	default:
		return nil, s.refuse(ctx, "UpdateAccessPolicies", &PatchError{Field: "kind", Msg: "set ADD, REPLACE or REMOVE"})
	}
	cfg, snap, err := s.write(ctx, req.GetVault(), "UpdateAccessPolicies", req.GetEtag(), func(cur *config.Config, next *store.State) error {
		// The limit first: nothing below may cost more than the request's size.
		if n, limit := len(req.GetAccessPolicies()), cur.Limits.MaxAccessPolicies; n > limit {
			return &PatchError{Field: "access_policies", Msg: fmt.Sprintf("%d entries, the limit is %d (limits.maxAccessPolicies)", n, limit)}
		}
		entries := make([]accessPolicy, 0, len(req.GetAccessPolicies()))
		for i, ap := range req.GetAccessPolicies() {
			if err := checkPolicyEntry(i, ap, cur.Vault.TenantID); err != nil {
				return err
			}
			entries = append(entries, policyFromProto(ap, cur.Vault.TenantID))
		}
		list, err := UpdateAccessPolicies(cur.Properties.AccessPolicies, kind, entries)
		if err != nil {
			return err
		}
		next.AccessPolicies = &list
		return nil
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &v1.UpdateAccessPoliciesResponse{Vault: vaultOf(cfg, snap)}, nil
}

// checkPolicyEntry refuses what Key Vault refuses in an access-policy
// entry: an objectId or applicationId that is not a GUID, and a tenant
// other than the vault's (an empty tenant means the vault's).
func checkPolicyEntry(i int, ap *v1.AccessPolicy, tenant string) error {
	field := func(name string) string { return fmt.Sprintf("access_policies[%d].%s", i, name) }
	switch {
	case ap.GetObjectId() == "":
		return &PatchError{Field: field("object_id"), Msg: "required"}
	case !config.IsGUID(ap.GetObjectId()):
		return &PatchError{Field: field("object_id"), Msg: fmt.Sprintf("%q is not a GUID", ap.GetObjectId())}
	case ap.GetApplicationId() != "" && !config.IsGUID(ap.GetApplicationId()):
		return &PatchError{Field: field("application_id"), Msg: fmt.Sprintf("%q is not a GUID", ap.GetApplicationId())}
	case ap.GetTenantId() != "" && !strings.EqualFold(ap.GetTenantId(), tenant):
		return &PatchError{Field: field("tenant_id"), Msg: fmt.Sprintf("%q: every entry carries the vault's tenant %q", ap.GetTenantId(), tenant)}
	}
	return nil
}

// CreateRoleAssignment implements VaultAdminService.
func (s *Server) CreateRoleAssignment(ctx context.Context, req *v1.CreateRoleAssignmentRequest) (*v1.CreateRoleAssignmentResponse, error) {
	in := req.GetRoleAssignment()
	ra := roleAssignment{ID: in.GetId(), PrincipalID: in.GetPrincipalId(), RoleDefinitionID: in.GetRoleDefinitionId(), Scope: in.GetScope()}
	var bad *PatchError
	switch {
	case ra.PrincipalID == "":
		bad = &PatchError{Field: "role_assignment.principal_id", Msg: "required"}
	case !config.IsGUID(ra.PrincipalID):
		bad = &PatchError{Field: "role_assignment.principal_id", Msg: fmt.Sprintf("%q is not a GUID (an object id)", ra.PrincipalID)}
	case ra.RoleDefinitionID == "":
		bad = &PatchError{Field: "role_assignment.role_definition_id", Msg: "required"}
	case ra.ID != "" && !config.IsGUID(ra.ID):
		bad = &PatchError{Field: "role_assignment.id", Msg: fmt.Sprintf("%q is not a GUID (leave it empty for a new one)", ra.ID)}
	}
	if bad != nil {
		return nil, s.refuse(ctx, "CreateRoleAssignment", bad)
	}
	if ra.ID == "" {
		ra.ID = uuid.NewString()
	}
	var created roleAssignment
	cfg, snap, err := s.write(ctx, req.GetVault(), "CreateRoleAssignment", req.GetEtag(), func(cur *config.Config, next *store.State) error {
		scope, err := config.VaultScope(cur.Vault.ResourceID, ra.Scope)
		if err != nil {
			return &PatchError{Field: "role_assignment.scope", Msg: err.Error()}
		}
		ra.Scope = scope
		list, existing, err := CreateRoleAssignment(cur.Properties.RoleAssignments, ra)
		if err != nil {
			return err
		}
		created = ra
		if !existing {
			next.RoleAssignments = &list
		}
		return nil
	})
	if err != nil {
		return nil, toStatus(err)
	}
	for _, r := range cfg.Properties.RoleAssignments {
		if r.ID == created.ID {
			created = r
		}
	}
	return &v1.CreateRoleAssignmentResponse{RoleAssignment: assignmentToProto(created), Etag: etagOf(cfg, snap)}, nil
}

// DeleteRoleAssignment implements VaultAdminService.
func (s *Server) DeleteRoleAssignment(ctx context.Context, req *v1.DeleteRoleAssignmentRequest) (*v1.DeleteRoleAssignmentResponse, error) {
	if req.GetId() == "" {
		return nil, s.refuse(ctx, "DeleteRoleAssignment", &PatchError{Field: "id", Msg: "required"})
	}
	deleted := false
	cfg, snap, err := s.write(ctx, req.GetVault(), "DeleteRoleAssignment", req.GetEtag(), func(cur *config.Config, next *store.State) error {
		list, ok := DeleteRoleAssignment(cur.Properties.RoleAssignments, req.GetId())
		if ok {
			deleted = true
			next.RoleAssignments = &list
		}
		return nil
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &v1.DeleteRoleAssignmentResponse{Deleted: deleted, Etag: etagOf(cfg, snap)}, nil
}

// ListRoleAssignments implements VaultAdminService.
func (s *Server) ListRoleAssignments(ctx context.Context, req *v1.ListRoleAssignmentsRequest) (*v1.ListRoleAssignmentsResponse, error) {
	t, err := s.target(ctx, req.GetVault())
	if err != nil {
		return nil, toStatus(err)
	}
	cur, err := s.read(ctx, t)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &v1.ListRoleAssignmentsResponse{Etag: etagOf(cur.cfg, cur.snap)}
	scope := ""
	if req.GetScope() != "" {
		if scope, err = config.VaultScope(cur.cfg.Vault.ResourceID, req.GetScope()); err != nil {
			return nil, toStatus(&PatchError{Field: "scope", Msg: err.Error()})
		}
	}
	for _, ra := range cur.cfg.Properties.RoleAssignments {
		if req.GetPrincipalId() != "" && !strings.EqualFold(ra.PrincipalID, req.GetPrincipalId()) {
			continue
		}
		if req.GetScope() != "" && normScope(ra.Scope) != normScope(scope) {
			continue
		}
		out.RoleAssignments = append(out.RoleAssignments, assignmentToProto(ra))
	}
	return out, nil
}

// ListTrustedServices implements VaultAdminService.
func (s *Server) ListTrustedServices(ctx context.Context, req *v1.ListTrustedServicesRequest) (*v1.ListTrustedServicesResponse, error) {
	bound := map[string][]string{}
	rt, err := s.resolve(req.GetVault())
	if err != nil && (req.GetVault() != "" || s.set.Load() != nil) {
		return nil, toStatus(err)
	}
	if rt != nil && rt.Config != nil {
		for _, b := range rt.Config.TrustedServices.Services {
			bound[b.Name] = append(bound[b.Name], b.Principals...)
		}
	}
	out := &v1.ListTrustedServicesResponse{}
	for _, svc := range peer.Catalog() {
		out.TrustedServices = append(out.TrustedServices, &v1.TrustedService{
			Name: svc.Name, Service: svc.Service, Scenario: svc.Scenario, Scope: permsToProto(svc.Scope),
			Principals: bound[svc.Name], Note: svc.Note})
	}
	return out, nil
}

// Explain implements VaultAdminService.
func (s *Server) Explain(ctx context.Context, req *v1.ExplainRequest) (*v1.ExplainResponse, error) {
	cr, err := checkRequestOf(req)
	if err != nil {
		return nil, toStatus(err)
	}
	set := s.set.Load()
	if set == nil {
		return nil, toStatus(fmt.Errorf("%w: no configuration is loaded yet", errBase))
	}
	if name := req.GetVault(); name != "" {
		// A pin, as Envoy's context_extensions {vault: name}: the host must
		// select this vault, or Check (and so Explain) refuses.
		if set.Vault(name) == nil {
			return nil, toStatus(status.Errorf(codes.NotFound, "vault %q: no such vault (this vaultwall serves %s)", name, strings.Join(names(set), ", ")))
		}
		pinVault(cr, name)
	}
	// Under Check's guard: what Explain says is what Check would decide,
	// a panic included (a fail-closed refusal, never a crashed process).
	d := envoy.Decide(ctx, set.Vaults, cr)
	out := &v1.ExplainResponse{Allowed: d.Allowed, DecisionId: d.ID, DecidedBy: d.Stage.String()}
	if d.Denial != nil {
		out.HttpStatus, out.ErrorCode, out.Message = int32(d.Denial.Status), d.Denial.ErrorCode(), d.Denial.Message
	}
	for _, st := range d.Explain() {
		out.Steps = append(out.Steps, &v1.ExplainStep{Stage: st.Stage.String(), Outcome: st.Outcome, Detail: st.Detail})
	}
	return out, nil
}

// checkRequestOf reads the Explain request's CheckRequest.
func checkRequestOf(req *v1.ExplainRequest) (*authv3.CheckRequest, error) {
	cr := &authv3.CheckRequest{}
	switch {
	case req.GetCheckRequestAny() != nil:
		if err := req.GetCheckRequestAny().UnmarshalTo(cr); err != nil {
			return nil, &PatchError{Field: "check_request_any", Msg: "not an envoy.service.auth.v3.CheckRequest: " + err.Error()}
		}
	case req.GetCheckRequestJson() != "":
		if err := protojson.Unmarshal([]byte(req.GetCheckRequestJson()), cr); err != nil {
			return nil, &PatchError{Field: "check_request_json", Msg: "not a CheckRequest in JSON: " + err.Error()}
		}
	default:
		return nil, &PatchError{Field: "check_request", Msg: "required"}
	}
	return cr, nil
}

// pinVault sets the CheckRequest's context_extensions vault pin.
func pinVault(cr *authv3.CheckRequest, name string) {
	if cr.Attributes == nil {
		cr.Attributes = &authv3.AttributeContext{}
	}
	if cr.Attributes.ContextExtensions == nil {
		cr.Attributes.ContextExtensions = map[string]string{}
	}
	cr.Attributes.ContextExtensions[authz.ContextVault] = name
}
