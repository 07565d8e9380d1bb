package controlplane

import (
	"crypto/tls"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/config"
)

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestClientTLS: the etcd client's TLS settings. With caFile the server
// must chain to it (and nothing else is trusted); with certFile/keyFile the
// client presents that certificate; TLS 1.2 at least; a missing or empty
// file is an error naming the setting.
func TestClientTLS(t *testing.T) {
	dir := t.TempDir()
	ca, other := authztest.NewTestCA(t), authztest.NewTestCA(t)
	srvCert := ca.Issue(authztest.CertOptions{Server: true, DNSNames: []string{"localhost"}, IPs: []string{"127.0.0.1"}})
	client := ca.Issue(authztest.CertOptions{URIs: []string{"spiffe://ops.example/vaultwall"}})
	caFile := ca.WriteBundle()
	certFile, keyFile := writeFile(t, dir, "client.crt", client.PEM()), writeFile(t, dir, "client.key", client.KeyPEM())

	// An etcd-like server: its certificate from ca, client certificates
	// required and verified against ca.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{srvCert.TLS()},
		ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	peers := make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			if tc.Handshake() == nil && len(tc.ConnectionState().PeerCertificates) > 0 {
				peers <- tc.ConnectionState().PeerCertificates[0].URIs[0].String()
			} else {
				peers <- ""
			}
			_, _ = io.WriteString(tc, "ok")
			tc.Close()
		}
	}()
	dial := func(tc *tls.Config) error {
		tc = tc.Clone()
		tc.ServerName = "localhost"
		c, err := tls.Dial("tcp", ln.Addr().String(), tc)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = io.ReadAll(c)
		return err
	}

	tc, err := config.ClientTLS{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}.Load("controlPlane.store.tls")
	if err != nil {
		t.Fatal(err)
	}
	if tc.MinVersion < tls.VersionTLS12 || tc.InsecureSkipVerify || tc.RootCAs == nil || len(tc.Certificates) != 1 {
		t.Fatalf("config: min %x, insecure %v, roots %v, %d certificates", tc.MinVersion, tc.InsecureSkipVerify, tc.RootCAs != nil, len(tc.Certificates))
	}
	if err := dial(tc); err != nil {
		t.Fatalf("mutual TLS with caFile and the client certificate: %v", err)
	}
	if got := <-peers; got != "spiffe://ops.example/vaultwall" {
		t.Fatalf("the server saw client certificate %q", got)
	}

	// caFile is the only trust: a server certificate from another CA fails.
	otherCA, err := config.ClientTLS{CAFile: other.WriteBundle(), CertFile: certFile, KeyFile: keyFile}.Load("controlPlane.store.tls")
	if err != nil {
		t.Fatal(err)
	}
	if err := dial(otherCA); err == nil {
		t.Fatal("a server outside caFile was trusted")
	}
	<-peers
	// Without the certificate the server refuses the client.
	noCert, err := config.ClientTLS{CAFile: caFile}.Load("controlPlane.store.tls")
	if err != nil {
		t.Fatal(err)
	}
	if len(noCert.Certificates) != 0 {
		t.Fatal("a certificate without certFile")
	}
	if err := dial(noCert); err == nil {
		t.Fatal("the server accepted a client without a certificate")
	}
	<-peers

	for _, tt := range []struct {
		name  string
		cfg   config.ClientTLS
		field string
	}{
		{"missing caFile", config.ClientTLS{CAFile: filepath.Join(dir, "nope.pem")}, "controlPlane.store.tls.caFile"},
		{"caFile without PEM", config.ClientTLS{CAFile: writeFile(t, dir, "empty.pem", "not a certificate")}, "controlPlane.store.tls.caFile"},
		{"missing key", config.ClientTLS{CertFile: certFile, KeyFile: filepath.Join(dir, "nope.key")}, "controlPlane.store.tls"},
		{"key of another certificate", config.ClientTLS{CertFile: certFile, KeyFile: writeFile(t, dir, "other.key", srvCert.KeyPEM())}, "controlPlane.store.tls"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc, err := tt.cfg.Load("controlPlane.store.tls")
			if err == nil || tc != nil {
				t.Fatalf("accepted: %v", err)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("error %q does not name %s", err, tt.field)
			}
			var pe *os.PathError
			if strings.Contains(tt.name, "missing") && !errors.As(err, &pe) {
				t.Errorf("error %v does not wrap the file error", err)
			}
		})
	}
}
