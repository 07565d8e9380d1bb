package config_test

import (
	"crypto/tls"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/config"
)

// TestServerTLSRefusesBadCertificate: a listener whose TLS cannot be set up
// gets no configuration, least of all an empty one that would serve plain
// text.
func TestServerTLSRefusesBadCertificate(t *testing.T) {
	dir := t.TempDir()
	tc, err := config.ServerTLS{CertFile: filepath.Join(dir, "missing.pem"), KeyFile: filepath.Join(dir, "missing.key")}.
		Load("server.tls", tls.RequireAndVerifyClientCert)
	if err == nil || !strings.Contains(err.Error(), "server.tls") {
		t.Errorf("a missing certificate: err = %v, want a server.tls error", err)
	}
	if tc != nil {
		t.Error("a TLS configuration was returned although its certificate failed to load")
	}
}

// TestServerTLSMissingClientCA: a clientCAFile that cannot be read is
// reported as such (the file's own error, e.g. not found), not as a file
// without certificates.
func TestServerTLSMissingClientCA(t *testing.T) {
	dir := t.TempDir()
	ca := authztest.NewTestCA(t)
	cert := ca.Issue(authztest.CertOptions{DNSNames: []string{"localhost"}, Server: true})
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	if err := os.WriteFile(certFile, []byte(cert.PEM()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte(cert.KeyPEM()), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing-ca.pem")
	tc, err := config.ServerTLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: missing}.Load("server.tls", tls.RequireAndVerifyClientCert)
	if tc != nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "server.tls.clientCAFile") {
		t.Errorf("missing clientCAFile: tls %v, err %v; want no config and a server.tls.clientCAFile error wrapping fs.ErrNotExist", tc, err)
	}
}
