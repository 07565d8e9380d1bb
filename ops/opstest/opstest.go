package opstest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/authz/token"
	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/engine"
	"github.com/vaultwall/vaultwall/envoy"
)

// Now is the rig's clock: tokens, keys and decisions, so records are
// reproducible.
var Now = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// Subnet is the configured subnet: 10.1.2.0/24.
const Subnet = "/subscriptions/11111111-0000-0000-0000-000000000000/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/app/subnets/backend"

// Config is a vault whose one application may get and list secrets from
// 203.0.113.0/24 or the subnet, with a 5s policy budget; {{.Extra}} is
// appended (other sections).
const Config = `
vault: {name: contoso-vault, tenantId: {{.Tenant}}, location: westeurope, subscriptionId: 11111111-0000-0000-0000-000000000000, resourceGroup: kv-rg}
properties:
  networkAcls:
    defaultAction: Deny
    bypass: AzureServices
    ipRules: [{value: 203.0.113.0/24}]
    virtualNetworkRules: [{id: ` + Subnet + `}]
  accessPolicies:
    - {tenantId: {{.Tenant}}, objectId: {{.ObjectID}}, permissions: {secrets: [get, list]}}
network:
  subnets: [{id: ` + Subnet + `, addressPrefixes: [10.1.2.0/24]}]
identity:
  issuers: [{issuer: "{{.Issuer}}", discovery: true}]
server: {grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0"}
{{.Policy}}{{.Extra}}
`

// Rig is one test's vault.
type Rig struct {
	T      testing.TB
	Issuer *authztest.Issuer
	Dir    string
	Keys   *token.KeyStore
	// Builder builds with the rig's key store and clock.
	Builder *engine.Builder
}

// New starts an issuer and a key store on the rig's clock.
func New(t testing.TB) *Rig {
	is := authztest.NewIssuer(t)
	is.Now = func() time.Time { return Now }
	keys := token.NewKeyStore(token.StoreOptions{HTTPClient: is.HTTPClient(), Now: func() time.Time { return Now }})
	t.Cleanup(func() { keys.Close() })
	return &Rig{T: t, Issuer: is, Dir: t.TempDir(), Keys: keys,
		Builder: &engine.Builder{Keys: keys, Now: func() time.Time { return Now }}}
}

// StoreOptions are the key store options a Stack needs to reach the issuer.
func (r *Rig) StoreOptions() token.StoreOptions {
	return token.StoreOptions{HTTPClient: r.Issuer.HTTPClient(), Now: func() time.Time { return Now }}
}

// Render expands a configuration template ({{.Tenant}}, {{.Issuer}},
// {{.ObjectID}}, {{.Dir}}, {{.Extra}}).
func (r *Rig) Render(tmpl, extra string) string {
	r.T.Helper()
	t := template.Must(template.New("config").Parse(tmpl))
	// A generous policy budget unless extra sets its own policy section: the
	// default 250ms is not under test, and a cold evaluation on a busy,
	// race-instrumented 2-core machine can pass it and fail closed with a 500.
	policy := "policy: {timeout: 5s}\n"
	if strings.HasPrefix(extra, "policy:") || strings.Contains(extra, "\npolicy:") {
		policy = ""
	}
	var b bytes.Buffer
	err := t.Execute(&b, map[string]string{"Tenant": r.Issuer.Tenant(), "Issuer": r.Issuer.Issuer(),
		"ObjectID": authztest.DefaultObjectID, "Dir": r.Dir, "Policy": policy, "Extra": extra})
	if err != nil {
		r.T.Fatal(err)
	}
	return b.String()
}

// Write writes a file below the rig's directory and returns its path.
func (r *Rig) Write(name, data string) string {
	r.T.Helper()
	p := filepath.Join(r.Dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.T.Fatal(err)
	}
	// Atomically, as editors and ConfigMap updates land: a watcher never
	// reads a half-written file (which a test would then count as a
	// refused reload of its own).
	tmp := filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".partial")
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		r.T.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		r.T.Fatal(err)
	}
	return p
}

// WriteConfig writes Config plus extra as name.
func (r *Rig) WriteConfig(name, extra string) string {
	return r.Write(name, r.Render(Config, extra))
}

// Runtime loads and builds a configuration file, waiting for the keys.
func (r *Rig) Runtime(path string) *engine.Runtime {
	r.T.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		r.T.Fatal(err)
	}
	rt, err := r.Builder.Build(r.T.Context(), cfg)
	if err != nil {
		r.T.Fatal(cfg.Annotate(err))
	}
	rt.Config = cfg
	r.T.Cleanup(rt.Close)
	if err := rt.Authenticator.WaitReady(r.T.Context()); err != nil {
		r.T.Fatal(err)
	}
	return rt
}

// Server is an ext_authz server on the runtime's pipeline.
func (r *Rig) Server(rt *engine.Runtime, obs authz.Observer) *envoy.Server {
	s := envoy.NewServer(nil, obs)
	s.SetPipeline(rt.Pipeline)
	return s
}

// Token mints a valid token for the application of the access policy.
func (r *Rig) Token() string { return r.Issuer.MintValid() }

// TokenWith mints a token with claims changed.
func (r *Rig) TokenWith(change func(map[string]any)) string {
	c := r.Issuer.Claims()
	change(c)
	return r.Issuer.Mint(c)
}

var _ authz.Observer = (*Observer)(nil)

// Observer keeps every decision it sees (an authz.Observer).
type Observer struct {
	mu        sync.Mutex
	Decisions []*authz.Decision
}

func (o *Observer) Observe(d *authz.Decision, _ time.Duration) {
	o.mu.Lock()
	o.Decisions = append(o.Decisions, d)
	o.mu.Unlock()
}

// Last is the last decision seen.
func (o *Observer) Last() *authz.Decision {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.Decisions) == 0 {
		return nil
	}
	return o.Decisions[len(o.Decisions)-1]
}

// Check is a CheckRequest as Envoy sends it for method path from peer,
// with a bearer token unless tok is "", and extra headers.
func Check(tok, peer, method, path string, headers ...string) *authv3.CheckRequest {
	h := map[string]string{":path": path, ":method": method, ":authority": "contoso-vault.vault.azure.net", ":scheme": "https",
		"user-agent": "azsdk-go-azsecrets/v1.5.1 (go1.26; linux)", "x-ms-client-request-id": "6f1c3e52-0d8b-4e7e-9f0a-3c2d1b0a9e8f",
		"x-request-id": "f3a1b2c4-0000-4000-8000-000000000001", "cookie": "session=do-not-record", "x-vault-token": "hvs.do-not-record"}
	if tok != "" {
		h["authorization"] = "Bearer " + tok
	}
	for i := 0; i+1 < len(headers); i += 2 {
		h[headers[i]] = headers[i+1]
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: peer, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "8306787481883314548", Method: method, Path: path, Host: "contoso-vault.vault.azure.net", Scheme: "https",
			Protocol: "HTTP/2", Headers: h}},
	}}
}

// ExampleVaults is the shipped example of several vaults
// (examples/vaults/vaultwall.yaml, from a package two levels below the
// repository root), built and ready: both vaults' issuer keys are loaded.
// It returns the configuration's path, the Set and its Builder.
func ExampleVaults(t testing.TB) (string, *engine.Set, *engine.Builder) {
	t.Helper()
	const path = "../../examples/vaults/vaultwall.yaml"
	keys := token.NewKeyStore(token.StoreOptions{})
	t.Cleanup(func() { keys.Close() })
	b := &engine.Builder{Keys: keys}
	set, err := engine.CompileSet(t.Context(), path, b.Build, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	for _, rt := range set.Runtimes {
		if err := rt.Authenticator.WaitReady(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	return path, set, b
}
