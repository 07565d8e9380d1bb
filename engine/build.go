package engine

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/network"
	"github.com/vaultwall/vaultwall/authz/peer"
	"github.com/vaultwall/vaultwall/authz/route"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/rego"
)

// Builder compiles configurations into runtimes. One Builder lives as long
// as the process: its key store keeps issuers' keys across reloads.
type Builder struct {
	Keys *token.KeyStore
	// Now is the decision clock (nil: time.Now).
	Now    func() time.Time
	Log    *slog.Logger
	Tracer authz.Tracer
	// PolicyDir, when set, replaces the configuration's policy.dir (for
	// `check --policy` and replay).
	PolicyDir string
}

// router is stateless: one serves every configuration.
var router = route.New()

// Build compiles every stage of cfg. Problems from all stages are joined,
// each naming its field, so one run shows everything to fix.
//
// A panic in a stage's compile step is returned as an error wrapping
// ErrPanic (and logged with its stack), so every caller — reload, config
// validate, check, replay, shadow — refuses the configuration instead of
// dying.
func (b *Builder) Build(ctx context.Context, cfg *config.Config) (_ *Runtime, err error) {
	var authn *token.Authenticator
	release := func() {}
	defer func() {
		if r := recover(); r != nil {
			if authn != nil {
				release()
			}
			log := b.Log
			if log == nil {
				log = slog.New(slog.DiscardHandler)
			}
			err = panicError(log, cfg.Path, r)
		}
	}()
	var errs []error
	fw, err := network.New(cfg.FirewallConfig())
	errs = append(errs, err)
	trusted, err := peer.New(cfg.TrustedServices, peer.WithLogger(b.Log))
	errs = append(errs, err)
	vault := cfg.AuthzVault()
	if b.Keys == nil {
		errs = append(errs, errors.New("engine: no key store"))
	} else {
		authn, release, err = sharedAuthenticator(ctx, b.Keys, cfg.Identity, vault)
		errs = append(errs, err)
	}
	var opts []rego.Option
	if b.PolicyDir != "" {
		opts = append(opts, rego.WithDir(b.PolicyDir))
	}
	policy, err := rego.New(ctx, cfg, opts...)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		if authn != nil {
			release()
		}
		return nil, err
	}
	p := &authz.Pipeline{
		Vault:         vault,
		Classifier:    router,
		Authenticator: authn,
		Trusted:       trusted,
		Firewall:      fw,
		Policy:        policy,
		Now:           b.Now,
		Tracer:        b.Tracer,
	}
	rt := &Runtime{Pipeline: p, Authenticator: authn, Policy: policy, PolicyFiles: policy.Files()}
	rt.closers = append(rt.closers, release)
	return rt, nil
}

// The token authenticators in use, shared by the runtimes that verify
// tokens alike: one per key store, tenant and identity section, the bytes
// of its local key and CA files (a changed file is read again, as a new
// Authenticator reads it) and the count of forced reloads (SIGHUP starts
// afresh). A caller's token is then verified and cached once for every
// vault of a tenant, not once per vault, and a reload that leaves identity
// alone keeps the verified-token cache. The vault decides nothing else in
// an Authenticator: the challenge is the vault's own (Vault.Challenge).
var (
	authnMu   sync.Mutex
	authnPool = map[authnKey]*pooledAuthn{}
)

type authnKey struct {
	store *token.KeyStore
	id    string
	// reloads is the engine's count of forced reloads (SIGHUP): each
	// starts afresh, with empty caches.
	reloads uint64
}

// reloadsKey carries the engine's forced-reload count to Build.
type reloadsKey struct{}

func withReloads(ctx context.Context, n uint64) context.Context {
	return context.WithValue(ctx, reloadsKey{}, n)
}

type pooledAuthn struct {
	a    *token.Authenticator
	refs int
}

// sharedAuthenticator returns the Authenticator for id in vault's tenant,
// shared with the runtimes that have the same, and the release that ends
// this runtime's use of it (the last closes it).
func sharedAuthenticator(ctx context.Context, keys *token.KeyStore, id token.Identity, vault authz.Vault) (*token.Authenticator, func(), error) {
	k, ok := authnKeyOf(keys, id, vault)
	if !ok { // unshareable (a key file that cannot be read): New says why
		a, err := token.New(keys, id, vault)
		if err != nil {
			return nil, nil, err
		}
		return a, a.Close, nil
	}
	k.reloads, _ = ctx.Value(reloadsKey{}).(uint64)
	authnMu.Lock()
	defer authnMu.Unlock()
	p := authnPool[k]
	if p == nil {
		a, err := token.New(keys, id, vault)
		if err != nil {
			return nil, nil, err
		}
		p = &pooledAuthn{a: a}
		authnPool[k] = p
	}
	p.refs++
	var once sync.Once
	return p.a, func() {
		once.Do(func() {
			authnMu.Lock()
			defer authnMu.Unlock()
			if p.refs--; p.refs == 0 {
				delete(authnPool, k)
				p.a.Close()
			}
		})
	}, nil
}

func authnKeyOf(keys *token.KeyStore, id token.Identity, vault authz.Vault) (authnKey, bool) {
	h := sha256.New()
	enc, err := json.Marshal(id)
	if err != nil {
		return authnKey{}, false
	}
	fmt.Fprintf(h, "%s\x00%s\x00", strings.ToLower(vault.TenantID), enc)
	for _, is := range id.Issuers {
		for _, f := range []string{is.JWKSFile, is.CAFile} {
			if f == "" {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				return authnKey{}, false
			}
			fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
			h.Write(b)
		}
	}
	return authnKey{store: keys, id: string(h.Sum(nil))}, true
}

// IssuerProbe reports readiness of every issuer's keys.
func IssuerProbe(rt *Runtime) []Probe {
	if rt.Authenticator == nil {
		return nil
	}
	var out []Probe
	for _, st := range rt.Authenticator.Status() {
		out = append(out, Probe{Name: "issuer " + st.Issuer, Ready: st.KeysLoaded, Detail: st})
	}
	return out
}
