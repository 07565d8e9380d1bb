package peer

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/section"
)

// Matcher recognises trusted services by their client certificate. It is
// immutable after New, apart from its certificate cache, and safe for
// concurrent use; a configuration change builds a new Matcher.
type Matcher struct {
	bindings []binding

	// Principal indexes, each to a binding. New refuses a principal that
	// would reach two bindings, so one lookup decides.
	spiffeExact  map[string]int32 // SPIFFE ID
	spiffePrefix map[string]int32 // base ID of spiffe://…/*
	dns          map[string]int32 // lower-cased name
	subjectEnvoy map[string]int32 // DN as Envoy prints it (fast path)
	subjectKey   map[string]int32 // canonical DN key

	roots *x509.CertPool // nil: no caFile, Envoy's verification is trusted
	cache *certCache
	seed  maphash.Seed
	now   func() time.Time
	log   *slog.Logger
}

type binding struct {
	name   string // catalog name
	scope  scope
	appIDs []string
}

var _ authz.TrustedServices = (*Matcher)(nil)

// Option tunes a Matcher.
type Option func(*Matcher)

// WithClock sets the clock that certificate validity is checked against
// (default time.Now).
func WithClock(now func() time.Time) Option { return func(m *Matcher) { m.now = now } }

// WithLogger logs certificates that name a trusted service but are refused
// (no clientAuth extended key usage, no chain to trustedServices.caFile).
func WithLogger(log *slog.Logger) Option {
	return func(m *Matcher) {
		if log != nil {
			m.log = log
		}
	}
}

// WithCertCache bounds the number of certificates whose verdicts are kept
// (default 1024; at least 1).
func WithCertCache(entries int) Option {
	return func(m *Matcher) { m.cache = newCertCache(max(entries, 1)) }
}

// DefaultCertCache is the default number of cached certificate verdicts.
const DefaultCertCache = 1024

// New compiles the trustedServices section of the configuration. It
// reports every problem at once, each a *section.Error naming its
// field and wrapping one of this package's sentinels.
func New(cfg TrustedServices, opts ...Option) (*Matcher, error) {
	m := &Matcher{
		spiffeExact:  map[string]int32{},
		spiffePrefix: map[string]int32{},
		dns:          map[string]int32{},
		subjectEnvoy: map[string]int32{},
		subjectKey:   map[string]int32{},
		seed:         maphash.MakeSeed(),
		now:          time.Now,
		log:          slog.New(slog.DiscardHandler),
	}
	var errs []error
	report := func(field string, sentinel error, format string, args ...any) {
		errs = append(errs, section.Errorf(field, sentinel, format, args...))
	}

	if cfg.CAFile != "" {
		pool, err := loadRoots(cfg.CAFile)
		if err != nil {
			report("trustedServices.caFile", ErrCAFile, "%s: %v", cfg.CAFile, err)
		}
		m.roots = pool
	}

	type seen struct {
		p     Pattern
		field string
		b     int32
	}
	var all []seen
	for i, s := range cfg.Services {
		base := fmt.Sprintf("trustedServices.services[%d]", i)
		b := int32(i)
		svc, ok := catalogIndex[s.Name]
		if !ok {
			hint := ""
			for _, c := range catalog {
				if strings.EqualFold(c.Name, s.Name) {
					hint = " (did you mean " + c.Name + "?)"
				}
			}
			report(base+".name", ErrUnknownService, "%q%s", s.Name, hint)
		}
		bd := binding{name: s.Name}
		if ok {
			bd.scope = compileScope(catalog[svc].Scope)
			if s.Scope != nil {
				bd.scope = narrow(base+".scope", bd.scope, s.Scope, report)
				if bd.scope.empty() {
					report(base+".scope", ErrScope, "the scope grants nothing; remove the binding instead")
				}
			}
		}
		if len(s.Principals) == 0 {
			report(base+".principals", section.ErrRequired, "bind at least one certificate principal")
		}
		for j, a := range s.ApplicationIDs {
			if !section.IsGUID(a) {
				report(fmt.Sprintf("%s.applicationIds[%d]", base, j), ErrApplicationID, "%q", a)
			}
			bd.appIDs = append(bd.appIDs, strings.ToLower(a))
		}
		m.bindings = append(m.bindings, bd)

		for j, raw := range s.Principals {
			field := fmt.Sprintf("%s.principals[%d]", base, j)
			p, err := parsePattern(raw)
			if err != nil {
				report(field, ErrPrincipal, "%s: %v", quote(raw), err)
				continue
			}
			clash := false
			for _, o := range all {
				if why := overlap(o.p, p); why != "" {
					owner := o.field
					if o.b != b {
						owner += " (" + m.bindings[o.b].name + ")"
					}
					report(field, ErrDuplicatePrincipal, "%s %s %s", p, why, owner)
					clash = true
					break
				}
			}
			if !clash {
				all = append(all, seen{p, field, b})
				m.index(p, b)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, o := range opts {
		o(m)
	}
	if m.cache == nil {
		m.cache = newCertCache(DefaultCertCache)
	}
	return m, nil
}

func (m *Matcher) index(p Pattern, b int32) { m.names().add(p, b) }

// overlap says how q collides with an already bound p: the same identity,
// or SPIFFE IDs one of which covers the other. "" when they are disjoint.
// Overlaps are refused even within one binding: they are redundant at best
// and a typo at worst.
func overlap(p, q Pattern) string {
	switch {
	case p.kind == q.kind && p.key == q.key:
		return "is already bound at"
	case p.kind == KindSPIFFEPrefix && (q.kind == KindSPIFFE || q.kind == KindSPIFFEPrefix) && below(q.key, p.key):
		return "is covered by"
	case q.kind == KindSPIFFEPrefix && (p.kind == KindSPIFFE || p.kind == KindSPIFFEPrefix) && below(p.key, q.key):
		return "covers"
	}
	return ""
}

// loadRoots reads a PEM bundle; every certificate in it is a trust anchor.
func loadRoots(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if n == 0 {
				return nil, errors.New("no PEM certificate")
			}
			if strings.TrimSpace(string(rest)) != "" {
				return nil, errors.New("text after the last PEM block")
			}
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	return pool, nil
}

var _ authz.TrustedProblems = (*Matcher)(nil)

// Recognize reports which trusted service presented the request, by its
// client certificate, and whether op lies in that service's scope.
//
// With the certificate (req.CertificatePEM) it is the source of truth:
// each pattern is matched against the SAN type it names, and with a caFile
// the certificate must chain to it for client authentication. Without the
// certificate, Envoy's principal is matched, unless a caFile demands the
// certificate. Anything that does not parse, verify or match, an expired
// certificate, a certificate matching two bindings, or a caller whose
// application id a binding does not list, is simply not recognised.
func (m *Matcher) Recognize(req *authz.Request, caller *authz.Caller, op *authz.Operation) (name string, inScope bool) {
	if req == nil {
		return "", false
	}
	var b int32
	switch {
	case req.CertificatePEM != "":
		b = m.fromCertificate(req.CertificatePEM)
	case m.roots != nil:
		return "", false
	default:
		b = m.fromPrincipal(req.Principal)
	}
	if b < 0 {
		return "", false
	}
	bd := &m.bindings[b]
	if len(bd.appIDs) > 0 && !bd.appAllowed(caller) {
		return "", false
	}
	return bd.name, op != nil && op.Plane == authz.PlaneData && bd.scope.allows(op.Resource, op.Permission)
}

func (bd *binding) appAllowed(caller *authz.Caller) bool {
	if caller == nil || caller.ApplicationID == "" {
		return false
	}
	for _, a := range bd.appIDs {
		if strings.EqualFold(a, caller.ApplicationID) {
			return true
		}
	}
	return false
}

// fromPrincipal matches Envoy's source.principal, -1 when nothing does
// (principalIndex.fromPrincipal).
func (m *Matcher) fromPrincipal(p string) int32 { return m.names().fromPrincipal(p) }

// matchCert matches a certificate's own names (principalIndex.matchCert).
func (m *Matcher) matchCert(cert *x509.Certificate) (int32, string) { return m.names().matchCert(cert) }

// names is the Matcher's principal indexes, as the matcher both planes
// share.
func (m *Matcher) names() principalIndex {
	return principalIndex{spiffeExact: m.spiffeExact, spiffePrefix: m.spiffePrefix, dns: m.dns,
		subjectEnvoy: m.subjectEnvoy, subjectKey: m.subjectKey}
}
