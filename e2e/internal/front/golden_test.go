package front

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/e2e/internal/authzstub"
)

var update = flag.Bool("update", false, "rewrite testdata/checkrequests/*.json from what a real Envoy sends (needs ENVOY_BIN or envoy on PATH)")

// The CheckRequest goldens: what a real Envoy (envoy.yaml, rendered for the
// test) sends the authorizer in each scenario below, recorded by a stub
// ext_authz server and normalised (normalise). TestEnvoyCheckRequestGoldens
// checks them against the real Envoy of the run (and rewrites them with
// -update); TestStandInCheckRequestGoldens checks the stand-in against them
// on every machine, so the stand-in stays what Envoy does.
const goldenDir = "testdata/checkrequests"

// goldenScenario is one client request through a front.
type goldenScenario struct {
	name   string
	client func(k *goldenKit) Client
	method string
	path   string
	header http.Header
	body   string
}

// The scenarios through envoy.yaml (PROXY v2 fixes both addresses): each
// shape of request vaultwall decides on.
var goldenScenarios = []goldenScenario{
	{
		name:   "h2-get-bearer",
		client: func(k *goldenKit) Client { return k.clientFrom("203.0.113.10:50000", "192.0.2.1:8443") },
		method: "GET", path: "/secrets/db-password?api-version=7.5",
		header: http.Header{
			"Authorization":          {"Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"},
			"X-Ms-Client-Request-Id": {"11111111-2222-3333-4444-555555555555"},
			"User-Agent":             {"azsdk-go-azsecrets/v1.4.0 (go1.26; linux)"},
			// What a hostile client forges: none may be believed.
			"X-Forwarded-For":          {"198.51.100.7"},
			"X-Envoy-External-Address": {"198.51.100.7"},
			"X-Vaultwall-Caller-Oid":   {"forged"},
			"X-Request-Id":             {"client-chosen"},
		},
	},
	{
		name: "http1-post-duplicates",
		client: func(k *goldenKit) Client {
			c := k.clientFrom("203.0.113.10:50000", "192.0.2.1:8443")
			c.HTTP1 = true
			return c
		},
		method: "POST", path: "/keys/kek//wrapkey?api-version=7.5",
		header: http.Header{
			"Authorization": {"Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"},
			"Content-Type":  {"application/json"},
			"X-Http-Method": {"DELETE"},
			"Accept":        {"application/json", "text/plain"},
			"X-Vaultwall-X": {"one", "two"},
		},
		body: `{"alg":"RSA-OAEP-256","value":"ZGF0YQ"}`,
	},
	{
		name: "client-certificate",
		client: func(k *goldenKit) Client {
			c := k.clientFrom("192.0.2.44:50000", "192.0.2.1:8443")
			c.Certificate = &k.clientCert
			return c
		},
		method: "GET", path: "/secrets/db-password?api-version=7.5",
		header: http.Header{"Authorization": {"Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}},
	},
	{
		name: "private-link-tlvs",
		client: func(k *goldenKit) Client {
			c := k.clientFrom("10.20.0.5:50000", "10.20.0.1:8443")
			// 0xEE's LINKID has bytes that are not UTF-8 (0x80, 0xff).
			c.Proxy.TLVs = append(c.Proxy.TLVs, AzureLinkID(0xff80_0102), AWSVPCE("vpce-0123456789abcdef0"))
			return c
		},
		method: "GET", path: "/secrets?api-version=7.5&maxresults=2",
		header: http.Header{"Authorization": {"Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}},
	},
	{
		name:   "ipv6-no-token",
		client: func(k *goldenKit) Client { return k.clientFrom("[2001:db8:1::10]:50000", "[2001:db8::1]:8443") },
		method: "PUT", path: "/secrets/new?api-version=7.5",
		header: http.Header{"Content-Type": {"application/json"}},
		body:   `{"value":"s3cret"}`,
	},
	{
		name:   "non-utf8-header",
		client: func(k *goldenKit) Client { return k.clientFrom("203.0.113.10:50000", "192.0.2.1:8443") },
		method: "GET", path: "/secrets/caf%C3%A9?api-version=7.5",
		header: http.Header{
			"Authorization": {"Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"},
			"X-Ms-Note":     {"caf\xe9 \xff"},
		},
	},
}

// The scenarios through envoy-behind-l7.yaml: the test's "load balancer"
// connects from this host's non-loopback address (HostAddress) and appends
// the client it saw to X-Forwarded-For, which Envoy trusts one hop of.
var goldenL7Scenarios = []goldenScenario{
	{
		name:   "l7-h2-xff",
		client: func(k *goldenKit) Client { return k.l7Client(false) },
		method: "GET", path: "/secrets/db-password?api-version=7.5",
		header: http.Header{
			"Authorization":   {"Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"},
			"X-Forwarded-For": {"198.51.100.7, 203.0.113.10"}, // client-written, then the load balancer's entry
			"X-Real-Ip":       {"198.51.100.7"},
		},
	},
	{
		name:   "l7-http1-no-xff",
		client: func(k *goldenKit) Client { return k.l7Client(true) },
		method: "GET", path: "/healthstatus",
	},
}

// goldenKit is one front (real Envoy or stand-in, from envoy.yaml) between
// a recording stub authorizer and an upstream, with a fixed client
// certificate per run.
type goldenKit struct {
	ca         *authztest.TestCA
	clientCert tls.Certificate
	stub       *authzstub.Server
	front      Front
	host       netip.Addr // this host's non-loopback IPv4 address, for the L7 scenarios
}

func newGoldenKit(t *testing.T, file string, start func(Options) Front) *goldenKit {
	t.Helper()
	k := &goldenKit{ca: authztest.NewTestCAWith(t, authztest.TestCAOptions{CommonName: "front CA"}), host: HostAddress(netip.MustParseAddr("192.0.2.1"))}
	clientCA := authztest.NewTestCAWith(t, authztest.TestCAOptions{CommonName: "client CA"})
	k.clientCert = clientCA.Issue(authztest.CertOptions{URIs: []string{"spiffe://trusted.example/azure-backup"}, Subject: subject("backup")}).TLS()
	k.stub = authzstub.Start(t, func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return authzstub.Allow(authzstub.Overwrite("x-vaultwall-caller-oid", "o1")), nil
	})
	up := httptest.NewUnstartedServer(&recorder{})
	upCert := k.ca.IssueServer("vault.internal").TLS()
	up.TLS = &tls.Config{Certificates: []tls.Certificate{upCert}}
	up.EnableHTTP2 = true
	up.StartTLS()
	t.Cleanup(up.Close)
	upURL, _ := url.Parse(up.URL)

	o, err := Shipped(file)
	if err != nil {
		t.Fatal(err)
	}
	serverCert := k.ca.IssueServer(vaultHost).TLS()
	o.ServerCert, o.ClientCAs, o.ClientCAPEM = &serverCert, clientCA.Pool(), []byte(clientCA.PEM())
	o.AuthzAddr, o.Upstream, o.UpstreamCAs, o.UpstreamCAPEM = k.stub.Addr(), upURL, k.ca.Pool(), []byte(k.ca.PEM())
	o.Domains = []string{vaultHost}
	k.front = start(o)
	return k
}

func (k *goldenKit) l7Client(http1 bool) Client {
	return Client{RootCAs: k.ca.Pool(), LocalAddr: k.host, HTTP1: http1}
}

func (k *goldenKit) clientFrom(src, dst string) Client {
	return Client{RootCAs: k.ca.Pool(), Proxy: &ProxyHeader{Source: netip.MustParseAddrPort(src), Destination: netip.MustParseAddrPort(dst)}}
}

// run sends the scenario's request and returns the CheckRequest the
// authorizer got for it, normalised, as indented JSON.
func (k *goldenKit) run(t *testing.T, sc goldenScenario) []byte {
	t.Helper()
	before := len(k.stub.Requests())
	c := sc.client(k)
	hc := c.HTTPClient(t, k.front.Addr())
	req, err := http.NewRequestWithContext(t.Context(), sc.method, "https://"+vaultHost+sc.path, strings.NewReader(sc.body))
	if err != nil {
		t.Fatal(err)
	}
	if sc.body == "" {
		req.Body, req.ContentLength = nil, 0
	}
	for h, vs := range sc.header {
		req.Header[h] = vs
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", sc.name, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: status %d, want the stub's allow", sc.name, resp.StatusCode)
	}
	reqs := k.stub.Requests()
	if len(reqs) != before+1 {
		t.Fatalf("%s: %d checks, want 1", sc.name, len(reqs)-before)
	}
	var certPEM string
	if c.Certificate != nil {
		certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate.Certificate[0]}))
	}
	var host netip.Addr
	if c.Proxy == nil {
		host = k.host
	}
	out, err := normalise(reqs[before], certPEM, host)
	if err != nil {
		t.Fatalf("%s: %v", sc.name, err)
	}
	return out
}

// Placeholders for what varies from run to run.
const (
	phID     = "<stream id: decimal>"
	phTime   = "<request time>"
	phUUID   = "<uuid>"
	phCert   = "<the client's leaf certificate, PEM, URL-encoded>"
	phNotPEM = "<NOT the client's certificate>"
	phHost   = "<this host's address>"
	phPort   = "<port>"
)

// normalise is a CheckRequest as indented JSON with sorted keys, with what
// varies between runs replaced by placeholders: the stream id (checked to
// be decimal), the request time, x-request-id (checked to be a UUID) and the
// client certificate (checked to decode to certPEM, the PEM of the leaf the
// client presented). Without a PROXY header (host valid: the L7
// scenarios), this host's address becomes a placeholder wherever it occurs,
// and so do the source's and destination's ports (ephemeral, and the
// listener's). Everything else — addresses and ports the PROXY header
// fixes, headers, metadata — is kept.
func normalise(cr *authv3.CheckRequest, certPEM string, host netip.Addr) ([]byte, error) {
	j, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(cr)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(j, &doc); err != nil {
		return nil, err
	}
	attrs, _ := doc["attributes"].(map[string]any)
	request, _ := attrs["request"].(map[string]any)
	if _, ok := request["time"]; ok {
		request["time"] = phTime
	}
	httpReq, _ := request["http"].(map[string]any)
	if id, ok := httpReq["id"].(string); ok {
		if strings.Trim(id, "0123456789") != "" {
			return nil, fmt.Errorf("http.id %q is not decimal", id)
		}
		httpReq["id"] = phID
	}
	if h, ok := httpReq["headers"].(map[string]any); ok {
		if v, ok := h["x-request-id"].(string); ok {
			h["x-request-id"] = uuidOr(v)
		}
	}
	if hm, ok := httpReq["header_map"].(map[string]any); ok {
		list, _ := hm["headers"].([]any)
		for _, e := range list {
			m, _ := e.(map[string]any)
			if m["key"] == "x-request-id" {
				for _, f := range []string{"value", "raw_value"} {
					if v, ok := m[f].(string); ok {
						m[f] = uuidOr(decodeMaybe(f, v))
					}
				}
			}
		}
	}
	if src, ok := attrs["source"].(map[string]any); ok {
		if v, ok := src["certificate"].(string); ok {
			if dec, err := url.PathUnescape(v); err == nil && certPEM != "" && dec == certPEM {
				src["certificate"] = phCert
			} else {
				src["certificate"] = phNotPEM
			}
		}
	}
	if host.IsValid() {
		for _, peer := range []string{"source", "destination"} {
			p, _ := attrs[peer].(map[string]any)
			a, _ := p["address"].(map[string]any)
			if sa, ok := a["socket_address"].(map[string]any); ok {
				sa["port_value"] = phPort
			}
		}
		replaceStrings(doc, host.String(), phHost)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// replaceStrings replaces old with new in every string value of v.
func replaceStrings(v any, old, new string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok {
				x[k] = strings.ReplaceAll(s, old, new)
			} else {
				replaceStrings(e, old, new)
			}
		}
	case []any:
		for i, e := range x {
			if s, ok := e.(string); ok {
				x[i] = strings.ReplaceAll(s, old, new)
			} else {
				replaceStrings(e, old, new)
			}
		}
	}
}

// decodeMaybe decodes a raw_value (base64 in JSON) for the UUID check.
func decodeMaybe(field, v string) string {
	if field != "raw_value" {
		return v
	}
	var b []byte
	if err := json.Unmarshal([]byte(`"`+v+`"`), &b); err != nil {
		return v
	}
	return string(b)
}

func uuidOr(v string) string {
	if len(v) == 36 && strings.Count(v, "-") == 4 && strings.Trim(strings.ReplaceAll(v, "-", ""), "0123456789abcdef") == "" {
		return phUUID
	}
	return v
}

// flatten lists a JSON document as sorted "path = value" lines, so two
// documents differ line by line at the fields that differ.
func flatten(doc []byte) ([]string, error) {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, err
	}
	var out []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 0 {
				out = append(out, path+" = {}")
			}
			for k, e := range x {
				walk(path+"."+k, e)
			}
		case []any:
			if len(x) == 0 {
				out = append(out, path+" = []")
			}
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		default:
			b, _ := json.Marshal(x)
			out = append(out, path+" = "+string(b))
		}
	}
	walk("", v)
	sort.Strings(out)
	return out, nil
}

// goldenDiff says how got differs from want, field by field ("" when it
// does not).
func goldenDiff(got, want []byte) (string, error) {
	g, err := flatten(got)
	if err != nil {
		return "", err
	}
	w, err := flatten(want)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(g, l) {
			fmt.Fprintf(&b, "  - %s\n", l)
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			fmt.Fprintf(&b, "  + %s\n", l)
		}
	}
	return b.String(), nil
}

// goldenSets: envoy.yaml as shipped (headers in http.headers), with
// encode_raw_headers on (http.header_map), and envoy-behind-l7.yaml.
var goldenSets = []struct {
	dir       string
	file      func(t *testing.T) string
	scenarios []goldenScenario
}{
	{goldenDir, func(*testing.T) string { return EnvoyL4 }, goldenScenarios},
	{filepath.Join(goldenDir, "encode_raw_headers"), func(t *testing.T) string { return Variant(t, EnvoyL4, WithEncodeRawHeaders...) }, goldenScenarios},
	{filepath.Join(goldenDir, "behind-l7"), func(*testing.T) string { return EnvoyL7 }, goldenL7Scenarios},
}

// checkGoldens runs every scenario through the fronts start makes, for
// each golden set, and compares each CheckRequest with its golden (- real
// Envoy, + this front), or writes it. header_map is compared folded
// (foldHeaderMap): its entries come in wire order, and Go's HTTP clients
// write header fields in map order, different on every run; which
// repeated fields Envoy's codec already joined into one entry (accept,
// but not x-vaultwall-x) depends on the headers Envoy's build registers as
// inline. vaultwall reads neither.
func checkGoldens(t *testing.T, start func(*testing.T, Options) Front, write bool) {
	for _, set := range goldenSets {
		t.Run(filepath.Base(set.dir), func(t *testing.T) {
			k := newGoldenKit(t, set.file(t), func(o Options) Front { return start(t, o) })
			if set.scenarios[0].client(k).Proxy == nil && !k.host.IsValid() {
				t.Skip("this host has no non-loopback IPv4 address to play the L7 load balancer from")
			}
			for _, sc := range set.scenarios {
				t.Run(sc.name, func(t *testing.T) {
					path := filepath.Join(set.dir, sc.name+".json")
					got := k.run(t, sc)
					if write {
						if err := os.MkdirAll(set.dir, 0o755); err != nil {
							t.Fatal(err)
						}
						if err := os.WriteFile(path, got, 0o644); err != nil {
							t.Fatal(err)
						}
						return
					}
					want, err := os.ReadFile(path)
					if err != nil {
						t.Fatalf("%v (go test -run TestEnvoyCheckRequestGoldens ./e2e/internal/front/ -args -update, with a real Envoy, writes it)", err)
					}
					if got, err = foldHeaderMap(got); err == nil {
						want, err = foldHeaderMap(want)
					}
					if err != nil {
						t.Fatal(err)
					}
					diff, err := goldenDiff(got, want)
					if err != nil {
						t.Fatal(err)
					}
					if diff != "" {
						t.Errorf("%s: the CheckRequest differs from %s (- real Envoy, + %s):\n%s", sc.name, path, k.front.Name(), diff)
					}
				})
			}
		})
	}
}

// TestEnvoyCheckRequestGoldens: the committed goldens are what the real
// Envoy of this run sends (-update rewrites them from it). Skipped without
// an Envoy binary, failed without one under E2E_FRONT=envoy.
func TestEnvoyCheckRequestGoldens(t *testing.T) {
	bin := RealEnvoy(t)
	checkGoldens(t, func(t *testing.T, o Options) Front { return StartEnvoy(t, bin, o) }, *update)
}

// TestStandInCheckRequestGoldens: the stand-in sends the authorizer what
// the real Envoy sent in the same scenarios (the committed goldens). Runs
// on every machine.
func TestStandInCheckRequestGoldens(t *testing.T) {
	if *update {
		t.Skip("-update writes goldens from a real Envoy only")
	}
	checkGoldens(t, func(t *testing.T, o Options) Front { return StartStandIn(t, o) }, false)
}

// foldHeaderMap replaces a CheckRequest's http.header_map with what
// vaultwall reads from it (envoy.RequestFrom): one value per name, the
// entries of one name joined with "," in order — as "header_map (folded)",
// name → raw bytes (base64, as protojson writes bytes).
func foldHeaderMap(doc []byte) ([]byte, error) {
	var d map[string]any
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, err
	}
	attrs, _ := d["attributes"].(map[string]any)
	req, _ := attrs["request"].(map[string]any)
	httpReq, _ := req["http"].(map[string]any)
	hm, ok := httpReq["header_map"].(map[string]any)
	if !ok {
		return doc, nil
	}
	folded := map[string][]byte{}
	list, _ := hm["headers"].([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		k, _ := m["key"].(string)
		raw, _ := m["raw_value"].(string)
		var v []byte
		if raw == phUUID {
			v = []byte(phUUID)
		} else if err := json.Unmarshal([]byte(`"`+raw+`"`), &v); err != nil {
			return nil, fmt.Errorf("header_map %s: raw_value %q: %w", k, raw, err)
		}
		if prev, ok := folded[k]; ok {
			v = append(append(prev, ','), v...)
		}
		folded[k] = v
	}
	delete(httpReq, "header_map")
	httpReq["header_map (folded)"] = folded
	return json.Marshal(d)
}

func TestFoldHeaderMap(t *testing.T) {
	doc := []byte(`{"attributes":{"request":{"http":{"header_map":{"headers":[` +
		`{"key":"a","raw_value":"MQ=="},{"key":"b","raw_value":"/w=="},{"key":"a","raw_value":"Mg=="},{"key":"x-request-id","raw_value":"<uuid>"}]}}}}}`)
	got, err := foldHeaderMap(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"attributes":{"request":{"http":{"header_map (folded)":{"a":"MSwy","b":"/w==","x-request-id":"PHV1aWQ+"}}}}}`
	if string(got) != want {
		t.Errorf("folded:\n%s\nwant:\n%s", got, want)
	}
}

func TestGoldenDiff(t *testing.T) {
	a := []byte(`{"a":{"b":[1,2]},"c":"x"}`)
	b := []byte(`{"a":{"b":[1,3]},"c":"x","d":true,"e":{}}`)
	diff, err := goldenDiff(b, a)
	if err != nil {
		t.Fatal(err)
	}
	want := "  - .a.b[1] = 2\n  + .a.b[1] = 3\n  + .d = true\n  + .e = {}\n"
	if diff != want {
		t.Errorf("diff:\n%s\nwant:\n%s", diff, want)
	}
	if d, _ := goldenDiff(a, a); d != "" {
		t.Errorf("same documents differ: %s", d)
	}
}
