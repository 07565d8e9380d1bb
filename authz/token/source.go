package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// maxDocumentBytes bounds a discovery document or JWKS response.
const maxDocumentBytes = 1 << 20

// Trigger says why a key fetch ran; a closed set, usable as a metric label.
type Trigger uint8

const (
	TriggerInitial    Trigger = iota // first load of a new source
	TriggerBackground                // periodic refresh (refresh.interval)
	TriggerRetry                     // retry while no key was ever loaded
	TriggerUnknownKID                // a token named a kid the set lacks
	TriggerNoKeys                    // a token arrived for an issuer without keys
	TriggerReload                    // configuration reload (jwksFile re-read)
)

var triggerNames = [...]string{"initial", "background", "retry", "unknown_kid", "no_keys", "reload"}

func (t Trigger) String() string {
	if int(t) < len(triggerNames) {
		return triggerNames[t]
	}
	return "unknown"
}

// RefreshEvent reports one fetch of an issuer's keys, for metrics.
type RefreshEvent struct {
	Issuer  string
	Trigger Trigger
	// Err is nil on success. A failed fetch leaves the last good keys in use.
	Err  error
	Took time.Duration
	// Keys is the number of usable keys after the fetch; Changed says whether
	// the set differs from the previous one (cached tokens are then
	// re-verified).
	Keys    int
	Changed bool
}

// IssuerStatus is an issuer's key readiness, for /readyz and metrics.
type IssuerStatus struct {
	Issuer string `json:"issuer"`
	// Source is where the keys come from: the JWKS URL (discovered or
	// configured) or the file path; "" while discovery has not succeeded.
	Source     string `json:"source"`
	KeysLoaded bool   `json:"keysLoaded"`
	KeyCount   int    `json:"keyCount"`
	// LastRefresh is the last successful fetch, zero if none. KeyAge is the
	// time since then.
	LastRefresh time.Time     `json:"lastRefresh,omitzero"`
	KeyAge      time.Duration `json:"keyAgeNanoseconds"`
	// LastAttempt is the last fetch attempt; LastError its error, "" when it
	// succeeded. Keys keep working while LastError is set.
	LastAttempt time.Time `json:"lastAttempt,omitzero"`
	LastError   string    `json:"lastError,omitempty"`
}

type sourceMode uint8

const (
	modeDiscovery sourceMode = iota
	modeURI
	modeFile
)

// sourceKey identifies a source in the store: a reload whose issuer entry
// and refresh settings are unchanged reuses the running source and its keys.
type sourceKey struct {
	issuer   string
	mode     sourceMode
	location string   // jwksUri or jwksFile
	ca       [32]byte // SHA-256 of the caFile content, zero for default roots
	interval time.Duration
	minGap   time.Duration
	timeout  time.Duration
}

// source supplies one issuer's keys: it loads them, refreshes them in the
// background, refetches on demand (single-flight, rate-limited), and keeps
// the last good set through outages.
type source struct {
	key    sourceKey
	store  *KeyStore
	client *http.Client
	log    *slog.Logger

	ctx    context.Context // cancelled when the last user releases it
	cancel context.CancelFunc

	keys atomic.Pointer[keySet]

	mu          sync.Mutex
	refs        int
	jwksURL     string // discovered or configured
	inflight    *fetchCall
	lastAttempt time.Time
	lastErr     error
	loadedOnce  chan struct{} // closed at the first successful load
}

type fetchCall struct {
	done    chan struct{}
	started time.Time
}

func (s *source) issuer() string { return s.key.issuer }

// current is the live key set; nil until the first successful load.
func (s *source) current() *keySet { return s.keys.Load() }

// refetch asks for fresh keys on behalf of a request and waits for them,
// bounded by the refresh timeout and ctx. Concurrent callers share one
// fetch; a fetch starts only when refresh.minInterval has passed since the
// last attempt of any kind, so a stream of unknown kids cannot hammer the
// issuer. A caller that finds a fetch in flight which started longer than
// minInterval ago (a slow, probably failing one) waits for it and then may
// start a fresh one.
func (s *source) refetch(ctx context.Context, why Trigger) {
	t := time.NewTimer(s.key.timeout)
	defer t.Stop()
	for range 2 {
		s.mu.Lock()
		c := s.inflight
		fresh := true
		switch {
		case c != nil:
			fresh = s.store.now().Sub(c.started) < s.key.minGap
		case !s.lastAttempt.IsZero() && s.store.now().Sub(s.lastAttempt) < s.key.minGap:
			s.mu.Unlock()
			return
		default:
			c = s.startLocked(why)
		}
		s.mu.Unlock()
		select {
		case <-c.done:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
		if fresh {
			return
		}
	}
}

// startLocked starts a fetch in its own goroutine, so that a request that
// gives up does not cancel it for the others. s.mu is held.
func (s *source) startLocked(why Trigger) *fetchCall {
	c := &fetchCall{done: make(chan struct{}), started: s.store.now()}
	if s.ctx.Err() != nil { // stopped: a released source never fetches again
		close(c.done)
		return c
	}
	s.inflight = c
	s.lastAttempt = c.started
	s.store.wg.Add(1)
	go func() {
		defer s.store.wg.Done()
		defer close(c.done)
		err := s.fetch(why)
		s.finish(c, err)
	}()
	return c
}

// finish records a fetch's end. A success was already recorded, together
// with its keys, by publish: whoever sees the new keys also sees no fetch
// in flight, and the rate limit decides about the next one.
func (s *source) finish(c *fetchCall, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight == c {
		s.inflight = nil
	}
	if err != nil {
		s.lastErr = err
	}
}

// fetchAndWait runs (or joins) a fetch regardless of the rate limit: the
// background loop's own pace is the limit there.
func (s *source) fetchAndWait(why Trigger) {
	s.mu.Lock()
	c := s.inflight
	if c == nil {
		c = s.startLocked(why)
	}
	s.mu.Unlock()
	select {
	case <-c.done:
	case <-s.ctx.Done():
	}
}

// run refreshes a network source in the background until it is released:
// at refresh.interval (less up to 10% jitter, so replicas spread out) once
// keys are loaded, and with a backoff from refresh.minInterval while none
// ever were.
func (s *source) run() {
	defer s.store.wg.Done()
	s.fetchAndWait(TriggerInitial)
	backoff := s.key.minGap
	for {
		var wait time.Duration
		why := TriggerBackground
		if s.current() != nil {
			wait = s.key.interval - time.Duration(rand.Int64N(int64(s.key.interval/10)+1))
			backoff = s.key.minGap
		} else {
			why = TriggerRetry
			wait = backoff
			backoff = min(2*backoff, s.key.interval)
		}
		t := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		s.fetchAndWait(why)
	}
}

// fetch loads the keys once and publishes them; the previous set stays in
// force on any error.
func (s *source) fetch(why Trigger) (err error) {
	start := time.Now()
	var ks *keySet
	var changed bool
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic while loading keys: %v", r)
		}
		ev := RefreshEvent{Issuer: s.issuer(), Trigger: why, Err: err, Took: time.Since(start)}
		if cur := s.current(); cur != nil {
			ev.Keys = len(cur.byKID)
		}
		ev.Changed = changed
		switch {
		case err != nil && ev.Keys > 0:
			s.log.Warn("issuer keys not refreshed; the last good keys stay in use",
				slog.String("issuer", s.issuer()), slog.String("trigger", why.String()), slog.Any("error", err))
		case err != nil:
			// Never loaded: there are no last good keys, and every token of
			// this issuer is refused (500) until a load succeeds.
			s.log.Error("issuer keys not loaded; tokens of this issuer cannot be verified until they are",
				slog.String("issuer", s.issuer()), slog.String("trigger", why.String()), slog.Any("error", err))
		case changed:
			s.log.Info("issuer keys loaded", slog.String("issuer", s.issuer()),
				slog.String("trigger", why.String()), slog.Int("keys", len(ks.byKID)))
		}
		if f := s.store.opts.OnRefresh; f != nil {
			f(ev)
		}
	}()
	s.mu.Lock()
	s.lastAttempt = s.store.now() // also for file loads, which bypass startLocked
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(s.ctx, s.key.timeout)
	defer cancel()
	set, err := s.load(ctx)
	if err != nil {
		return err
	}
	ks, changed, err = s.publish(set)
	return err
}

// load reads the key set from its origin.
func (s *source) load(ctx context.Context) (jwk.Set, error) {
	if s.key.mode == modeFile {
		b, err := os.ReadFile(s.key.location)
		if err != nil {
			return nil, err
		}
		set, err := jwk.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("%s is not a JSON Web Key Set: %w", s.key.location, err)
		}
		return set, nil
	}
	s.mu.Lock()
	u := s.jwksURL
	s.mu.Unlock()
	if u == "" {
		var err error
		if u, err = s.discover(ctx); err != nil {
			return nil, err
		}
	}
	set, err := s.fetchJWKS(ctx, u)
	if err != nil && s.key.mode == modeDiscovery {
		// The keys may have moved: ask discovery again, once.
		if u2, derr := s.discover(ctx); derr == nil && u2 != u {
			return s.fetchJWKS(ctx, u2)
		}
	}
	return set, err
}

// discover reads <issuer>/.well-known/openid-configuration (OpenID Connect
// Discovery §4) and returns its jwks_uri, after checking that the document
// speaks for exactly the configured issuer.
func (s *source) discover(ctx context.Context) (string, error) {
	docURL := strings.TrimSuffix(s.issuer(), "/") + "/.well-known/openid-configuration"
	body, err := s.get(ctx, docURL)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery: %s is not an OpenID configuration: %w", docURL, err)
	}
	if doc.Issuer != s.issuer() {
		return "", fmt.Errorf("discovery: %s names issuer %q, not the configured %q", docURL, doc.Issuer, s.issuer())
	}
	u, err := url.Parse(doc.JWKSURI)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("discovery: jwks_uri %q is not an https URL", doc.JWKSURI)
	}
	s.mu.Lock()
	s.jwksURL = doc.JWKSURI
	s.mu.Unlock()
	return doc.JWKSURI, nil
}

func (s *source) fetchJWKS(ctx context.Context, u string) (jwk.Set, error) {
	body, err := s.get(ctx, u)
	if err != nil {
		return nil, err
	}
	set, err := jwk.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("%s is not a JSON Web Key Set: %w", u, err)
	}
	return set, nil
}

func (s *source) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4096))
		return nil, fmt.Errorf("GET %s: %s", u, res.Status)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxDocumentBytes {
		return nil, fmt.Errorf("GET %s: response larger than %d bytes", u, maxDocumentBytes)
	}
	return body, nil
}

// publish installs a fetched set, bumping the generation only when its
// content changed.
func (s *source) publish(set jwk.Set) (*keySet, bool, error) {
	keys, fp, skipped := usableKeys(set)
	for _, why := range skipped {
		s.log.Debug("issuer key skipped", slog.String("issuer", s.issuer()), slog.String("reason", why))
	}
	if len(keys) == 0 {
		return nil, false, errNoUsableKeys
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight, s.lastErr = nil, nil
	cur := s.keys.Load()
	next := &keySet{byKID: keys, fingerprint: fp, fetched: s.store.now()}
	changed := !sameKeys(cur, fp)
	switch {
	case cur == nil:
		next.gen = 1
		close(s.loadedOnce)
	case changed:
		next.gen = cur.gen + 1
	default:
		next.byKID, next.gen = cur.byKID, cur.gen
	}
	s.keys.Store(next)
	return next, changed, nil
}

// stop cancels the source under s.mu, so that no fetch can start (and join
// the store's WaitGroup) after the store began waiting.
func (s *source) stop() {
	s.mu.Lock()
	s.cancel()
	s.mu.Unlock()
}

func (s *source) status(now time.Time) IssuerStatus {
	st := IssuerStatus{Issuer: s.issuer()}
	s.mu.Lock()
	st.Source = s.jwksURL
	st.LastAttempt = s.lastAttempt
	if s.lastErr != nil {
		st.LastError = s.lastErr.Error()
	}
	s.mu.Unlock()
	if s.key.mode == modeFile {
		st.Source = s.key.location
	}
	if ks := s.current(); ks != nil {
		st.KeysLoaded = true
		st.KeyCount = len(ks.byKID)
		st.LastRefresh = ks.fetched
		st.KeyAge = now.Sub(ks.fetched)
	}
	return st
}

// errKeysUnavailable wraps the reason an issuer has no keys at all.
func (s *source) unavailable() error {
	s.mu.Lock()
	last := s.lastErr
	s.mu.Unlock()
	if last == nil {
		last = errors.New("the first fetch has not completed")
	}
	return fmt.Errorf("%w: issuer %s: %w", ErrKeysUnavailable, s.issuer(), last)
}
