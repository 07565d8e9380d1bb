package main

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path/filepath"

	"github.com/vaultwall/vaultwall/authz/authztest"
)

// Names the bench's certificates carry.
const (
	frontName    = "vault.bench.test" // the client's TLS server name for Envoy
	upstreamName = "vault.internal"   // the shipped vault cluster's sni and SAN match
)

// benchPKI is one CA and the two server certificates the bench needs:
// Envoy's listener and the upstream's. Files are written into a directory
// for Envoy; the upstream and the load generator use them in memory.
type benchPKI struct {
	pool                        *x509.CertPool
	caFile, frontCert, frontKey string
	upstream                    tls.Certificate
}

// newPKI mints them with the project's test CA kit, through its TB-free
// entry points (authztest.NewCA, Mint): this is a program, not a test.
func newPKI(dir string) (*benchPKI, error) {
	ca, err := authztest.NewCA(authztest.TestCAOptions{CommonName: "vaultwall bench CA"})
	if err != nil {
		return nil, err
	}
	server := func(name string) (*authztest.TestCert, error) {
		return ca.Mint(authztest.CertOptions{Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}, Server: true})
	}
	front, err := server(frontName)
	if err != nil {
		return nil, err
	}
	up, err := server(upstreamName)
	if err != nil {
		return nil, err
	}
	p := &benchPKI{pool: ca.Pool(), caFile: filepath.Join(dir, "ca.pem"),
		frontCert: filepath.Join(dir, "front.crt"), frontKey: filepath.Join(dir, "front.key"), upstream: up.TLS()}
	for path, data := range map[string]string{p.caFile: ca.PEM(), p.frontCert: front.PEM(), p.frontKey: front.KeyPEM()} {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}
