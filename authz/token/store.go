package token

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"
)

// ErrKeysUnavailable means an issuer's keys have never been loaded, so a
// token it signed can be neither accepted nor refused: Authenticate returns
// it as an error (the pipeline's fail-closed 500), not as a 401.
var ErrKeysUnavailable = errors.New("issuer signing keys are not available")

// ErrClosed is returned by New on a closed KeyStore.
var ErrClosed = errors.New("token: key store is closed")

// StoreOptions configures a KeyStore. The zero value is production-ready:
// system roots (or each issuer's caFile), the wall clock, no hooks.
type StoreOptions struct {
	// HTTPClient, when set, fetches every issuer's discovery document and
	// JWKS, and caFile is not consulted (tests). Its redirect policy and
	// timeouts are the caller's.
	HTTPClient *http.Client
	// RootCAs are trusted for issuers without caFile; nil means the system
	// roots.
	RootCAs *x509.CertPool
	// Now is the clock for expiry, skew, rate limits and status; nil means
	// time.Now.
	Now func() time.Time
	// OnRefresh is called after every key fetch, from the fetching
	// goroutine. It must not block.
	OnRefresh func(RefreshEvent)
	// Logger receives refresh failures and key changes; nil discards.
	Logger *slog.Logger
}

// KeyStore holds the issuers' signing keys for the life of the process and
// refreshes them in the background. Authenticators built by New borrow
// their issuers' sources from it, so a configuration reload that keeps an
// issuer keeps its keys, with no refetch. Close the store at shutdown.
type KeyStore struct {
	opts StoreOptions
	log  *slog.Logger
	wg   sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	sources map[sourceKey]*source
}

// NewKeyStore returns an empty key store; sources start when New first
// names them.
func NewKeyStore(opts StoreOptions) *KeyStore {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &KeyStore{opts: opts, log: log, sources: map[sourceKey]*source{}}
}

func (k *KeyStore) now() time.Time {
	if k.opts.Now != nil {
		return k.opts.Now()
	}
	return time.Now()
}

// Close stops every background refresh and waits for in-flight fetches.
// Authenticators built on the store keep their last keys but never refresh
// again.
func (k *KeyStore) Close() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	for key, s := range k.sources {
		s.stop()
		delete(k.sources, key)
	}
	k.mu.Unlock()
	k.wg.Wait()
	return nil
}

// Status reports every live issuer source, in no particular order.
func (k *KeyStore) Status() []IssuerStatus {
	k.mu.Lock()
	srcs := make([]*source, 0, len(k.sources))
	for _, s := range k.sources {
		srcs = append(srcs, s)
	}
	k.mu.Unlock()
	now := k.now()
	out := make([]IssuerStatus, len(srcs))
	for i, s := range srcs {
		out[i] = s.status(now)
	}
	return out
}

// refresh holds the effective refresh settings (defaults filled in).
type refresh struct {
	interval, minGap, timeout time.Duration
}

func refreshSettings(r Refresh) refresh {
	out := refresh{interval: r.Interval.D(), minGap: r.MinInterval.D(), timeout: r.Timeout.D()}
	if out.interval <= 0 {
		out.interval = 15 * time.Minute
	}
	if out.minGap <= 0 {
		out.minGap = 10 * time.Second
	}
	if out.timeout <= 0 {
		out.timeout = 5 * time.Second
	}
	return out
}

// acquire returns the running source for an issuer entry, starting one if
// none matches. A jwksFile is re-read on every acquire: a reload is how an
// operator publishes a new file.
func (k *KeyStore) acquire(is Issuer, r refresh) (*source, error) {
	key := sourceKey{issuer: is.Issuer, interval: r.interval, minGap: r.minGap, timeout: r.timeout}
	switch {
	case is.JWKSFile != "":
		key.mode, key.location = modeFile, is.JWKSFile
	case is.JWKSURI != "":
		key.mode, key.location = modeURI, is.JWKSURI
	case is.Discovery:
		key.mode = modeDiscovery
	default:
		return nil, fmt.Errorf("issuer %s: set one of discovery, jwksUri and jwksFile", is.Issuer)
	}
	var pool *x509.CertPool
	if is.CAFile != "" && key.mode != modeFile && k.opts.HTTPClient == nil {
		pem, err := os.ReadFile(is.CAFile)
		if err != nil {
			return nil, fmt.Errorf("issuer %s: caFile: %w", is.Issuer, err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("issuer %s: caFile %s holds no PEM certificate", is.Issuer, is.CAFile)
		}
		key.ca = sha256.Sum256(pem)
	}

	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil, ErrClosed
	}
	if s, ok := k.sources[key]; ok {
		s.mu.Lock()
		s.refs++
		s.mu.Unlock()
		k.mu.Unlock()
		if key.mode == modeFile {
			if err := s.fetch(TriggerReload); err != nil {
				k.release(s)
				return nil, fmt.Errorf("issuer %s: jwksFile: %w", is.Issuer, err)
			}
		}
		return s, nil
	}
	s := k.newSource(key, pool)
	if key.mode == modeFile {
		// Local and cheap: load now, so a bad file fails the configuration.
		if err := s.fetch(TriggerInitial); err != nil {
			k.mu.Unlock()
			s.stop()
			return nil, fmt.Errorf("issuer %s: jwksFile: %w", is.Issuer, err)
		}
		k.sources[key] = s
		k.mu.Unlock()
		return s, nil
	}
	k.sources[key] = s
	k.wg.Add(1)
	go s.run()
	k.mu.Unlock()
	return s, nil
}

func (k *KeyStore) newSource(key sourceKey, pool *x509.CertPool) *source {
	ctx, cancel := context.WithCancel(context.Background())
	s := &source{
		key:        key,
		store:      k,
		log:        k.log,
		ctx:        ctx,
		cancel:     cancel,
		refs:       1,
		loadedOnce: make(chan struct{}),
	}
	if key.mode == modeURI {
		s.jwksURL = key.location
	}
	if key.mode != modeFile {
		s.client = k.opts.HTTPClient
		if s.client == nil {
			if pool == nil {
				pool = k.opts.RootCAs
			}
			s.client = newHTTPClient(pool)
		}
	}
	return s
}

// release drops one user of a source; the last one stops it.
func (k *KeyStore) release(s *source) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s.mu.Lock()
	s.refs--
	last := s.refs == 0
	s.mu.Unlock()
	if last {
		s.stop()
		if k.sources[s.key] == s {
			delete(k.sources, s.key)
		}
	}
}

// newHTTPClient fetches issuer documents: TLS 1.2+, https-only redirects,
// no cookies. Per-fetch deadlines come from the request context.
func newHTTPClient(roots *x509.CertPool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 2
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to %s refused: issuer documents are fetched over https only", req.URL.Redacted())
			}
			return nil
		},
	}
}
