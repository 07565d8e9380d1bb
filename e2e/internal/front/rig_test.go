package front

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/e2e/internal/authzstub"
)

const vaultHost = "contoso.vault.azure.net"

// rig is one stand-in between a stub authz server and a recording
// upstream, with a CA for the front and one for client certificates.
type rig struct {
	ca, clientCA *authztest.TestCA
	authz        *authzstub.Server
	front        *StandIn
	upstream     *recorder
}

// recorder is an HTTPS upstream that remembers what reached it.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (u *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.reqs = append(u.reqs, r.Clone(context.Background()))
	u.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Server", "upstream")
	_, _ = io.WriteString(w, "upstream says hi")
}

func (u *recorder) requests() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*http.Request(nil), u.reqs...)
}

func newRig(t testing.TB, h authzstub.Handler, tweak func(*Options)) *rig {
	t.Helper()
	r := &rig{
		ca:       authztest.NewTestCAWith(t, authztest.TestCAOptions{CommonName: "front CA"}),
		clientCA: authztest.NewTestCAWith(t, authztest.TestCAOptions{CommonName: "client CA"}),
		upstream: &recorder{},
	}
	r.authz = authzstub.Start(t, h)

	up := httptest.NewUnstartedServer(r.upstream)
	upCert := r.ca.IssueServer("vault.internal").TLS()
	up.TLS = &tls.Config{Certificates: []tls.Certificate{upCert}}
	up.EnableHTTP2 = true
	up.StartTLS()
	t.Cleanup(up.Close)
	upURL, _ := url.Parse(up.URL)

	serverCert := r.ca.IssueServer(vaultHost, "*.vault.azure.net").TLS()
	opts := Options{
		AuthzAddr:   r.authz.Addr(),
		Upstream:    upURL,
		UpstreamCAs: r.ca.Pool(),
		ServerCert:  &serverCert,
		ClientCAs:   r.clientCA.Pool(),
	}
	if tweak != nil {
		tweak(&opts)
	}
	r.front = StartStandIn(t, opts)
	return r
}

// client is a test client trusting the front's CA.
func (r *rig) client(t testing.TB, c Client) *http.Client {
	t.Helper()
	c.RootCAs = r.ca.Pool()
	return c.HTTPClient(t, r.front.Addr())
}

// do sends one request and returns the response with its body read.
func do(t testing.TB, hc *http.Client, method, rawURL string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// lastCheck is the only check the front logged.
func (r *rig) lastCheck(t *testing.T) Check {
	t.Helper()
	cs := r.front.Checks()
	if len(cs) == 0 {
		t.Fatal("no check logged")
	}
	return cs[len(cs)-1]
}

func allowAll(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return authzstub.Allow(), nil
}

func subject(cn string, ous ...string) pkix.Name {
	return pkix.Name{CommonName: cn, OrganizationalUnit: ous, Organization: []string{"Acme, Inc."}}
}

func hasHeader(h map[string]string, k string) bool {
	_, ok := h[strings.ToLower(k)]
	return ok
}
