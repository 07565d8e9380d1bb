package authztest_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vaultwall/vaultwall/authz/authztest"
)

func TestEnvoyEncodeCert(t *testing.T) {
	ca := authztest.NewTestCA(t)
	pemText := ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://trusted.example/azure-backup"}}).PEM()
	enc := authztest.EnvoyEncodeCert(pemText)
	if strings.ContainsAny(enc, "\n /+=") {
		t.Errorf("encoded certificate still holds a character Envoy escapes: %q", enc)
	}
	if !strings.HasPrefix(enc, "-----BEGIN%20CERTIFICATE-----%0A") || !strings.HasSuffix(enc, "-----END%20CERTIFICATE-----%0A") {
		t.Errorf("unexpected framing: %q", enc)
	}
	dec, err := url.PathUnescape(enc)
	if err != nil || dec != pemText {
		t.Fatalf("url.PathUnescape does not restore the PEM: %v", err)
	}
	// Exactly five characters: '%' and everything else pass through.
	if got := authztest.EnvoyEncodeCert("a+b/c=d e\nf%g_h"); got != "a%2Bb%2Fc%3Dd%20e%0Af%g_h" {
		t.Errorf("EnvoyEncodeCert = %q", got)
	}
}

func TestEnvoyPrincipal(t *testing.T) {
	ca := authztest.NewTestCA(t)
	rawSubject := func(rdns ...[]pkix.AttributeTypeAndValue) []byte {
		var seq pkix.RDNSequence
		for _, r := range rdns {
			seq = append(seq, pkix.RelativeDistinguishedNameSET(r))
		}
		b, err := asn1.Marshal(seq)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cn := asn1.ObjectIdentifier{2, 5, 4, 3}
	o := asn1.ObjectIdentifier{2, 5, 4, 10}
	ou := asn1.ObjectIdentifier{2, 5, 4, 11}
	tests := []struct {
		name string
		opts authztest.CertOptions
		want string
	}{
		{"URI wins over DNS", authztest.CertOptions{DNSNames: []string{"b.example"}, URIs: []string{"spiffe://td/a", "spiffe://td/b"}}, "spiffe://td/a"},
		{"URI kept byte for byte", authztest.CertOptions{URIs: []string{"spiffe://td/A%2Fb"}}, "spiffe://td/A%2Fb"},
		{"first DNS without URI", authztest.CertOptions{DNSNames: []string{"Backup.Example", "b.example"}, IPs: []string{"10.0.0.1"}}, "Backup.Example"},
		{"email and IP SANs ignored", authztest.CertOptions{Subject: pkix.Name{CommonName: "svc-a", Organization: []string{"Acme"}},
			Emails: []string{"a@example.com"}, IPs: []string{"::1"}}, "CN=svc-a,O=Acme"},
		{"subject reversed", authztest.CertOptions{Subject: pkix.Name{Country: []string{"NL"}, Organization: []string{"Acme"},
			OrganizationalUnit: []string{"Ops"}, CommonName: "svc"}}, "CN=svc,OU=Ops,O=Acme,C=NL"},
		{"specials escaped", authztest.CertOptions{Subject: pkix.Name{CommonName: `a,b+c"d\e<f>g;h`}}, `CN=a\,b\+c\"d\\e\<f\>g\;h`},
		{"leading hash and spaces", authztest.CertOptions{Subject: pkix.Name{CommonName: "#x y "}}, `CN=\#x y\ `},
		{"non-ASCII as hex bytes", authztest.CertOptions{Subject: pkix.Name{CommonName: "café"}}, `CN=caf\C3\A9`},
		{"multi-valued RDN", authztest.CertOptions{RawSubject: rawSubject(
			[]pkix.AttributeTypeAndValue{{Type: o, Value: "Acme"}},
			[]pkix.AttributeTypeAndValue{{Type: ou, Value: "Ops"}, {Type: cn, Value: "svc"}})}, "CN=svc+OU=Ops,O=Acme"}, // DER sorts a SET OF
		{"unknown attribute dumped", authztest.CertOptions{RawSubject: rawSubject(
			[]pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: "x"}})}, "1.2.3.4=#130178"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ca.Issue(tt.opts)
			if got := c.EnvoyPrincipal(); got != tt.want {
				t.Errorf("EnvoyPrincipal = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIssue(t *testing.T) {
	ca := authztest.NewTestCA(t)
	other := authztest.NewTestCA(t)
	verify := func(c *authztest.TestCert, pool *x509.CertPool, usage x509.ExtKeyUsage) error {
		_, err := c.Cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}})
		return err
	}
	client := ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://td/x"}})
	if err := verify(client, ca.Pool(), x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("client certificate does not verify: %v", err)
	}
	if err := verify(client, ca.Pool(), x509.ExtKeyUsageServerAuth); err == nil {
		t.Error("client certificate verifies for server auth")
	}
	if err := verify(client, other.Pool(), x509.ExtKeyUsageClientAuth); err == nil {
		t.Error("certificate verifies against another CA")
	}
	if err := verify(ca.Issue(authztest.CertOptions{Expired: true, DNSNames: []string{"x"}}), ca.Pool(), x509.ExtKeyUsageClientAuth); err == nil {
		t.Error("expired certificate verifies")
	}
	if c := ca.Issue(authztest.CertOptions{NoExtKeyUsage: true, DNSNames: []string{"x"}}); c.Cert.ExtKeyUsage != nil {
		t.Errorf("NoExtKeyUsage: got %v", c.Cert.ExtKeyUsage)
	}
	subjectOnly := ca.Issue(authztest.CertOptions{Subject: pkix.Name{CommonName: "only"}})
	if len(subjectOnly.Cert.URIs)+len(subjectOnly.Cert.DNSNames) != 0 {
		t.Error("subject-only certificate has SANs")
	}
	noSubject := ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://td/x"}})
	for _, e := range noSubject.Cert.Extensions {
		if e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 17}) && !e.Critical {
			t.Error("SAN of a certificate without subject is not critical")
		}
	}
	data, err := os.ReadFile(ca.WriteBundle(other))
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != ca.PEM()+other.PEM() {
		t.Error("WriteBundle wrote something else")
	}
	if got := authztest.ParseCertPEM(t, client.PEM()); !got.Equal(client.Cert) {
		t.Error("ParseCertPEM does not round-trip")
	}
}

// TestRealTLS uses the kit for a real mutual-TLS exchange: the server sees
// the client certificate the kit minted, with the principal Envoy would
// report.
func TestRealTLS(t *testing.T) {
	ca := authztest.NewTestCA(t)
	server := ca.Issue(authztest.CertOptions{Server: true, DNSNames: []string{"localhost"}, IPs: []string{"127.0.0.1"}})
	client := ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://trusted.example/azure-backup"}})

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, authztest.EnvoyPrincipal(r.TLS.PeerCertificates[0]))
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{server.TLS()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
	}
	srv.StartTLS()
	defer srv.Close()

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: ca.Pool(), Certificates: []tls.Certificate{client.TLS()},
	}}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "spiffe://trusted.example/azure-backup" {
		t.Errorf("server saw principal %q", body)
	}
}

// TestIssueServer: a server certificate for the names and the loopback
// addresses, verifiable for server auth; WriteKeyPair's files load back.
func TestIssueServer(t *testing.T) {
	ca := authztest.NewTestCAWith(t, authztest.TestCAOptions{CommonName: "front CA"})
	srv := ca.IssueServer("vault.internal", "*.vault.azure.net")
	if ca.Cert.Subject.CommonName != "front CA" || srv.Cert.Subject.CommonName != "vault.internal" {
		t.Errorf("CA %q, server %q", ca.Cert.Subject.CommonName, srv.Cert.Subject.CommonName)
	}
	for _, name := range []string{"vault.internal", "x.vault.azure.net", "localhost", "127.0.0.1", "::1"} {
		if _, err := srv.Cert.Verify(x509.VerifyOptions{DNSName: name, Roots: ca.Pool()}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	certFile, keyFile := authztest.WriteKeyPair(t, t.TempDir(), "server", srv.TLS())
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil || !pair.Leaf.Equal(srv.Cert) {
		t.Errorf("WriteKeyPair's files: %v", err)
	}
}

// TestNewCAWithoutTB: the kit's CA for programs, whose Mint returns what
// Issue would have failed the test with.
func TestNewCAWithoutTB(t *testing.T) {
	ca, err := authztest.NewCA(authztest.TestCAOptions{CommonName: "bench CA"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Mint(authztest.CertOptions{Server: true, DNSNames: []string{"vault.bench.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cert.Verify(x509.VerifyOptions{DNSName: "vault.bench.test", Roots: ca.Pool()}); err != nil {
		t.Error(err)
	}
	if _, err := tls.X509KeyPair([]byte(c.PEM()), []byte(c.KeyPEM())); err != nil {
		t.Error(err)
	}
	if _, err := ca.Mint(authztest.CertOptions{IPs: []string{"not an address"}}); err == nil {
		t.Error("Mint accepted an IP SAN that does not parse")
	}
}
