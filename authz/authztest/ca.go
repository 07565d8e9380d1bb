package authztest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// TestCA is a certificate authority minted for one test: a self-signed
// ECDSA P-256 root that issues leaf certificates with Issue.
type TestCA struct {
	Cert *x509.Certificate
	Key  crypto.Signer

	tb testing.TB
}

// TestCAOptions shape a TestCA; the zero value is a root valid from an hour
// ago for ten years.
type TestCAOptions struct {
	// CommonName of the CA (default "vaultwall test CA <n>").
	CommonName string
	// NotBefore and NotAfter bound the CA's own validity.
	NotBefore, NotAfter time.Time
}

var caSeq atomic.Int64

// NewTestCA mints a fresh root CA.
func NewTestCA(tb testing.TB) *TestCA {
	tb.Helper()
	return NewTestCAWith(tb, TestCAOptions{})
}

// NewTestCAWith mints a root CA shaped by opts.
func NewTestCAWith(tb testing.TB, opts TestCAOptions) *TestCA {
	tb.Helper()
	now := time.Now()
	if opts.CommonName == "" {
		opts.CommonName = "vaultwall test CA " + itoa(caSeq.Add(1))
	}
	if opts.NotBefore.IsZero() {
		opts.NotBefore = now.Add(-time.Hour)
	}
	if opts.NotAfter.IsZero() {
		opts.NotAfter = now.AddDate(10, 0, 0)
	}
	key := newKey(tb)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: opts.CommonName, Organization: []string{"vaultwall tests"}},
		NotBefore:             opts.NotBefore,
		NotAfter:              opts.NotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatalf("authztest: create CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("authztest: parse CA: %v", err)
	}
	return &TestCA{Cert: cert, Key: key, tb: tb}
}

// PEM is the CA certificate in PEM form.
func (ca *TestCA) PEM() string { return CertPEM(ca.Cert) }

// Pool is a pool holding only this CA.
func (ca *TestCA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// WriteBundle writes the CA certificate, followed by the PEM of any others,
// to a file in the test's temporary directory and returns its path: the
// shape of a caFile setting.
func (ca *TestCA) WriteBundle(others ...*TestCA) string {
	ca.tb.Helper()
	data := ca.PEM()
	for _, o := range others {
		data += o.PEM()
	}
	path := filepath.Join(ca.tb.TempDir(), "ca-"+itoa(caSeq.Add(1))+".pem")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		ca.tb.Fatalf("authztest: write CA bundle: %v", err)
	}
	return path
}

func newKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("authztest: generate key: %v", err)
	}
	return key
}

func serial(tb testing.TB) *big.Int {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		tb.Fatalf("authztest: serial: %v", err)
	}
	return n.Add(n, big.NewInt(1))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
