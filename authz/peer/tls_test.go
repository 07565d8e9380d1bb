package peer

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/authztest"
)

// TestRecognizeOverRealTLS plays Envoy: a real TLS server asks for a client
// certificate, reports the peer as Envoy's CheckRequest would
// (source.principal, URL-encoded source.certificate), and the adapter's
// decoding (url.PathUnescape) feeds Recognize.
func TestRecognizeOverRealTLS(t *testing.T) {
	clientCA := authztest.NewTestCA(t)
	otherCA := authztest.NewTestCA(t)
	serverCA := authztest.NewTestCA(t)
	m := mustMatcher(t, TrustedServices{
		CAFile:   clientCA.WriteBundle(),
		Services: []TrustedService{svc("Backup", "spiffe://trusted.example/azure-backup")},
	})

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := &authz.Request{TLS: true}
		if len(r.TLS.PeerCertificates) > 0 {
			leaf := r.TLS.PeerCertificates[0]
			req.Principal = authztest.EnvoyPrincipal(leaf)
			pemText, err := url.PathUnescape(authztest.EnvoyEncodeCert(authztest.CertPEM(leaf)))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			req.CertificatePEM = pemText
		}
		name, in := m.Recognize(req, nil, opKeyBackup)
		if in {
			name += " in scope"
		}
		io.WriteString(w, name)
	}))
	server := serverCA.Issue(authztest.CertOptions{Server: true, IPs: []string{"127.0.0.1"}, DNSNames: []string{"localhost"}})
	// Like Envoy with require_client_certificate: false and no validation
	// context, so that an untrusted certificate reaches vaultwall.
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{server.TLS()}, ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	defer srv.Close()

	id := []string{"spiffe://trusted.example/azure-backup"}
	tests := []struct {
		name   string
		client *authztest.TestCert
		want   string
	}{
		{"trusted service", clientCA.Issue(authztest.CertOptions{URIs: id}), "Backup in scope"},
		{"same SAN from another CA", otherCA.Issue(authztest.CertOptions{URIs: id}), ""},
		{"look-alike", clientCA.Issue(authztest.CertOptions{URIs: []string{"spiffe://trusted.example/azure-backup-evil"}}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
				RootCAs: serverCA.Pool(), Certificates: []tls.Certificate{tt.client.TLS()},
			}}}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(body) != tt.want {
				t.Errorf("got %d %q, want %q", resp.StatusCode, body, tt.want)
			}
		})
	}
}
