package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/config"
)

const (
	testTenant  = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	adminID     = "spiffe://ops.example/admin"
	adminDNS    = "admin.ops.example"
	testOID     = "11111111-1111-1111-1111-111111111111"
	otherTenant = "33333333-3333-3333-3333-333333333333"
)

// recorder is an Auditor that keeps every record.
type recorder struct {
	mu      sync.Mutex
	changes []Change
}

func (r *recorder) Change(_ context.Context, c Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, c)
}

func (r *recorder) all() []Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Change(nil), r.changes...)
}

// testServer opens a control plane on a file store, without listeners: the
// tests call its interceptor and handlers directly. The vault grants
// testOID secrets/get and names the admin principals adminID and
// dns:adminDNS.
func testServer(t *testing.T) (*Server, *recorder) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "vault.yaml")
	ca := authztest.NewTestCA(t)
	srv := ca.Issue(authztest.CertOptions{Server: true, DNSNames: []string{"localhost"}})
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for f, data := range map[string]string{certFile: srv.PEM(), keyFile: srv.KeyPEM()} {
		if err := os.WriteFile(f, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	text := fmt.Sprintf(`
vault: {name: contoso-vault, tenantId: %[1]s, location: westeurope}
properties:
  accessPolicies:
    - {tenantId: %[1]s, objectId: %[2]s, permissions: {secrets: [get]}}
controlPlane:
  enabled: true
  listenAddr: "127.0.0.1:0"
  adminPrincipals: [%[3]q, "dns:%[4]s"]
  store: {type: file, path: %[5]q}
  tls: {certFile: %[6]q, keyFile: %[7]q, clientCAFile: %[8]q}
`, testTenant, testOID, adminID, adminDNS, filepath.Join(dir, "state.json"), certFile, keyFile, ca.WriteBundle())
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	s, err := Open(t.Context(), Options{Config: cfg, Audit: rec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, rec
}

// withCert is a call over TLS that presented cert; verified says whether
// the handshake verified it (a chain in VerifiedChains) or only received
// it (PeerCertificates, as with a loosened ClientAuth).
func withCert(ctx context.Context, cert *x509.Certificate, verified bool) context.Context {
	st := tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{cert}}
	if verified {
		st.VerifiedChains = [][]*x509.Certificate{{cert}}
	}
	return peer.NewContext(ctx, &peer.Peer{AuthInfo: credentials.TLSInfo{State: st}})
}

const writeMethod = "/vaultwall.v1.VaultAdminService/UpdateAccessPolicies"

// TestAdminCertificateLookAlikes: the admin principals are matched as
// trusted services are (authz/peer): raw SAN bytes, one URI SAN, DNS
// patterns only against DNS SANs, subject only for subject: patterns.
func TestAdminCertificateLookAlikes(t *testing.T) {
	s, _ := testServer(t)
	ca := authztest.NewTestCA(t)
	for _, tc := range []struct {
		name  string
		opts  authztest.CertOptions
		admin bool
	}{
		{"the admin SPIFFE ID", authztest.CertOptions{URIs: []string{adminID}}, true},
		{"the admin DNS name", authztest.CertOptions{DNSNames: []string{adminDNS}}, true},
		{"the admin DNS name in upper case", authztest.CertOptions{DNSNames: []string{"ADMIN.ops.example"}}, true},
		{"DNS:spiffe://… look-alike", authztest.CertOptions{DNSNames: []string{adminID}}, false},
		{"URI:SPIFFE://… (upper-case scheme)", authztest.CertOptions{URIs: []string{"SPIFFE://ops.example/admin"}}, false},
		{"URI SAN spelled as the admin DNS name", authztest.CertOptions{URIs: []string{adminDNS}}, false},
		{"subject CN spelled as the admin SPIFFE ID", authztest.CertOptions{Subject: pkix.Name{CommonName: adminID}}, false},
		{"subject CN spelled as the admin DNS name", authztest.CertOptions{Subject: pkix.Name{CommonName: adminDNS}}, false},
		{"two URI SANs, admin first", authztest.CertOptions{URIs: []string{adminID, "spiffe://ops.example/intern"}}, false},
		{"two URI SANs, admin second", authztest.CertOptions{URIs: []string{"spiffe://ops.example/intern", adminID}}, false},
		{"percent-encoded path", authztest.CertOptions{URIs: []string{"spiffe://ops.example/%61dmin"}}, false},
		{"trailing dot", authztest.CertOptions{DNSNames: []string{adminDNS + "."}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := ca.Issue(tc.opts).Cert
			_, err := s.authorize(withCert(t.Context(), cert, true), writeMethod)
			got := status.Code(err)
			switch {
			case tc.admin && got != codes.OK:
				t.Fatalf("the admin certificate was refused: %v", err)
			case !tc.admin && got == codes.OK:
				t.Fatal("a look-alike certificate was given admin rights")
			case !tc.admin && got != codes.PermissionDenied && got != codes.Unauthenticated:
				t.Fatalf("refused with %v, want PermissionDenied or Unauthenticated: %v", got, err)
			}
		})
	}
}

// TestUnverifiedCertificateNeverUsed: a certificate the handshake did not
// verify (received, but no verified chain, as a listener with ClientAuth
// loosened to RequireAnyClientCert would leave it) is not an identity.
func TestUnverifiedCertificateNeverUsed(t *testing.T) {
	s, _ := testServer(t)
	cert := authztest.NewTestCA(t).Issue(authztest.CertOptions{URIs: []string{adminID}}).Cert
	if _, err := s.authorize(withCert(t.Context(), cert, false), writeMethod); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("an unverified admin certificate: %v, want Unauthenticated", err)
	}
	if _, err := s.authorize(withCert(t.Context(), cert, true), writeMethod); err != nil {
		t.Fatalf("the same certificate, verified: %v", err)
	}
}
