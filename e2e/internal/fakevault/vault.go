package fakevault

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Options configure a vault.
type Options struct {
	// Cert is the server certificate; nil uses httptest's own (trust it
	// with Vault.CAs).
	Cert *tls.Certificate
	// PageSize is how many items one list page holds before a nextLink;
	// 0 means 25, Key Vault's default maxresults.
	PageSize int
	// Location is echoed in x-ms-keyvault-region; "" means westeurope.
	Location string
	// Challenge, when set, makes the vault answer a request without an
	// Authorization header as Key Vault does: 401 with this
	// WWW-Authenticate value. Off by default: behind the front, vaultwall
	// challenges; on, the SDK can talk to the vault directly.
	Challenge string
}

// Request is one request as it reached the vault.
type Request struct {
	Method     string
	RequestURI string // path and query, verbatim
	Host       string
	Header     http.Header
	Time       time.Time
}

// Vault is a running fake Key Vault.
type Vault struct {
	srv       *httptest.Server
	pageSize  int
	location  string
	challenge string

	mu             sync.Mutex
	reqs           []Request
	secrets        map[string][]*secret
	deletedSecrets map[string]*secret
	keys           map[string][]*key
	deletedKeys    map[string]*key
	certs          map[string][]*certificate
}

// Start serves a vault over HTTPS (h2 and HTTP/1.1) until the test ends.
func Start(tb testing.TB, opts Options) *Vault {
	tb.Helper()
	v := &Vault{
		pageSize:       opts.PageSize,
		location:       opts.Location,
		challenge:      opts.Challenge,
		secrets:        map[string][]*secret{},
		deletedSecrets: map[string]*secret{},
		keys:           map[string][]*key{},
		deletedKeys:    map[string]*key{},
		certs:          map[string][]*certificate{},
	}
	if v.pageSize <= 0 {
		v.pageSize = 25
	}
	if v.location == "" {
		v.location = "westeurope"
	}
	v.srv = httptest.NewUnstartedServer(v)
	if opts.Cert != nil {
		v.srv.TLS = &tls.Config{Certificates: []tls.Certificate{*opts.Cert}}
	}
	v.srv.EnableHTTP2 = true
	v.srv.StartTLS()
	tb.Cleanup(v.srv.Close)
	return v
}

// URL is the vault's base URL (https://127.0.0.1:port).
func (v *Vault) URL() *url.URL {
	u, _ := url.Parse(v.srv.URL)
	return u
}

// CAs trusts the vault's certificate.
func (v *Vault) CAs() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(v.srv.Certificate())
	return p
}

// Requests is every request received, oldest first.
func (v *Vault) Requests() []Request {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]Request(nil), v.reqs...)
}

// ServeHTTP routes one Key Vault REST call.
func (v *Vault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	v.reqs = append(v.reqs, Request{Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Header: r.Header.Clone(), Time: time.Now()})
	v.mu.Unlock()

	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "-1")
	h.Set("Strict-Transport-Security", "max-age=31536000;includeSubDomains")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Ms-Request-Id", uuid.NewString())
	h.Set("X-Ms-Keyvault-Region", v.location)
	h.Set("X-Ms-Keyvault-Service-Version", "1.9.3019.1")
	if id := r.Header.Get("X-Ms-Client-Request-Id"); id != "" {
		h.Set("X-Ms-Client-Request-Id", id)
	}

	seg := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if r.URL.Path == "/healthstatus" {
		writeJSON(w, http.StatusOK, map[string]string{"status": "up"})
		return
	}
	if v.challenge != "" && r.Header.Get("Authorization") == "" {
		h.Set("WWW-Authenticate", v.challenge)
		writeError(w, http.StatusUnauthorized, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		writeError(w, http.StatusBadRequest, "BadParameter", "The request URI contains an invalid or missing api-version query parameter.")
		return
	}
	c := &call{v: v, w: w, r: r, base: "https://" + r.Host}
	switch seg[0] {
	case "secrets":
		v.routeSecrets(c, seg[1:])
	case "deletedsecrets":
		v.routeDeletedSecrets(c, seg[1:])
	case "keys":
		v.routeKeys(c, seg[1:])
	case "deletedkeys":
		v.routeDeletedKeys(c, seg[1:])
	case "certificates":
		v.routeCertificates(c, seg[1:])
	default:
		c.badRoute()
	}
}

// call is one request being answered.
type call struct {
	v    *Vault
	w    http.ResponseWriter
	r    *http.Request
	base string // https://<host the client used>
}

func (c *call) ok(body any) { writeJSON(c.w, http.StatusOK, body) }

func (c *call) badRoute() {
	writeError(c.w, http.StatusBadRequest, "BadParameter", fmt.Sprintf("The request %s %s is not supported by this vault.", c.r.Method, c.r.URL.Path))
}

func (c *call) badParameter(msg string) { writeError(c.w, http.StatusBadRequest, "BadParameter", msg) }

// notFound is Key Vault's 404 for an object: SecretNotFound,
// KeyNotFound, CertificateNotFound.
func (c *call) notFound(kind, name string) {
	code := map[string]string{"secret": "SecretNotFound", "key": "KeyNotFound", "certificate": "CertificateNotFound"}[kind]
	writeError(c.w, http.StatusNotFound, code, fmt.Sprintf(
		"A %s with (name/id) %s was not found in this key vault. If you recently deleted this %s you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
		kind, name, kind))
}

// decode reads a JSON body into dst; false after answering 400.
func (c *call) decode(dst any) bool {
	b, err := io.ReadAll(io.LimitReader(c.r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(b, dst)
	}
	if err != nil {
		c.badParameter("The request body is not valid JSON: " + err.Error())
		return false
	}
	return true
}

// page answers a list: items sorted by id (kid for keys), maxresults/$skiptoken paging,
// nextLink on the host the client used, null on the last page.
func (c *call) page(items []map[string]any) {
	sort.Slice(items, func(i, j int) bool { return itemID(items[i]) < itemID(items[j]) })
	size := c.v.pageSize
	if n, err := strconv.Atoi(c.r.URL.Query().Get("maxresults")); err == nil && n > 0 && n <= 25 {
		size = n
	}
	skip, _ := strconv.Atoi(c.r.URL.Query().Get("$skiptoken"))
	if skip < 0 || skip > len(items) {
		skip = len(items)
	}
	end := min(skip+size, len(items))
	out := map[string]any{"value": items[skip:end], "nextLink": nil}
	if end < len(items) {
		q := url.Values{}
		q.Set("api-version", c.r.URL.Query().Get("api-version"))
		q.Set("$skiptoken", strconv.Itoa(end))
		q.Set("maxresults", strconv.Itoa(size))
		out["nextLink"] = c.base + c.r.URL.Path + "?" + q.Encode()
	}
	if out["value"] == nil {
		out["value"] = []map[string]any{}
	}
	c.ok(out)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Ms-Error-Code", code)
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

// attributes are Key Vault's object attributes (Unix seconds).
type attributes struct {
	Enabled   *bool  `json:"enabled,omitempty"`
	NotBefore *int64 `json:"nbf,omitempty"`
	Expires   *int64 `json:"exp,omitempty"`
}

func (a attributes) json(created time.Time) map[string]any {
	enabled := true
	if a.Enabled != nil {
		enabled = *a.Enabled
	}
	m := map[string]any{
		"enabled":         enabled,
		"created":         created.Unix(),
		"updated":         created.Unix(),
		"recoveryLevel":   "Recoverable+Purgeable",
		"recoverableDays": 90,
	}
	if a.NotBefore != nil {
		m["nbf"] = *a.NotBefore
	}
	if a.Expires != nil {
		m["exp"] = *a.Expires
	}
	return m
}

// newVersion is a Key Vault object version: 32 lower-case hex digits.
func newVersion() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var (
	objectName = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)
	versionRe  = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// deletedDates are the deletedDate and scheduledPurgeDate of an object
// deleted now, with 90 days' retention.
func deletedDates(now time.Time) (int64, int64) {
	return now.Unix(), now.Add(90 * 24 * time.Hour).Unix()
}

func itemID(m map[string]any) string {
	if id, ok := m["id"].(string); ok {
		return id
	}
	s, _ := m["kid"].(string)
	return s
}
