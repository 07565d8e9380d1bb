package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLS is loaded here and only here: the ext_authz listener (server.tls),
// the admin listener (controlPlane.tls) and the etcd client
// (controlPlane.store.tls). Errors name the section given as field.

// Load reads the listener's certificate and, with clientCAFile, the CA
// that client certificates must chain to, verified as clientAuth says
// (tls.RequireAndVerifyClientCert for Envoy's mTLS,
// tls.VerifyClientCertIfGiven where tokens are accepted too). nil, nil when
// TLS is off.
func (t ServerTLS) Load(field string, clientAuth tls.ClientAuthType) (*tls.Config, error) {
	if !t.Enabled() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"}}
	if t.ClientCAFile != "" {
		pool, err := LoadCertPool(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.clientCAFile: %w", field, err)
		}
		tc.ClientCAs, tc.ClientAuth = pool, clientAuth
	}
	return tc, nil
}

// Load reads the client's CA (caFile) and certificate, when given.
func (t ClientTLS) Load(field string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pool, err := LoadCertPool(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.caFile: %w", field, err)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// LoadCertPool reads a PEM bundle of CA certificates; a file without one
// is an error.
func LoadCertPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}
