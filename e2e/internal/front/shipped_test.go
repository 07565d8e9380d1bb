package front

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/e2e/internal/authzstub"
)

func TestShipped(t *testing.T) {
	pp := []string{ProxyProtocolNamespace}
	routes := []Route{{Path: "/healthstatus", Timeout: 5 * time.Second}, {Prefix: "/", Timeout: time.Minute}}
	for _, tc := range []struct {
		file string
		want Options
	}{
		{EnvoyL4, Options{
			EnvoyConfig: EnvoyL4, ProxyProtocol: true, TLVKeys: map[byte]string{TLVAWS: KeyAWS, TLVAzure: KeyAzure},
			XFFTrustedHops: 0, Timeout: 500 * time.Millisecond, StatusOnError: 503, ValidateMutations: true,
			MetadataNamespaces: pp, TypedMetadataNamespaces: pp, Routes: routes,
		}},
		{EnvoyL7, Options{
			EnvoyConfig: EnvoyL7, XFFTrustedHops: 1, Timeout: 500 * time.Millisecond, StatusOnError: 503, ValidateMutations: true,
			MetadataNamespaces: []string{}, TypedMetadataNamespaces: []string{}, Routes: routes,
		}},
		{EnvoyMultiVault, Options{
			EnvoyConfig: EnvoyMultiVault, ProxyProtocol: true, TLVKeys: map[byte]string{TLVAWS: KeyAWS, TLVAzure: KeyAzure},
			XFFTrustedHops: 0, Timeout: 500 * time.Millisecond, StatusOnError: 503, ValidateMutations: true,
			MetadataNamespaces: pp, TypedMetadataNamespaces: pp, Routes: routes,
			VirtualHosts: []VirtualHost{
				{Name: "contoso-vault", Domains: []string{"contoso-vault.vault.azure.net", "contoso-vault.vault.azure.net:8443"},
					ContextExtensions: map[string]string{"vault": "contoso-vault"}},
				{Name: "fabrikam-vault", Domains: []string{"fabrikam-vault.vault.azure.net", "fabrikam-vault.vault.azure.net:8443"},
					ContextExtensions: map[string]string{"vault": "fabrikam-vault"}},
			},
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := Shipped(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Shipped(%s) =\n%+v\nwant\n%+v", tc.file, got, tc.want)
			}
		})
	}
	if _, err := Shipped("missing.yaml"); err == nil {
		t.Error("Shipped of a missing file: no error")
	}
}

// renderKit is what a rendering needs: the test's certificates and the
// options a scenario would pass.
type renderKit struct {
	opts       Options
	serverCert tls.Certificate
}

func newRenderKit(t *testing.T, file string) renderKit {
	t.Helper()
	ca := authztest.NewTestCAWith(t, authztest.TestCAOptions{CommonName: "front CA"})
	clientCA := authztest.NewTestCAWith(t, authztest.TestCAOptions{CommonName: "client CA"})
	authzCA := authztest.NewTestCAWith(t, authztest.TestCAOptions{CommonName: "authz CA"})
	o, err := Shipped(file)
	if err != nil {
		t.Fatal(err)
	}
	k := renderKit{serverCert: ca.IssueServer("*.vault.azure.net").TLS()}
	o.ServerCert = &k.serverCert
	o.ClientCAs, o.ClientCAPEM = clientCA.Pool(), []byte(clientCA.PEM())
	o.AuthzAddr = "127.0.0.1:41111"
	o.AuthzTLS = &AuthzTLS{ServerName: "vaultwall.test", CAPEM: []byte(authzCA.PEM()), Certificate: authzCA.Issue(authztest.CertOptions{DNSNames: []string{"front"}}).TLS()}
	o.Upstream = &url.URL{Scheme: "https", Host: "127.0.0.1:42222"}
	o.UpstreamCAs, o.UpstreamCAPEM = ca.Pool(), []byte(ca.PEM())
	o.Domains = []string{"contoso.vault.azure.net"}
	k.opts = o
	return k
}

// TestRenderEnvoy renders each shipped file and reads the result back: the
// environment is the test's, every file it names exists, and the behaviour
// knobs are still the shipped file's.
func TestRenderEnvoy(t *testing.T) {
	for _, file := range []string{EnvoyL4, EnvoyL7} {
		t.Run(file, func(t *testing.T) {
			k := newRenderKit(t, file)
			dir := t.TempDir()
			path, err := RenderEnvoy(t, k.opts, dir)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(data), "/etc/envoy") {
				t.Error("rendered config still names /etc/envoy")
			}
			for _, m := range regexp.MustCompile(`"filename":\s*"([^"]+)"`).FindAllStringSubmatch(string(data), -1) {
				if filepath.Dir(m[1]) != dir {
					t.Errorf("file %s outside the test's directory", m[1])
				} else if _, err := os.Stat(m[1]); err != nil {
					t.Errorf("rendered config names a missing file: %v", err)
				}
			}

			b := &bootstrapv3.Bootstrap{}
			if err := (protojson.UnmarshalOptions{Resolver: protoregistry.GlobalTypes}).Unmarshal(data, b); err != nil {
				t.Fatalf("rendered config does not read back: %v", err)
			}
			if err := b.ValidateAll(); err != nil {
				t.Fatal(err)
			}
			p, err := openFront(b)
			if err != nil {
				t.Fatal(err)
			}
			p.name, p.path = file, file
			shipped, _ := Shipped(file)
			if got, err := p.options(); err != nil || !reflect.DeepEqual(got, shipped) {
				t.Errorf("behaviour changed by rendering:\n%+v\nwant\n%+v (%v)", got, shipped, err)
			}

			if a := b.GetAdmin().GetAddress().GetSocketAddress(); a.GetAddress() != "127.0.0.1" || a.GetPortValue() != 0 {
				t.Errorf("admin at %v", a)
			}
			if a := p.listener.GetAddress().GetSocketAddress(); a.GetAddress() != "127.0.0.1" || a.GetPortValue() != 0 {
				t.Errorf("listener at %v", a)
			}
			for _, vh := range p.hcm.GetRouteConfig().GetVirtualHosts() {
				if !reflect.DeepEqual(vh.GetDomains(), []string{"contoso.vault.azure.net"}) {
					t.Errorf("domains %v", vh.GetDomains())
				}
			}
			if got := firstEndpoint(p.authzCluster); got != "127.0.0.1:41111" {
				t.Errorf("authz cluster endpoint %s", got)
			}
			if got := firstEndpoint(p.vaultCluster); got != "127.0.0.1:42222" {
				t.Errorf("vault cluster endpoint %s", got)
			}
			u := &tlsv3.UpstreamTlsContext{}
			if err := p.authzCluster.GetTransportSocket().GetTypedConfig().UnmarshalTo(u); err != nil {
				t.Fatal(err)
			}
			if u.GetSni() != "vaultwall.test" {
				t.Errorf("authz sni %q", u.GetSni())
			}
			sans := u.GetCommonTlsContext().GetValidationContext().GetMatchTypedSubjectAltNames()
			if len(sans) != 1 || sans[0].GetMatcher().GetExact() != "vaultwall.test" {
				t.Errorf("authz SAN match %v", sans)
			}
			v := &tlsv3.UpstreamTlsContext{}
			if err := p.vaultCluster.GetTransportSocket().GetTypedConfig().UnmarshalTo(v); err != nil {
				t.Fatal(err)
			}
			if v.GetSni() != "vault.internal" {
				t.Errorf("vault sni %q, want the shipped vault.internal", v.GetSni())
			}
			if got, _ := os.ReadFile(p.tls.GetCommonTlsContext().GetValidationContext().GetTrustedCa().GetFilename()); string(got) != string(k.opts.ClientCAPEM) {
				t.Error("listener's trusted_ca is not the client CA")
			}
		})
	}
}

// TestRenderEnvoyMultiVault: a file with several virtual hosts keeps each
// one's domains and vault pin through rendering, refuses Domains and
// options whose pins differ from the file's; the stand-in sends each host
// its virtual host's pin, and other hosts ContextExtensions.
func TestRenderEnvoyMultiVault(t *testing.T) {
	k := newRenderKit(t, EnvoyMultiVault)
	k.opts.Domains = nil
	path, err := RenderEnvoy(t, k.opts, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := (protojson.UnmarshalOptions{Resolver: protoregistry.GlobalTypes}).Unmarshal(data, b); err != nil {
		t.Fatal(err)
	}
	p, err := openFront(b)
	if err != nil {
		t.Fatal(err)
	}
	p.name, p.path = EnvoyMultiVault, EnvoyMultiVault
	shipped, _ := Shipped(EnvoyMultiVault)
	if got, err := p.options(); err != nil || !reflect.DeepEqual(got, shipped) {
		t.Errorf("behaviour changed by rendering:\n%+v\nwant\n%+v (%v)", got, shipped, err)
	}

	k.opts.Domains = []string{"contoso-vault.vault.azure.net"}
	if _, err := RenderEnvoy(t, k.opts, t.TempDir()); err == nil || !strings.Contains(err.Error(), "Domains must be empty") {
		t.Errorf("Domains with several virtual hosts: err = %v", err)
	}
	k.opts.Domains = nil
	k.opts.VirtualHosts = append([]VirtualHost(nil), k.opts.VirtualHosts...)
	k.opts.VirtualHosts[0].ContextExtensions = map[string]string{"vault": "fabrikam-vault"}
	if _, err := RenderEnvoy(t, k.opts, t.TempDir()); err == nil || !strings.Contains(err.Error(), "virtual hosts: options say") {
		t.Errorf("a pin the file does not have: err = %v", err)
	}

	for host, want := range map[string]string{
		"contoso-vault.vault.azure.net":       "contoso-vault",
		"FABRIKAM-vault.vault.azure.net":      "fabrikam-vault",
		"fabrikam-vault.vault.azure.net:8443": "fabrikam-vault",
		"unknown.vault.azure.net":             "",
	} {
		if got := shipped.contextExtensions(host)["vault"]; got != want {
			t.Errorf("stand-in pin for %s: %q, want %q", host, got, want)
		}
	}
	shipped.ContextExtensions = map[string]string{"vault": "x"}
	if got := shipped.contextExtensions("unknown.vault.azure.net")["vault"]; got != "x" {
		t.Errorf("a host no virtual host lists: pin %q, want ContextExtensions'", got)
	}
}

func TestRenderEnvoyRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tweak func(*Options)
		want  string
	}{
		{"a knob the file does not have", func(o *Options) { o.XFFTrustedHops = 2 }, "xff_num_trusted_hops: options say 2, the file 0"},
		{"a stand-in default against the file's", func(o *Options) { o.Timeout = 0; o.StatusOnError = 0 }, "ext_authz timeout: options say 200ms, the file 500ms"},
		{"PROXY protocol off for envoy.yaml", func(o *Options) { o.ProxyProtocol = false }, "proxy protocol: options say false"},
		{"no client CA file", func(o *Options) { o.ClientCAPEM = nil }, "set ClientCAs and ClientCAPEM"},
		{"no upstream CA file", func(o *Options) { o.UpstreamCAPEM = nil }, "needs UpstreamCAPEM"},
		{"no server certificate", func(o *Options) { o.ServerCert = nil }, "ServerCert is required"},
		{"authz by name", func(o *Options) { o.AuthzAddr = "vaultwall.internal:9191" }, "address \"vaultwall.internal:9191\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newRenderKit(t, EnvoyL4)
			tc.tweak(&k.opts)
			_, err := RenderEnvoy(t, k.opts, t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRenderEnvoyPlaintext(t *testing.T) {
	k := newRenderKit(t, EnvoyL7)
	k.opts.AuthzTLS = nil
	k.opts.Upstream.Scheme = "http"
	dir := t.TempDir()
	path, err := RenderEnvoy(t, k.opts, dir)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	b := &bootstrapv3.Bootstrap{}
	if err := (protojson.UnmarshalOptions{Resolver: protoregistry.GlobalTypes}).Unmarshal(data, b); err != nil {
		t.Fatal(err)
	}
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetTransportSocket() != nil {
			t.Errorf("cluster %s still speaks TLS", c.GetName())
		}
	}
}

// TestStandInAuthzTLS: with AuthzTLS the stand-in reaches an mTLS
// authorizer; with the wrong server name it cannot, and status_on_error
// answers.
func TestStandInAuthzTLS(t *testing.T) {
	authzCA := authztest.NewTestCAWith(t, authztest.TestCAOptions{CommonName: "authz CA"})
	frontCA := authztest.NewTestCAWith(t, authztest.TestCAOptions{CommonName: "front client CA"})
	srvCert := authzCA.IssueServer("vaultwall.test").TLS()
	stub := authzstub.StartTLS(t, allowAll, &tls.Config{
		Certificates: []tls.Certificate{srvCert},
		ClientCAs:    frontCA.Pool(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	})
	for _, tc := range []struct {
		name       string
		serverName string
		want       int
	}{
		{"right name", "vaultwall.test", 200},
		{"wrong name", "elsewhere.test", 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, allowAll, func(o *Options) {
				o.AuthzAddr = stub.Addr()
				o.StatusOnError = 503
				o.AuthzTLS = &AuthzTLS{ServerName: tc.serverName, CAPEM: []byte(authzCA.PEM()), Certificate: frontCA.Issue(authztest.CertOptions{DNSNames: []string{"front"}}).TLS()}
			})
			hc := r.client(t, Client{ServerName: vaultHost})
			resp, _ := do(t, hc, "GET", "https://"+vaultHost+"/secrets/s1?api-version=7.5", nil)
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

// TestEnvoyFront starts a real Envoy from each shipped file between a stub
// authorizer and a recording upstream. It needs an Envoy binary (ENVOY_BIN
// or envoy on PATH): skipped without one, failed without one when
// E2E_FRONT=envoy (as in make test and CI).
func TestEnvoyFront(t *testing.T) {
	bin := RealEnvoy(t)
	for _, file := range []string{EnvoyL4, EnvoyL7} {
		t.Run(file, func(t *testing.T) {
			ca := authztest.NewTestCAWith(t, authztest.TestCAOptions{CommonName: "front CA"})
			clientCA := authztest.NewTestCAWith(t, authztest.TestCAOptions{CommonName: "client CA"})
			stub := authzstub.Start(t, func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
				return authzstub.Allow(authzstub.Overwrite("x-vaultwall-caller-oid", "o1")), nil
			})
			rec := &recorder{}
			up := httptest.NewUnstartedServer(rec)
			upCert := ca.IssueServer("vault.internal").TLS()
			up.TLS = &tls.Config{Certificates: []tls.Certificate{upCert}}
			up.EnableHTTP2 = true
			up.StartTLS()
			t.Cleanup(up.Close)
			upURL, _ := url.Parse(up.URL)

			o, err := Shipped(file)
			if err != nil {
				t.Fatal(err)
			}
			serverCert := ca.IssueServer("*.vault.azure.net").TLS()
			o.ServerCert, o.ClientCAs, o.ClientCAPEM = &serverCert, clientCA.Pool(), []byte(clientCA.PEM())
			o.AuthzAddr, o.Upstream, o.UpstreamCAs, o.UpstreamCAPEM = stub.Addr(), upURL, ca.Pool(), []byte(ca.PEM())
			e := StartEnvoy(t, bin, o)
			c := Client{RootCAs: ca.Pool()}
			if o.ProxyProtocol {
				c.Proxy = &ProxyHeader{Source: mustAddrPort("203.0.113.10:50000")}
			}
			hc := c.HTTPClient(t, e.Addr())
			resp, _ := do(t, hc, "GET", "https://"+vaultHost+"/secrets/s1?api-version=7.5", nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			var got []string
			for _, r := range rec.requests() {
				if r.URL.Path == "/secrets/s1" {
					got = append(got, r.Header.Get("X-Vaultwall-Caller-Oid"))
				}
			}
			if len(got) != 1 || got[0] != "o1" {
				t.Errorf("upstream saw %v", got)
			}
		})
	}
}

func firstEndpoint(c *clusterv3.Cluster) string {
	sa := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	return netip.AddrPortFrom(netip.MustParseAddr(sa.GetAddress()), uint16(sa.GetPortValue())).String()
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// TestParseListeners reads the admin interface's answer in both JSON
// spellings Envoy versions have used.
func TestParseListeners(t *testing.T) {
	for _, body := range []string{
		`{"listener_statuses":[{"name":"vault_https","local_address":{"socket_address":{"address":"127.0.0.1","port_value":41234}}}]}`,
		`{"listenerStatuses":[{"name":"vault_https","localAddress":{"socketAddress":{"address":"127.0.0.1","portValue":41234}}}]}`,
	} {
		got, err := parseListeners([]byte(body))
		if err != nil || got.String() != "127.0.0.1:41234" {
			t.Errorf("parseListeners(%s) = %v, %v", body, got, err)
		}
	}
	for _, body := range []string{`{}`, `{"listener_statuses":[{"name":"x","local_address":{"socket_address":{"address":"127.0.0.1","port_value":0}}}]}`, `not json`} {
		if _, err := parseListeners([]byte(body)); err == nil {
			t.Errorf("parseListeners(%s): no error", body)
		}
	}
}

// TestStartEnvoyProcess runs StartEnvoy's process handling — the rendered
// bootstrap handed over with -c, the admin address file, /ready, the
// listener's port read back, SIGTERM at the end — against fakeenvoy, which
// plays Envoy's side of that contract and proxies nothing.
func TestStartEnvoyProcess(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "fakeenvoy")
	build := exec.Command("go", "build", "-o", bin, "./testdata/fakeenvoy")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building fakeenvoy: %v\n%s", err, out)
	}
	k := newRenderKit(t, EnvoyL4)
	var e *Envoy
	t.Run("start", func(t *testing.T) { e = StartEnvoy(t, bin, k.opts) })
	if e == nil {
		t.FailNow()
	}
	if e.Name() != "envoy ("+bin+", fake/0.0.0/Clean/RELEASE/BoringSSL)" {
		t.Errorf("name %q", e.Name())
	}
	// The subtest's cleanup stopped the process: its listener is gone.
	if c, err := net.DialTimeout("tcp", e.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Errorf("fakeenvoy still listening on %s after the test ended", e.Addr())
	}
}

func TestWaitEnvoyExited(t *testing.T) {
	exited := make(chan struct{})
	close(exited)
	_, err := waitEnvoy(t.Context(), filepath.Join(t.TempDir(), "never-written"), exited, func() error { return errors.New("exit status 1") })
	if err == nil || err.Error() != "envoy exited before it was ready: exit status 1" {
		t.Errorf("waitEnvoy = %v", err)
	}
}
