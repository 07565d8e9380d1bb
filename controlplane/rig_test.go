package controlplane_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/token"
	v1 "github.com/vaultwall/vaultwall/controlplane/api/vaultwall/v1"
	"github.com/vaultwall/vaultwall/server"
	"github.com/vaultwall/vaultwall/server/servertest"
)

const (
	adminAudience = "api://vaultwall-admin"
	adminSPIFFE   = "spiffe://ops.example/admin"
)

// rig is what several vaultwall instances of one test share: the issuer,
// the CA of the admin listener, a directory.
type rig struct {
	is  *authztest.Issuer
	ca  *authztest.TestCA
	dir string
	// tls: server certificate and key files, client CA bundle.
	certFile, keyFile, caFile string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{is: authztest.NewIssuer(t), ca: authztest.NewTestCA(t), dir: t.TempDir()}
	srv := r.ca.Issue(authztest.CertOptions{Server: true, DNSNames: []string{"localhost"}, IPs: []string{"127.0.0.1"}})
	r.certFile = r.write(t, "admin.crt", srv.PEM())
	r.keyFile = r.write(t, "admin.key", srv.KeyPEM())
	r.caFile = r.ca.WriteBundle()
	return r
}

func (r *rig) write(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(r.dir, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// config is a vault that lets the default application read secrets from
// 203.0.113.0/24 only, with the control plane on, storing as store says.
func (r *rig) config(store string) string {
	return fmt.Sprintf(`
vault: {name: contoso-vault, tenantId: %[1]s, location: westeurope}
properties:
  networkAcls: {defaultAction: Deny, bypass: None, ipRules: [{value: 203.0.113.0/24}]}
  accessPolicies:
    - {tenantId: %[1]s, objectId: %[2]s, permissions: {secrets: [get]}}
identity:
  issuers: [{issuer: %[3]q, discovery: true, caFile: %[4]q}]
server: {grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0"}
controlPlane:
  enabled: true
  listenAddr: "127.0.0.1:0"
  tls: {certFile: %[5]q, keyFile: %[6]q, clientCAFile: %[7]q}
  audiences: [%[8]s]
  adminPrincipals: [%[9]q]
  store: %[10]s
`, r.is.Tenant(), authztest.DefaultObjectID, r.is.Issuer(), r.is.CAFile(), r.certFile, r.keyFile, r.caFile,
		adminAudience, adminSPIFFE, store)
}

// instance is one running vaultwall: ext_authz and the admin API.
type instance struct {
	cfgPath   string
	checks    authv3.AuthorizationClient
	adminAddr string
	log       *lockedWriter
	// host is the Host of check's requests (default the vault's,
	// contoso-vault.vault.azure.net).
	host string
}

// start runs a whole vaultwall process in-process (server.Serve, as
// `vaultwall serve` runs it) and stops it when the test ends.
func (r *rig) start(t *testing.T, name, cfgText string) *instance {
	t.Helper()
	return r.startHost(t, name, cfgText, "")
}

// startHost is start, checking readiness (and later checks) with Host
// host ("": the default vault's).
func (r *rig) startHost(t *testing.T, name, cfgText, host string) *instance {
	t.Helper()
	cfgPath := r.write(t, name+".yaml", cfgText)
	logs := &lockedWriter{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a, _ := servertest.Start(t, server.Options{ConfigPath: cfgPath, Log: log, Poll: time.Hour, Stdout: io.Discard,
		Store: token.StoreOptions{HTTPClient: r.is.HTTPClient()}})
	cc, err := grpc.NewClient(a.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	in := &instance{cfgPath: cfgPath, log: logs, checks: authv3.NewAuthorizationClient(cc), adminAddr: a.Admin, host: host}
	// Data-plane tokens need the issuer's keys.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, _ := in.check(t, r.is.MintValid(), "203.0.113.9")
		if ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return in
}

// client dials the admin API with TLS and, when cert is set, a client
// certificate.
func (in *instance) client(t *testing.T, r *rig, cert *authztest.TestCert) v1.VaultAdminServiceClient {
	t.Helper()
	tc := &tls.Config{RootCAs: r.ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.Certificates = []tls.Certificate{cert.TLS()}
	}
	cc, err := grpc.NewClient(in.adminAddr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return v1.NewVaultAdminServiceClient(cc)
}

// adminToken mints a management token with roles.
func (r *rig) adminToken(roles ...string) string {
	c := r.is.Claims()
	c["aud"] = adminAudience
	c["oid"] = "99999999-9999-9999-9999-999999999999"
	rs := make([]any, len(roles))
	for i, x := range roles {
		rs[i] = x
	}
	c["roles"] = rs
	return r.is.Mint(c)
}

func bearer(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

// check asks the data plane whether a secret read from addr passes.
func (in *instance) check(t *testing.T, tok, addr string) (bool, string) {
	t.Helper()
	path := "/secrets/db?api-version=7.5"
	host := in.host
	if host == "" {
		host = "contoso-vault.vault.azure.net"
	}
	resp, err := in.checks.Check(t.Context(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: path, Host: host,
			Headers: map[string]string{":path": path, ":method": "GET", "authorization": "Bearer " + tok}}},
	}})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return resp.GetStatus().GetCode() == int32(code.Code_OK), resp.GetDeniedResponse().GetBody()
}
