package main

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
)

// upstream is the smallest Key Vault–shaped vault: HTTPS with the
// certificate Envoy's vault cluster expects, GET /healthstatus for the
// cluster's health check, and for the data plane a fixed JSON body of the
// shape Key Vault answers (a secret bundle, a list page, a key operation
// result). It never decides anything: the bench measures the front.
func startUpstream(p *benchPKI) (addr string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{
		Handler:   http.HandlerFunc(serveVault),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{p.upstream}, MinVersion: tls.VersionTLS12},
	}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	return l.Addr().String(), func() { _ = srv.Close() }, nil
}

var (
	secretBody = []byte(`{"value":"bench-secret-value","id":"https://bench-vault.vault.azure.net/secrets/s/0123456789abcdef0123456789abcdef","attributes":{"enabled":true,"created":1700000000,"updated":1700000000,"recoveryLevel":"Recoverable+Purgeable"}}`)
	listBody   = []byte(`{"value":[{"id":"https://bench-vault.vault.azure.net/secrets/s","attributes":{"enabled":true}}],"nextLink":null}`)
	keyOpBody  = []byte(`{"kid":"https://bench-vault.vault.azure.net/keys/k/0123456789abcdef0123456789abcdef","value":"Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4"}`)
	healthBody = []byte(`{}`)
)

func serveVault(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	body := keyOpBody
	switch p := r.URL.Path; {
	case p == "/healthstatus":
		body = healthBody
	case p == "/secrets":
		body = listBody
	case strings.HasPrefix(p, "/secrets/"):
		body = secretBody
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(body)
}
