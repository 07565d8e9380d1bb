package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"time"
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

func newPKI(dir string) (*benchPKI, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vaultwall bench CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	issue := func(serial int64, name string) (certPEM, keyPEM []byte, err error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return nil, nil, err
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
	}
	p := &benchPKI{pool: x509.NewCertPool(), caFile: filepath.Join(dir, "ca.pem"),
		frontCert: filepath.Join(dir, "front.crt"), frontKey: filepath.Join(dir, "front.key")}
	p.pool.AddCert(ca)
	fc, fk, err := issue(2, frontName)
	if err != nil {
		return nil, err
	}
	uc, uk, err := issue(3, upstreamName)
	if err != nil {
		return nil, err
	}
	if p.upstream, err = tls.X509KeyPair(uc, uk); err != nil {
		return nil, err
	}
	for path, data := range map[string][]byte{
		p.caFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), p.frontCert: fc, p.frontKey: fk,
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}
