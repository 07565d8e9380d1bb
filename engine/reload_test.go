package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/envoy"
)

// liveConfig is a vault whose one application may read secrets from
// 203.0.113.0/24, with operator rules from ./policy.
func liveConfig(is *authztest.Issuer, dir string) string {
	return fmt.Sprintf(`
vault: {name: contoso-vault, tenantId: %s, location: westeurope}
properties:
  networkAcls: {defaultAction: Deny, ipRules: [{value: 203.0.113.0/24}]}
  accessPolicies:
    - {tenantId: %s, objectId: %s, permissions: {secrets: [get, list]}}
identity:
  issuers: [{issuer: %q, discovery: true}]
policy: {dir: %q}
server: {grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0"}
`, is.Tenant(), is.Tenant(), authztest.DefaultObjectID, is.Issuer(), filepath.Join(dir, "policy"))
}

const denyLists = `package vaultwall.operator

deny contains "listing secrets is switched off" if input.operation.permission == "list"
`

func secretCheck(token, peer, path string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: envoyAddr(peer)},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: path, Headers: map[string]string{":path": path, ":method": "GET", "authorization": "Bearer " + token}}},
	}}
}

// TestPolicyHotReload: a valid operator policy takes effect without a
// restart; a broken one is refused with file:line and the running policy
// stays; fixing it applies the fix.
func TestPolicyHotReload(t *testing.T) {
	is := authztest.NewIssuer(t)
	keys := token.NewKeyStore(token.StoreOptions{HTTPClient: is.HTTPClient()})
	t.Cleanup(func() { keys.Close() })
	b := &Builder{Keys: keys}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "vault.yaml")
	write(t, cfgPath, liveConfig(is, dir))
	if err := os.MkdirAll(filepath.Join(dir, "policy"), 0o755); err != nil {
		t.Fatal(err)
	}
	policyFile := filepath.Join(dir, "policy", "ops.rego")

	srv := envoy.NewServer(nil, nil)
	e := New(cfgPath, b.Build, nil, func(rt *Runtime) { srv.SetPipeline(rt.Pipeline) })
	if err := e.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	tok := is.MintValid()
	decide := func() (bool, string) {
		t.Helper()
		resp, err := srv.Check(t.Context(), secretCheck(tok, "203.0.113.10", "/secrets?api-version=7.5"))
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetStatus().GetCode() == int32(code.Code_OK), resp.GetDeniedResponse().GetBody()
	}
	if ok, body := decide(); !ok {
		t.Fatalf("list refused before any operator rule: %s", body)
	}

	write(t, policyFile, denyLists)
	if err := e.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ok, body := decide(); ok || !strings.Contains(body, "listing secrets is switched off") {
		t.Fatalf("operator deny not applied after reload: ok=%v %s", ok, body)
	}
	gen := e.Current().Generation

	write(t, policyFile, denyLists+"\nthis is not rego {\n")
	err := e.Load(t.Context())
	if err == nil {
		t.Fatal("a broken policy was accepted")
	}
	if !regexp.MustCompile(regexp.QuoteMeta(policyFile) + `:\d+: `).MatchString(err.Error()) {
		t.Errorf("error %q does not name the file and line", err)
	}
	if e.Current().Generation != gen {
		t.Fatal("the running configuration was replaced by a broken policy")
	}
	if ok, body := decide(); ok || !strings.Contains(body, "listing secrets is switched off") {
		t.Fatalf("the running policy stopped applying: ok=%v %s", ok, body)
	}
	if st := e.Status(); !strings.Contains(st.LastError, "ops.rego") {
		t.Errorf("status does not show the rejected policy: %+v", st)
	}

	if err := os.Remove(policyFile); err != nil {
		t.Fatal(err)
	}
	if err := e.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ok, body := decide(); !ok {
		t.Fatalf("list still refused after the rule was removed: %s", body)
	}
}

func envoyAddr(ip string) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}
}
