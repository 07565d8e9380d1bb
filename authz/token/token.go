package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/vaultwall/vaultwall/authz"
)

// defaultCacheEntries applies when identity.tokenCache.maxEntries is 0.
const defaultCacheEntries = 10000

// refusedShare: the refused-token cache holds up to a tenth as many
// tokens as the verified-token cache.
const refusedShare = 10

// Authenticator validates bearer tokens against the configured issuers and
// maps them to callers. It is immutable once built: a configuration change
// builds a new one on the same KeyStore, then closes the old one.
type Authenticator struct {
	store    *KeyStore
	tenant   string
	skew     time.Duration
	issuers  map[string]*issuer
	order    []*issuer
	expected string // the configured issuers, as AKV10032 lists them
	cache    *tokenCache
	// refused is the refused-token cache: final refusals (see
	// outcome.final), a tenth of cache's bound; nil when cache is.
	refused *tokenCache

	closeOnce sync.Once
}

type issuer struct {
	name      string
	src       *source
	audiences []string
	algs      algSet
}

var _ authz.Authenticator = (*Authenticator)(nil)

// New builds an Authenticator for the vault from the identity
// configuration, borrowing (or starting) each issuer's key source in store.
// It does no network I/O: keys load in the background, and a request for an
// issuer whose keys are still loading waits for them up to
// identity.refresh.timeout. It fails when an issuer entry is invalid, or its
// caFile or jwksFile cannot be read.
func New(store *KeyStore, id Identity, vault authz.Vault) (*Authenticator, error) {
	if store == nil {
		return nil, errors.New("token: no key store")
	}
	if vault.TenantID == "" {
		return nil, errors.New("token: the vault has no tenant id")
	}
	a := &Authenticator{
		store:   store,
		tenant:  vault.TenantID,
		skew:    max(id.ClockSkew.D(), 0),
		issuers: make(map[string]*issuer, len(id.Issuers)),
	}
	switch n := id.TokenCache.MaxEntries; {
	case n == 0:
		a.cache, a.refused = newTokenCaches(defaultCacheEntries)
	case n > 0:
		a.cache, a.refused = newTokenCaches(n)
	}
	r := refreshSettings(id.Refresh)
	names := make([]string, 0, len(id.Issuers))
	for i, ic := range id.Issuers {
		is, err := a.issuer(ic)
		if err == nil {
			is.src, err = store.acquire(ic, r)
		}
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("identity.issuers[%d]: %w", i, err)
		}
		a.issuers[is.name] = is
		a.order = append(a.order, is)
		names = append(names, is.name)
	}
	a.expected = strings.Join(names, ", ")
	if a.expected == "" {
		a.expected = "(no issuer is configured)"
	}
	return a, nil
}

func (a *Authenticator) issuer(ic Issuer) (*issuer, error) {
	if ic.Issuer == "" {
		return nil, errors.New("issuer is required")
	}
	if _, dup := a.issuers[ic.Issuer]; dup {
		return nil, fmt.Errorf("issuer %s is configured twice", ic.Issuer)
	}
	is := &issuer{name: ic.Issuer, audiences: ic.Audiences, algs: defaultAlgs}
	if len(is.audiences) == 0 {
		is.audiences = []string{DefaultAudience}
	}
	if len(ic.Algorithms) > 0 {
		is.algs = 0
		for _, name := range ic.Algorithms {
			al, ok := parseAlg(name)
			if !ok {
				return nil, fmt.Errorf("algorithm %q is not accepted: want one of %s", name, defaultAlgs)
			}
			is.algs |= 1 << al
		}
	}
	return is, nil
}

// Close releases the issuers' key sources; a source no other Authenticator
// uses stops refreshing. Requests still in flight finish with the keys they
// have. Close is idempotent.
func (a *Authenticator) Close() {
	a.closeOnce.Do(func() {
		for _, is := range a.issuers {
			if is.src != nil {
				a.store.release(is.src)
			}
		}
	})
}

// Status reports each configured issuer's keys, in configuration order.
func (a *Authenticator) Status() []IssuerStatus {
	now := a.store.now()
	out := make([]IssuerStatus, len(a.order))
	for i, is := range a.order {
		out[i] = is.src.status(now)
	}
	return out
}

// Ready returns nil when every issuer has keys (possibly stale: an issuer
// that is down keeps its last good keys), else an error naming those that
// have none.
func (a *Authenticator) Ready() error {
	var missing []string
	for _, is := range a.order {
		if is.src.current() == nil {
			missing = append(missing, is.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrKeysUnavailable, strings.Join(missing, ", "))
	}
	return nil
}

// WaitReady blocks until every issuer has loaded keys once, or ctx ends.
func (a *Authenticator) WaitReady(ctx context.Context) error {
	for _, is := range a.order {
		select {
		case <-is.src.loadedOnce:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the keys of %s: %w", is.name, ctx.Err())
		}
	}
	return nil
}

// RefusedCacheStats returns the refused-token cache's counters: Hits are
// refusals served without verifying, Misses count only verifications (as
// in CacheStats, shared by both caches' lookups, so always 0 here).
func (a *Authenticator) RefusedCacheStats() CacheStats {
	if a.refused == nil {
		return CacheStats{}
	}
	return CacheStats(a.refused.Stats())
}

// CacheStats returns the verified-token cache's counters.
func (a *Authenticator) CacheStats() CacheStats {
	if a.cache == nil {
		return CacheStats{}
	}
	return CacheStats(a.cache.Stats())
}

// Authenticate validates the request's bearer token. A missing, malformed or
// invalid token is a 401 denial carrying Key Vault's challenge. It returns
// an error (the pipeline's fail-closed 500) only when it cannot decide: the
// token's issuer has never had keys loaded (ErrKeysUnavailable), the request
// ended while waiting for keys, or verification panicked.
func (a *Authenticator) Authenticate(ctx context.Context, req *authz.Request, _ *authz.Operation) (*authz.Caller, *authz.Denial, error) {
	if req == nil {
		return nil, denyMissing(), nil
	}
	raw, deny := bearerToken(req.Header("authorization"))
	if deny != nil {
		return nil, deny, nil
	}
	if a.cache == nil {
		o := safeVerify(func() outcome { return a.verify(ctx, raw) })
		return o.caller, o.deny, o.err
	}
	h := a.cache.Hash(raw)
	now := a.store.now()
	if c := cachedCaller(a.cache, h, raw, now.UnixNano()); c != nil {
		return c, nil, nil
	}
	if d := refusal(a.refused, h, raw, now, a.skew); d != nil {
		return nil, d, nil
	}
	o := verifyOnce(ctx, a.cache, h, raw, a.store.now, func() outcome { return a.verify(ctx, raw) })
	if o.final && o.deny != nil {
		putRefusal(a.refused, h, raw, &o, now.UnixNano())
	}
	return o.caller, o.deny, o.err
}

// bearerToken extracts the one bearer token from an Authorization header
// value. Envoy joins repeated headers with a comma, and a JWT never
// contains one, so any comma means more than one credential.
func bearerToken(h string) (string, *authz.Denial) {
	h = strings.Trim(h, " \t")
	if h == "" {
		return "", denyMissing()
	}
	if len(h) > 2*MaxTokenBytes { // not worth scanning
		return "", denyHeaderOversized(len(h))
	}
	if strings.IndexByte(h, ',') >= 0 {
		return "", denyDuplicate()
	}
	scheme, tok, found := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
	case strings.EqualFold(scheme, "PoP"):
		return "", denyPoP()
	case !found && strings.Count(h, ".") >= 2:
		return "", denyNoScheme() // a bare token
	default:
		return "", denyScheme(scheme)
	}
	tok = strings.TrimLeft(tok, " ")
	switch {
	case tok == "":
		return "", denyEmpty()
	case strings.IndexByte(tok, ' ') >= 0 || strings.IndexByte(tok, '\t') >= 0: // not ContainsAny: it scans byte by byte, 40× slower
		return "", denyWhitespace()
	case len(tok) > MaxTokenBytes:
		return "", denyOversized(len(tok))
	}
	return tok, nil
}

// verify checks one token from scratch. The unverified claims are read once,
// only to pick the issuer by its iss; nothing else in them is believed
// before the signature has been checked against that issuer's keys alone.
func (a *Authenticator) verify(ctx context.Context, raw string) outcome {
	deny := func(d *authz.Denial) outcome { return outcome{deny: d} }
	// refuse is a final refusal decided by the token's bytes and the
	// configuration (the refused-token cache keeps it); the cheap
	// structural checks before jws.Parse are not worth a cache entry.
	refuse := func(d *authz.Denial) outcome { return outcome{deny: d, final: true} }

	switch strings.Count(raw, ".") {
	case 2:
	case 4:
		return deny(denyMalformed("an encrypted token (JWE) is not accepted"))
	default:
		return deny(denyMalformed("it is not a signed JWT (three base64url parts)"))
	}
	if strings.ContainsAny(raw, "=+/") {
		// jwx would decode padded and standard-alphabet parts too; RFC 7515
		// §2 allows neither, so a token has exactly one spelling.
		return deny(denyMalformed("its parts are not unpadded base64url (RFC 7515): '=', '+' and '/' are not allowed"))
	}
	msg, err := jws.Parse([]byte(raw), jws.WithCompact())
	if err != nil || len(msg.Signatures()) != 1 {
		return refuse(denyMalformed("it is not a signed JWT (three base64url parts)"))
	}
	sig := msg.Signatures()[0]
	hdr := sig.ProtectedHeaders()
	algName := hdr.Algorithm().String()
	switch {
	case algName == "":
		return refuse(denyMalformed("its header has no alg"))
	case strings.EqualFold(algName, "none"):
		return refuse(denyAlgNone(defaultAlgs))
	case strings.HasPrefix(strings.ToUpper(algName), "HS"):
		return refuse(denyHMAC(algName, defaultAlgs))
	}
	al, ok := parseAlg(algName)
	if !ok {
		return refuse(denyAlg(algName, defaultAlgs))
	}
	if _, b64 := hdr.Get("b64"); b64 || len(hdr.Critical()) > 0 {
		return refuse(denyCrit())
	}

	tok := jwt.New()
	if err := json.Unmarshal(msg.Payload(), tok); err != nil {
		return refuse(denyMalformed("its claims are not a valid JSON object"))
	}
	if c := nonNumericDate(msg.Payload()); c != "" {
		// jwx reads "exp": "1700000000" as a date; RFC 7519 §2 says a
		// NumericDate is a JSON number.
		return refuse(denyMalformed("its " + c + " claim is not a number (RFC 7519 NumericDate)"))
	}
	is := a.issuers[tok.Issuer()]
	if is == nil {
		return refuse(denyIssuer(a.expected, tok.Issuer()))
	}
	if !is.algs.has(al) {
		return refuse(denyAlg(algName, is.algs))
	}
	kid := hdr.KeyID()
	if kid == "" {
		return refuse(denyNoKID())
	}

	vk, ks, o := a.key(ctx, is, kid)
	if vk == nil {
		return o // an unknown kid is never final: a refresh may bring it
	}
	// Final under these keys: a key change drops it from the cache.
	refuseUnder := func(d *authz.Denial) outcome { return outcome{deny: d, final: true, src: is.src, gen: ks.gen} }
	if !vk.algs.has(al) {
		return refuseUnder(denyKeyAlg(algName, kid))
	}
	signed := raw[:strings.LastIndexByte(raw, '.')]
	if err := verifiers[al].Verify([]byte(signed), sig.Signature(), vk.pub); err != nil {
		return refuseUnder(denySignature())
	}

	// The claims are now the issuer's word.
	now := a.store.now()
	exp := tok.Expiration()
	if exp.IsZero() {
		return refuseUnder(denyNoExp())
	}
	if !now.Before(exp.Add(a.skew)) {
		o := refuseUnder(denyExpired(exp, now, a.skew))
		o.expired = exp
		return o
	}
	if nbf := tok.NotBefore(); !nbf.IsZero() && now.Add(a.skew).Before(nbf) {
		return deny(denyNotYet(nbf, now, a.skew)) // not final: time makes it valid
	}
	aud := tok.Audience()
	if !slices.ContainsFunc(aud, func(s string) bool { return slices.Contains(is.audiences, s) }) {
		return refuseUnder(denyAudience(is.audiences, aud))
	}
	if tid := str(tok.PrivateClaims()["tid"]); !strings.EqualFold(tid, a.tenant) || tid == "" {
		return refuseUnder(denyTenant(a.tenant, tid, is.name))
	}
	return outcome{caller: callerFrom(tok), src: is.src, gen: ks.gen, expires: exp}
}

// key finds the verification key for kid, refetching the issuer's keys
// once (rate-limited, single-flight) when it is unknown. With no key it
// returns the outcome to give: a 401 when the issuer has keys but not this
// one, an error when the issuer has none at all or the request ended.
func (a *Authenticator) key(ctx context.Context, is *issuer, kid string) (*verifyKey, *keySet, outcome) {
	ks := is.src.current()
	if ks != nil {
		if vk := ks.byKID[kid]; vk != nil {
			return vk, ks, outcome{}
		}
		is.src.refetch(ctx, TriggerUnknownKID)
	} else {
		is.src.refetch(ctx, TriggerNoKeys)
	}
	if ks = is.src.current(); ks != nil {
		if vk := ks.byKID[kid]; vk != nil {
			return vk, ks, outcome{}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, outcome{err: fmt.Errorf("waiting for the keys of %s: %w", is.name, err)}
	}
	if ks == nil {
		return nil, nil, outcome{err: is.src.unavailable()}
	}
	return nil, nil, outcome{deny: denyUnknownKID(kid, is.name)}
}

// dateClaims are the claims RFC 7519 defines as NumericDate.
type dateClaims struct {
	Exp json.RawMessage `json:"exp"`
	Nbf json.RawMessage `json:"nbf"`
	Iat json.RawMessage `json:"iat"`
}

// nonNumericDate names the first of exp, nbf and iat that is present but
// not a JSON number ("" when all are numbers or absent).
func nonNumericDate(payload []byte) string {
	var d dateClaims
	if json.Unmarshal(payload, &d) != nil {
		return "exp"
	}
	for _, c := range [...]struct {
		name string
		raw  json.RawMessage
	}{{"exp", d.Exp}, {"nbf", d.Nbf}, {"iat", d.Iat}} {
		if c.raw != nil && (len(c.raw) == 0 || (c.raw[0] != '-' && (c.raw[0] < '0' || c.raw[0] > '9'))) {
			return c.name
		}
	}
	return ""
}
