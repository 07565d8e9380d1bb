package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/config"
	v1 "github.com/vaultwall/vaultwall/controlplane/api/vaultwall/v1"
)

const (
	testTenant  = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	adminID     = "spiffe://ops.example/admin"
	adminDNS    = "admin.ops.example"
	testOID     = "11111111-1111-1111-1111-111111111111"
	otherTenant = "33333333-3333-3333-3333-333333333333"
)

// recorder is an Auditor that keeps every record, and the writer of the
// server's log.
type recorder struct {
	mu      sync.Mutex
	changes []Change
	log     strings.Builder
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.Write(p)
}

func (r *recorder) logs() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
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
func testServer(t *testing.T, opts ...func(*Options)) (*Server, *recorder) {
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
	o := Options{Config: cfg, Audit: rec, Log: slog.New(slog.NewJSONHandler(rec, nil))}
	for _, f := range opts {
		f(&o)
	}
	s, err := Open(t.Context(), o)
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

// intercept runs the interceptor for fullMethod with a handler that does
// nothing, and returns its error.
func intercept(ctx context.Context, s *Server, fullMethod string) error {
	_, err := s.unary(ctx, nil, &grpc.UnaryServerInfo{FullMethod: fullMethod},
		func(context.Context, any) (any, error) { return nil, nil })
	return err
}

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
			err := intercept(withCert(t.Context(), cert, true), s, writeMethod)
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
	if err := intercept(withCert(t.Context(), cert, false), s, writeMethod); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("an unverified admin certificate: %v, want Unauthenticated", err)
	}
	if err := intercept(withCert(t.Context(), cert, true), s, writeMethod); err != nil {
		t.Fatalf("the same certificate, verified: %v", err)
	}
}

// TestRefusedCallsAudited: every call refused before its write ran —
// no credential, a certificate that is not an admin's, a malformed write
// request — leaves exactly one audit record naming the caller as far as it
// is known and the reason, and one log line.
func TestRefusedCallsAudited(t *testing.T) {
	s, rec := testServer(t)
	ca := authztest.NewTestCA(t)
	intern := withCert(t.Context(), ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://ops.example/intern"}}).Cert, true)
	adm := withCert(t.Context(), ca.Issue(authztest.CertOptions{URIs: []string{adminID}}).Cert, true)
	for _, tc := range []struct {
		name    string
		do      func() error
		code    codes.Code
		method  string
		outcome string
		caller  string
		reason  string // in Reason or Error
	}{
		{"no credential", func() error { return intercept(t.Context(), s, writeMethod) },
			codes.Unauthenticated, "UpdateAccessPolicies", "denied", "anonymous", "bearer token"},
		{"no credential, a read", func() error { return intercept(t.Context(), s, "/vaultwall.v1.VaultAdminService/GetVault") },
			codes.Unauthenticated, "GetVault", "denied", "anonymous", "bearer token"},
		{"a certificate that is not an admin's", func() error {
			return intercept(intern, s, "/vaultwall.v1.VaultAdminService/CreateRoleAssignment")
		}, codes.PermissionDenied, "CreateRoleAssignment", "denied", "certificate spiffe://ops.example/intern", "not an admin principal"},
		{"unspecified kind", func() error {
			_, err := updatePolicies(adm, s, v1.AccessPolicyUpdateKind_ACCESS_POLICY_UPDATE_KIND_UNSPECIFIED, "*")
			return err
		}, codes.InvalidArgument, "UpdateAccessPolicies", "refused", "certificate " + adminID, "kind"},
		{"missing principal", func() error {
			_, err := call(adm, s, "CreateRoleAssignment", &v1.CreateRoleAssignmentRequest{Etag: "*",
				RoleAssignment: &v1.RoleAssignment{RoleDefinitionId: "Key Vault Secrets User"}}, s.CreateRoleAssignment)
			return err
		}, codes.InvalidArgument, "CreateRoleAssignment", "refused", "certificate " + adminID, "principal_id"},
		{"missing id", func() error {
			_, err := call(adm, s, "DeleteRoleAssignment", &v1.DeleteRoleAssignmentRequest{Etag: "*"}, s.DeleteRoleAssignment)
			return err
		}, codes.InvalidArgument, "DeleteRoleAssignment", "refused", "certificate " + adminID, "id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, lines := len(rec.all()), strings.Count(rec.logs(), "control-plane call refused")
			if err := tc.do(); status.Code(err) != tc.code {
				t.Fatalf("%v, want %v", err, tc.code)
			}
			got := rec.all()[before:]
			if len(got) != 1 {
				t.Fatalf("%d audit records, want 1: %+v", len(got), got)
			}
			c := got[0]
			if c.Method != tc.method || c.Outcome != tc.outcome || c.Caller != tc.caller ||
				!strings.Contains(c.Reason+" "+c.Error, tc.reason) {
				t.Fatalf("audit record %+v, want method %s, outcome %s, caller %q, reason with %q", c, tc.method, tc.outcome, tc.caller, tc.reason)
			}
			if n := strings.Count(rec.logs(), "control-plane call refused"); n != lines+1 {
				t.Fatalf("%d log lines for the refusal, want 1", n-lines)
			}
		})
	}
}
