package authztest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
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

	tb testing.TB // nil for a CA made by NewCA
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
	ca, err := NewCA(opts)
	if err != nil {
		tb.Fatal(err)
	}
	ca.tb = tb
	return ca
}

// NewCA is NewTestCAWith for a program without a testing.TB (a benchmark
// binary): it returns its error, and so does the CA's Mint. The methods
// that fail a test instead (Issue, IssueDER, WriteBundle, TestCert.KeyPEM)
// panic on such a CA.
func NewCA(opts TestCAOptions) (*TestCA, error) {
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
	key, sn, err := newKeyAndSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: opts.CommonName, Organization: []string{"vaultwall tests"}},
		NotBefore:             opts.NotBefore,
		NotAfter:              opts.NotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("authztest: create CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("authztest: parse CA: %w", err)
	}
	return &TestCA{Cert: cert, Key: key}, nil
}

// fatal fails the CA's test, or panics for a CA made by NewCA.
func (ca *TestCA) fatal(err error) {
	if ca.tb == nil {
		panic(err)
	}
	ca.tb.Helper()
	ca.tb.Fatal(err)
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
	if ca.tb == nil {
		panic("authztest: WriteBundle needs a CA made with a testing.TB")
	}
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

// newKeyAndSerial makes an ECDSA P-256 key and a random positive serial.
func newKeyAndSerial() (*ecdsa.PrivateKey, *big.Int, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("authztest: generate key: %w", err)
	}
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("authztest: serial: %w", err)
	}
	return key, n.Add(n, big.NewInt(1)), nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
