package rego

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	oparego "github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/config"
)

// Identities no configuration names: a sample caller made of them can only
// be allowed by an operator grant.
const (
	sampleOID    = "5a3b1e00-0000-4000-8000-00000000a11c"
	sampleApp    = "5a3b1e00-0000-4000-8000-0000000000a9"
	sampleGroup  = "5a3b1e00-0000-4000-8000-0000000000b0"
	otherTenant  = "5a3b1e00-0000-4000-8000-00000000071d"
	sampleIssuer = "https://sts.windows.net/"
)

type sample struct {
	name string
	d    *authz.Decision
	// mustDeny: the decision must be a refusal, whatever the operator files
	// say (cross-tenant requests; unknown callers unless operator grants are
	// enabled).
	mustDeny bool
}

// samples are the inputs New evaluates before a policy may serve: each
// model, a user and an application, another tenant, a control-plane
// operation, and claims of every JSON type.
func samples(cfg *config.Config) []sample {
	vault := cfg.AuthzVault()
	other := vault
	other.RBAC = !vault.RBAC
	now := time.Date(2026, 1, 5, 3, 4, 5, 0, time.UTC)
	user := &authz.Caller{
		Issuer: sampleIssuer + vault.TenantID + "/", TenantID: vault.TenantID, ObjectID: sampleOID,
		ApplicationID: sampleApp, AppIDACR: "0", IdentityType: "user", Groups: []string{sampleGroup},
		Scopes: []string{"user_impersonation"}, Subject: "sample",
		Claims: map[string]any{
			"oid": sampleOID, "tid": vault.TenantID, "appid": sampleApp, "amr": []any{"pwd", "mfa"},
			"iat": float64(now.Unix()), "ver": "1.0", "deviceid": nil, "xms_cc": []any{"cp1"},
			"acrs": map[string]any{"c1": true},
		},
	}
	app := &authz.Caller{
		Issuer: sampleIssuer + vault.TenantID + "/", TenantID: vault.TenantID, ObjectID: sampleOID,
		ApplicationID: sampleApp, AppIDACR: "2", IdentityType: "app", Roles: []string{"Vault.Read"},
		GroupsOverage: true, Claims: map[string]any{"oid": sampleOID, "idtyp": "app"},
	}
	stranger := *user
	stranger.TenantID = otherTenant
	stranger.Issuer = sampleIssuer + otherTenant + "/"

	getSecret := authz.Operation{Plane: authz.PlaneData, Resource: authz.FamilySecrets, Permission: "get",
		DataAction: authz.DataActionPrefix + "secrets/getSecret/action", Name: "SecretGet",
		Object: "sample", Scope: "/secrets/sample", Method: "GET", APIVersion: "7.5"}
	wrapKey := authz.Operation{Plane: authz.PlaneData, Resource: authz.FamilyKeys, Permission: "wrapKey",
		DataAction: authz.DataActionPrefix + "keys/wrap/action", Name: "KeyWrap",
		Object: "sample", Version: "0123456789abcdef0123456789abcdef", Scope: "/keys/sample", Method: "POST", APIVersion: "7.5"}
	control := authz.Operation{Plane: authz.PlaneControl, Name: "VaultGet", Method: "GET"}

	req := &authz.Request{ID: "sample", Time: now, Peer: netip.MustParseAddrPort("198.51.100.7:50000"), Method: "GET",
		Path: "/secrets/sample?api-version=7.5", Host: vault.Name + ".vault.azure.net", Scheme: "https", TLS: true,
		Headers: map[string]string{"user-agent": "vaultwall-sample", "authorization": "Bearer never-in-input"}}
	network := authz.NetworkVerdict{Connection: authz.Connection{ClientAddr: netip.MustParseAddr("198.51.100.7")},
		Evaluated: true, Allowed: true, AuthType: authz.AddrPublicIP, Rule: "defaultAction=Allow"}

	dec := func(v *authz.Vault, c *authz.Caller, op authz.Operation) *authz.Decision {
		return &authz.Decision{ID: "sample", Time: now, Vault: v, Request: req, Operation: op, Caller: c, Network: network}
	}
	unknown := !cfg.Policy.AllowOperatorGrants
	return []sample{
		{"user reads a secret", dec(&vault, user, getSecret), unknown},
		{"application wraps a key", dec(&vault, app, wrapKey), unknown},
		{"user reads a secret, other model", dec(&other, user, getSecret), unknown},
		{"application wraps a key, other model", dec(&other, app, wrapKey), unknown},
		{"caller from another tenant", dec(&vault, &stranger, getSecret), true},
		{"caller from another tenant, other model", dec(&other, &stranger, wrapKey), true},
		{"control-plane operation", dec(&vault, user, control), unknown},
	}
}

// operatorRule is one rule of the operator files, prepared on its own so
// that a sample on which it fails or runs too long names it.
type operatorRule struct {
	path  ast.Ref
	loc   *ast.Location
	query oparego.PreparedEvalQuery
}

// operatorRules prepares a query against store for each rule (not
// function) the operator files define. The decision reads deny only when
// the shipped policy allows, which an unknown sample caller never is:
// without these, a rule that fails on every request would pass the
// samples. The caller holds compileMu.
func operatorRules(ctx context.Context, c *compiled, store storage.Store) ([]operatorRule, error) {
	var rules []operatorRule
	for _, r := range c.rules {
		q, err := oparego.New(
			oparego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(r.path)))),
			oparego.Compiler(c.compiler),
			oparego.Store(store),
			oparego.StrictBuiltinErrors(true),
		).PrepareForEval(ctx)
		if err != nil {
			return nil, joinErrors(astErrors(r.file, ErrCompile, err))
		}
		rules = append(rules, operatorRule{path: r.path, loc: r.loc, query: q})
	}
	return rules, nil
}

// checkSamples evaluates the decision, and each operator rule, on every
// sample. Each problem is reported once, at the first sample that shows it.
func (p *Policy) checkSamples(ctx context.Context, cfg *config.Config, rules []operatorRule) error {
	// A load on a busy machine must not refuse a sound policy: samples get a
	// generous budget that still stops a runaway rule. Requests keep
	// policy.timeout.
	budget := p.timeout
	p.timeout = max(20*budget, 2*time.Second)
	defer func() { p.timeout = budget }()
	var errs []error
	seen := map[string]bool{}
	report := func(s sample, loc *ast.Location, err error) {
		if seen[err.Error()] {
			return
		}
		seen[err.Error()] = true
		fe := &FileError{Err: fmt.Errorf("%w %q: %w", ErrSample, s.name, err)}
		if te, ok := errors.AsType[*topdown.Error](err); ok && te.Location != nil {
			loc = te.Location
		}
		if loc != nil {
			fe.File, fe.Line = loc.File, loc.Row
		}
		errs = append(errs, fe)
	}
	all := samples(cfg)
	for _, s := range all {
		v, err := p.Authorize(ctx, s.d)
		switch {
		case err != nil:
			report(s, nil, err)
		case s.mustDeny && v.Allowed:
			report(s, nil, fmt.Errorf("allowed (%s), but it must be refused", v.Rule))
		}
	}
	failed := map[int]bool{}
	for _, s := range all {
		in, err := Input(s.d)
		if err != nil {
			return err
		}
		for i, r := range rules {
			if failed[i] {
				continue
			}
			if err := p.evalRule(ctx, r, in, s.d.Time); err != nil {
				failed[i] = true
				report(s, r.loc, fmt.Errorf("%s: %w", strings.TrimPrefix(r.path.String(), "data."), err))
			}
		}
	}
	if len(errs) > 0 {
		return joinErrors(errs)
	}
	return nil
}

func (p *Policy) evalRule(ctx context.Context, r operatorRule, in ast.Value, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	if _, err := r.query.Eval(ctx, oparego.EvalParsedInput(in), oparego.EvalTime(now)); err != nil {
		if topdown.IsCancel(err) && ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("%w of %v (policy.timeout)", ErrTimeout, p.timeout)
		}
		return fmt.Errorf("%w: %w", ErrEval, err)
	}
	return nil
}
