package engine

import (
	"context"
	"errors"
	"log/slog"
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
	defer func() {
		if r := recover(); r != nil {
			if authn != nil {
				authn.Close()
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
		authn, err = token.New(b.Keys, cfg.Identity, vault)
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
			authn.Close()
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
	rt.closers = append(rt.closers, authn.Close)
	return rt, nil
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
