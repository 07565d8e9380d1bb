package front

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlvv3 "github.com/envoyproxy/go-control-plane/envoy/data/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/uuid"
	proxyproto "github.com/pires/go-proxyproto"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/vaultwall/vaultwall/authz/authztest"
	"github.com/vaultwall/vaultwall/e2e/internal/authzstub"
)

func TestCheckRequestPeerIdentity(t *testing.T) {
	r := newRig(t, allowAll, nil)
	withCert := func(o authztest.CertOptions) *tls.Certificate { c := r.clientCA.Issue(o).TLS(); return &c }
	uriAndDNS := withCert(authztest.CertOptions{Subject: subject("svc-a"), DNSNames: []string{"svc-a.example"}, URIs: []string{"spiffe://trusted.example/azure-backup"}})
	dnsOnly := withCert(authztest.CertOptions{Subject: subject("svc-b"), DNSNames: []string{"svc-b.example", "other.example"}})
	subjectOnly := withCert(authztest.CertOptions{Subject: subject("svc-c", "Ops")})
	emailOnly := withCert(authztest.CertOptions{Subject: subject("svc-d"), Emails: []string{"d@example.com"}})

	for _, tc := range []struct {
		name      string
		cert      *tls.Certificate
		principal string
	}{
		{"no client certificate", nil, ""},
		{"URI and DNS SANs: URI wins", uriAndDNS, "spiffe://trusted.example/azure-backup"},
		{"DNS SANs only: the first", dnsOnly, "svc-b.example"},
		{"subject only: the full DN", subjectOnly, `CN=svc-c,OU=Ops,O=Acme\, Inc.`},
		{"email SAN ignored: the DN", emailOnly, `CN=svc-d,O=Acme\, Inc.`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := r.client(t, Client{ServerName: vaultHost, Certificate: tc.cert})
			resp, _ := do(t, hc, "GET", "https://"+vaultHost+"/secrets/s1?api-version=7.5", nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			src := r.lastCheck(t).Request.GetAttributes().GetSource()
			if src.GetPrincipal() != tc.principal {
				t.Errorf("principal %q, want %q", src.GetPrincipal(), tc.principal)
			}
			if tc.cert == nil {
				if src.GetCertificate() != "" {
					t.Errorf("certificate %q without a client certificate", src.GetCertificate())
				}
				return
			}
			enc := src.GetCertificate()
			if strings.ContainsAny(enc, "\n +/=") {
				t.Errorf("certificate not URL-encoded: %q", enc)
			}
			if !strings.HasPrefix(enc, "-----BEGIN%20CERTIFICATE-----%0A") || !strings.HasSuffix(enc, "-----END%20CERTIFICATE-----%0A") {
				t.Errorf("certificate framing: %q", enc)
			}
			dec, err := url.PathUnescape(enc)
			if err != nil {
				t.Fatal(err)
			}
			want := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tc.cert.Certificate[0]}))
			if dec != want {
				t.Errorf("decoded certificate is not the leaf's PEM:\n%s\nwant\n%s", dec, want)
			}
		})
	}
}

func TestCheckRequestHTTPAttributes(t *testing.T) {
	for _, proto := range []string{"HTTP/2", "HTTP/1.1"} {
		t.Run(proto, func(t *testing.T) {
			r := newRig(t, allowAll, func(o *Options) {
				o.LocalAddress = netip.MustParseAddr("192.0.2.10")
				o.ContextExtensions = map[string]string{"listener": "public"}
			})
			hc := r.client(t, Client{ServerName: vaultHost, HTTP1: proto == "HTTP/1.1"})
			path := "/keys/k1//wrapkey?api-version=2025-07-01&x=%2F"
			resp, body := do(t, hc, "POST", "https://"+vaultHost+path, http.Header{
				"X-Dup":                    {"a", "b"},
				"X-Forwarded-For":          {"198.51.100.1"},
				"X-Forwarded-Proto":        {"http"},
				"X-Request-Id":             {"forged-id"},
				"X-Envoy-Internal":         {"true"},
				"X-Envoy-External-Address": {"10.9.9.9"},
				"X-Forwarded-Client-Cert":  {"By=spiffe://forged"},
				"X-Envoy-Retry-On":         {"5xx"},
				"Keep-Alive":               {"timeout=5"},
				"Proxy-Connection":         {"keep-alive"},
				"Authorization":            {"Bearer t0ken"},
				"Referer":                  {"/not/absolute"},
			})
			if resp.StatusCode != 200 || body != "upstream says hi" {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			c := r.lastCheck(t)
			a := c.Request.GetAttributes()
			h := a.GetRequest().GetHttp()
			want := map[string]string{
				":authority":               vaultHost,
				":method":                  "POST",
				":path":                    path,
				":scheme":                  "https",
				"x-dup":                    "a,b",
				"x-forwarded-for":          "198.51.100.1,192.0.2.10", // loopback peer: Envoy appends its own address
				"x-forwarded-proto":        "https",
				"x-envoy-external-address": "127.0.0.1",
				"authorization":            "Bearer t0ken",
			}
			for k, v := range want {
				if h.GetHeaders()[k] != v {
					t.Errorf("headers[%q] = %q, want %q", k, h.GetHeaders()[k], v)
				}
			}
			for _, k := range []string{"host", "x-envoy-internal", "x-forwarded-client-cert", "x-envoy-retry-on", "keep-alive", "proxy-connection", "transfer-encoding", "connection", "referer"} {
				if hasHeader(h.GetHeaders(), k) {
					t.Errorf("headers has %q: %q", k, h.GetHeaders()[k])
				}
			}
			if rid := h.GetHeaders()["x-request-id"]; rid == "forged-id" || uuid.Validate(rid) != nil {
				t.Errorf("x-request-id %q: want a fresh UUID", rid)
			}
			for k, v := range h.GetHeaders() {
				if k != strings.ToLower(k) {
					t.Errorf("header key %q not lower-case (value %q)", k, v)
				}
			}
			if _, err := strconv.ParseUint(h.GetId(), 10, 64); err != nil || h.GetId() == h.GetHeaders()["x-request-id"] {
				t.Errorf("id %q: want a decimal uint64 stream id", h.GetId())
			}
			if h.GetMethod() != "POST" || h.GetPath() != path || h.GetHost() != vaultHost || h.GetScheme() != "https" {
				t.Errorf("method/path/host/scheme = %q %q %q %q", h.GetMethod(), h.GetPath(), h.GetHost(), h.GetScheme())
			}
			if h.GetProtocol() != proto {
				t.Errorf("protocol %q, want %q", h.GetProtocol(), proto)
			}
			if h.GetSize() != 0 || h.GetQuery() != "" || h.GetFragment() != "" || h.GetBody() != "" {
				t.Errorf("size/query/fragment/body = %d %q %q %q, want zero", h.GetSize(), h.GetQuery(), h.GetFragment(), h.GetBody())
			}
			if tm := a.GetRequest().GetTime().AsTime(); time.Since(tm) > time.Minute || time.Since(tm) < 0 {
				t.Errorf("request.time %v", tm)
			}
			if src := a.GetSource().GetAddress().GetSocketAddress(); src.GetAddress() != "127.0.0.1" || src.GetPortValue() == 0 {
				t.Errorf("source.address %v, want the TCP peer", src)
			}
			if dst := a.GetDestination().GetAddress().GetSocketAddress(); dst.GetAddress() != "127.0.0.1" || dst.GetPortValue() != uint32(r.front.Addr().Port()) {
				t.Errorf("destination.address %v, want %v", dst, r.front.Addr())
			}
			if p := a.GetDestination().GetPrincipal(); p != "localhost" {
				t.Errorf("destination.principal %q, want the server certificate's first DNS SAN", p)
			}
			if a.GetTlsSession().GetSni() != vaultHost {
				t.Errorf("tls_session.sni %q", a.GetTlsSession().GetSni())
			}
			if a.GetContextExtensions()["listener"] != "public" {
				t.Errorf("context_extensions %v", a.GetContextExtensions())
			}
			if a.GetMetadataContext() == nil || len(a.GetMetadataContext().GetFilterMetadata()) != 0 {
				t.Errorf("metadata_context %v: want set and empty without PROXY TLVs", a.GetMetadataContext())
			}

			// The upstream gets the path verbatim and the HCM's headers.
			ups := r.upstream.requests()
			if len(ups) != 1 {
				t.Fatalf("upstream got %d requests", len(ups))
			}
			u := ups[0]
			if u.RequestURI != path || u.Host != vaultHost {
				t.Errorf("upstream got %q for host %q, want %q for %q", u.RequestURI, u.Host, path, vaultHost)
			}
			if got := u.Header.Get("X-Request-Id"); got != h.GetHeaders()["x-request-id"] {
				t.Errorf("upstream x-request-id %q, checked %q", got, h.GetHeaders()["x-request-id"])
			}
			if got := u.Header.Values("X-Dup"); len(got) != 2 {
				t.Errorf("upstream X-Dup %q, want both lines", got)
			}
			if u.Header.Get("X-Envoy-Internal") != "" || u.Header.Get("X-Forwarded-Client-Cert") != "" {
				t.Errorf("upstream got stripped headers: %v", u.Header)
			}
			if resp.Header.Get("Server") != "envoy" || resp.Header.Get("X-Envoy-Upstream-Service-Time") == "" {
				t.Errorf("response headers %v: want Envoy's server and upstream-service-time", resp.Header)
			}
		})
	}
}

func TestXFFTrustedHops(t *testing.T) {
	for _, tc := range []struct {
		hops     int
		xff      string
		external string
		proto    string
	}{
		{0, "203.0.113.9", "198.51.100.77", "https"},
		{1, "203.0.113.9", "203.0.113.9", "http"}, // trusted hop: its XFF entry and x-forwarded-proto count
		{2, "203.0.113.9, 192.0.2.1", "203.0.113.9", "http"},
		{2, "203.0.113.9", "198.51.100.77", "http"}, // too few entries: the peer
		{1, "not-an-ip", "198.51.100.77", "http"},
	} {
		t.Run(strconv.Itoa(tc.hops)+"/"+tc.xff, func(t *testing.T) {
			r := newRig(t, allowAll, func(o *Options) { o.ProxyProtocol = true; o.XFFTrustedHops = tc.hops })
			hc := r.client(t, Client{ServerName: vaultHost, Proxy: &ProxyHeader{Source: netip.MustParseAddrPort("198.51.100.77:40000")}})
			do(t, hc, "GET", "https://"+vaultHost+"/secrets", http.Header{"X-Forwarded-For": {tc.xff}, "X-Forwarded-Proto": {"http"}})
			a := r.lastCheck(t).Request.GetAttributes()
			h := a.GetRequest().GetHttp().GetHeaders()
			if h["x-forwarded-for"] != tc.xff+",198.51.100.77" {
				t.Errorf("x-forwarded-for %q", h["x-forwarded-for"])
			}
			if h["x-envoy-external-address"] != tc.external {
				t.Errorf("x-envoy-external-address %q, want %q", h["x-envoy-external-address"], tc.external)
			}
			if h["x-forwarded-proto"] != tc.proto {
				t.Errorf("x-forwarded-proto %q, want %q", h["x-forwarded-proto"], tc.proto)
			}
			if got := a.GetSource().GetAddress().GetSocketAddress().GetAddress(); got != "198.51.100.77" {
				t.Errorf("source.address %q: XFF must never change it", got)
			}
		})
	}
}

func TestProxyProtocolV2(t *testing.T) {
	r := newRig(t, allowAll, func(o *Options) { o.ProxyProtocol = true })
	// LinkID 0x12345680 is 80 56 34 12 little-endian: 0x80 is not UTF-8.
	const linkID = 0x12345680
	for _, tc := range []struct {
		name        string
		proxy       ProxyHeader
		addr        string
		untypedAWS  string
		untypedAzur string
		typedAzure  []byte
	}{
		{
			name:  "IPv4 with both TLVs",
			proxy: ProxyHeader{Source: netip.MustParseAddrPort("203.0.113.7:51000"), TLVs: append(tlvs(AWSVPCE("vpce-0123456789abcdef0")), AzureLinkID(linkID))},
			addr:  "203.0.113.7", untypedAWS: "\x01vpce-0123456789abcdef0",
			untypedAzur: "\x01!V4\x12", typedAzure: []byte{0x01, 0x80, 0x56, 0x34, 0x12},
		},
		{
			name:  "IPv6 with no TLV",
			proxy: ProxyHeader{Source: netip.MustParseAddrPort("[2001:db8::7]:443")},
			addr:  "2001:db8::7",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := r.client(t, Client{ServerName: vaultHost, Proxy: &tc.proxy})
			if resp, _ := do(t, hc, "GET", "https://"+vaultHost+"/secrets", nil); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			a := r.lastCheck(t).Request.GetAttributes()
			src := a.GetSource().GetAddress().GetSocketAddress()
			if src.GetAddress() != tc.addr || src.GetPortValue() != uint32(tc.proxy.Source.Port()) {
				t.Errorf("source.address %v, want the PROXY source %v", src, tc.proxy.Source)
			}
			if xff := a.GetRequest().GetHttp().GetHeaders()["x-forwarded-for"]; xff != tc.addr {
				t.Errorf("x-forwarded-for %q, want %q", xff, tc.addr)
			}
			md := a.GetMetadataContext()
			if tc.untypedAWS == "" {
				if len(md.GetFilterMetadata()) != 0 || len(md.GetTypedFilterMetadata()) != 0 {
					t.Errorf("metadata without TLVs: %v", md)
				}
				return
			}
			f := md.GetFilterMetadata()[ProxyProtocolNamespace].GetFields()
			if got := f[KeyAWS].GetStringValue(); got != tc.untypedAWS {
				t.Errorf("untyped %s = %q, want %q", KeyAWS, got, tc.untypedAWS)
			}
			if got := f[KeyAzure].GetStringValue(); got != tc.untypedAzur {
				t.Errorf("untyped %s = %q, want %q (sanitised)", KeyAzure, got, tc.untypedAzur)
			}
			var typed tlvv3.TlvsMetadata
			if err := md.GetTypedFilterMetadata()[ProxyProtocolNamespace].UnmarshalTo(&typed); err != nil {
				t.Fatalf("typed metadata: %v", err)
			}
			if got := typed.GetTypedMetadata()[KeyAzure]; string(got) != string(tc.typedAzure) {
				t.Errorf("typed %s = % x, want % x (raw)", KeyAzure, got, tc.typedAzure)
			}
			if got := typed.GetTypedMetadata()[KeyAWS]; string(got) != tc.untypedAWS {
				t.Errorf("typed %s = %q", KeyAWS, got)
			}
		})
	}

	t.Run("no PROXY header is refused", func(t *testing.T) {
		hc := r.client(t, Client{ServerName: vaultHost})
		req, _ := http.NewRequestWithContext(t.Context(), "GET", "https://"+vaultHost+"/secrets", nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("status %d without a PROXY header, want a failed connection", resp.StatusCode)
		}
	})
	t.Run("allow_requests_without_proxy_protocol", func(t *testing.T) {
		r := newRig(t, allowAll, func(o *Options) { o.ProxyProtocol = true; o.AllowWithoutProxyProtocol = true })
		hc := r.client(t, Client{ServerName: vaultHost})
		if resp, _ := do(t, hc, "GET", "https://"+vaultHost+"/secrets", nil); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if got := r.lastCheck(t).Request.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress(); got != "127.0.0.1" {
			t.Errorf("source.address %q, want the TCP peer", got)
		}
	})
}

func tlvs(ts ...proxyproto.TLV) []proxyproto.TLV { return ts }

func TestUntrustedClientCertificateCannotConnect(t *testing.T) {
	r := newRig(t, allowAll, nil)
	other := authztest.NewTestCAWith(t, authztest.TestCAOptions{CommonName: "someone else's CA"})
	cert := other.Issue(authztest.CertOptions{Subject: subject("intruder"), URIs: []string{"spiffe://trusted.example/azure-backup"}}).TLS()
	for _, h1 := range []bool{false, true} {
		hc := r.client(t, Client{ServerName: vaultHost, Certificate: &cert, HTTP1: h1})
		req, _ := http.NewRequestWithContext(t.Context(), "GET", "https://"+vaultHost+"/secrets", nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("untrusted client certificate got status %d, want a failed handshake", resp.StatusCode)
		}
		// Under TLS 1.3 the client may learn of the refusal as a
		// certificate alert or as a reset on its first write.
		t.Logf("HTTP/1.1=%v: %v", h1, err)
	}
	if n := len(r.authz.Requests()); n != 0 {
		t.Errorf("authz asked %d times for a connection that must not exist", n)
	}
}

func TestPlaintextListener(t *testing.T) {
	r := newRig(t, allowAll, func(o *Options) { o.ServerCert = nil; o.ClientCAs = nil })
	hc := (Client{}).HTTPClient(t, r.front.Addr())
	if resp, _ := do(t, hc, "GET", "http://"+vaultHost+"/secrets", nil); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	a := r.lastCheck(t).Request.GetAttributes()
	if a.GetSource().GetPrincipal() != "" || a.GetTlsSession() != nil || a.GetRequest().GetHttp().GetScheme() != "http" {
		t.Errorf("plaintext: principal %q tls_session %v scheme %q", a.GetSource().GetPrincipal(), a.GetTlsSession(), a.GetRequest().GetHttp().GetScheme())
	}
	if got := a.GetRequest().GetHttp().GetHeaders()["x-forwarded-proto"]; got != "http" {
		t.Errorf("x-forwarded-proto %q", got)
	}
}

func TestAllowHeaderMutations(t *testing.T) {
	type hv = corev3.HeaderValueOption
	withAppend := func(k, v string, b bool) *hv {
		return &hv{Header: &corev3.HeaderValue{Key: k, Value: v}, Append: wrapperspb.Bool(b)}
	}
	act := authzstub.Header
	for _, tc := range []struct {
		name    string
		options []*hv
		want    []string // upstream's values of x-existing
		wantNew []string // upstream's values of x-new
	}{
		{"OVERWRITE_IF_EXISTS_OR_ADD", []*hv{act("x-existing", "v", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD), act("x-new", "v", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)}, []string{"v"}, []string{"v"}},
		// Envoy 1.40 ignores append_action on ok_response.headers: without
		// the deprecated bool every header is set.
		{"APPEND_IF_EXISTS_OR_ADD is ignored: set", []*hv{act("x-existing", "v", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD), act("x-new", "v", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD)}, []string{"v"}, []string{"v"}},
		{"ADD_IF_ABSENT is ignored: set", []*hv{act("x-existing", "v", corev3.HeaderValueOption_ADD_IF_ABSENT), act("x-new", "v", corev3.HeaderValueOption_ADD_IF_ABSENT)}, []string{"v"}, []string{"v"}},
		{"OVERWRITE_IF_EXISTS is ignored: set", []*hv{act("x-existing", "v", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS), act("x-new", "v", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS)}, []string{"v"}, []string{"v"}},
		{"deprecated append: true appends to existing only", []*hv{withAppend("x-existing", "v", true), withAppend("x-new", "v", true)}, []string{"orig,v"}, nil},
		{"deprecated append: false overwrites", []*hv{withAppend("x-existing", "v", false), withAppend("x-new", "v", false)}, []string{"v"}, []string{"v"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
				return authzstub.Allow(tc.options...), nil
			}, nil)
			hc := r.client(t, Client{ServerName: vaultHost})
			if resp, _ := do(t, hc, "GET", "https://"+vaultHost+"/secrets", http.Header{"X-Existing": {"orig"}}); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			u := r.upstream.requests()[0]
			if got := u.Header.Values("X-Existing"); !equal(got, tc.want) {
				t.Errorf("x-existing %q, want %q", got, tc.want)
			}
			if got := u.Header.Values("X-New"); !equal(got, tc.wantNew) {
				t.Errorf("x-new %q, want %q", got, tc.wantNew)
			}
			if c := r.lastCheck(t); c.Outcome != OK || !equal(c.Upstream.Values("X-Existing"), tc.want) {
				t.Errorf("check log: outcome %s upstream %v", c.Outcome, c.Upstream)
			}
		})
	}

	t.Run("headers_to_remove and response_headers_to_add", func(t *testing.T) {
		r := newRig(t, func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
			resp := authzstub.Allow(authzstub.Overwrite("x-vaultwall-caller", "oid=1"))
			ok := resp.GetOkResponse()
			ok.HeadersToRemove = []string{"x-vaultwall-forged", ":path", "host", ":authority"}
			ok.ResponseHeadersToAdd = []*corev3.HeaderValueOption{
				{Header: &corev3.HeaderValue{Key: "x-ms-keyvault-network-info", Value: "conn_type=Ipv4"}},
				authzstub.Overwrite("server", "not-envoy"),
			}
			resp.DynamicMetadata, _ = structpb.NewStruct(map[string]any{"decision_id": "d-1"})
			return resp, nil
		}, nil)
		hc := r.client(t, Client{ServerName: vaultHost})
		resp, _ := do(t, hc, "GET", "https://"+vaultHost+"/secrets/s?api-version=7.5", http.Header{
			"X-Vaultwall-Forged": {"evil"}, "X-Vaultwall-Caller": {"forged"},
		})
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		u := r.upstream.requests()[0]
		if u.Header.Get("X-Vaultwall-Forged") != "" || !equal(u.Header.Values("X-Vaultwall-Caller"), []string{"oid=1"}) {
			t.Errorf("upstream identity headers: %v", u.Header)
		}
		if u.RequestURI != "/secrets/s?api-version=7.5" || u.Host != vaultHost {
			t.Errorf(":path/host removed: %q %q", u.RequestURI, u.Host)
		}
		if got := resp.Header.Values("X-Ms-Keyvault-Network-Info"); !equal(got, []string{"conn_type=Ipv4"}) {
			t.Errorf("response_headers_to_add: %q", got)
		}
		if resp.Header.Get("Server") != "envoy" {
			t.Errorf("server %q: Envoy overwrites it last", resp.Header.Get("Server"))
		}
		c := r.lastCheck(t)
		if c.DynamicMetadata.GetFields()["decision_id"].GetStringValue() != "d-1" || c.DynamicMetadata.GetFields()["ext_authz_duration"] == nil {
			t.Errorf("dynamic metadata %v", c.DynamicMetadata)
		}
		if c.Status != 200 {
			t.Errorf("logged status %d", c.Status)
		}
	})
}

func TestDenied(t *testing.T) {
	challenge := `Bearer authorization="https://login.example.test/t1", resource="https://vault.azure.net"`
	body := `{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}`
	for _, tc := range []struct {
		name      string
		resp      *authv3.CheckResponse
		status    int
		body      string
		ctype     string
		challenge string
	}{
		{
			name: "denied_response with status, headers, body",
			resp: authzstub.Deny(code.Code_UNAUTHENTICATED, 401, body,
				authzstub.Overwrite("www-authenticate", challenge),
				authzstub.Overwrite("content-type", "application/json; charset=utf-8")),
			status: 401, body: body, ctype: "application/json; charset=utf-8", challenge: challenge,
		},
		{
			name:   "non-zero status without denied_response: 403, empty",
			resp:   &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(code.Code_PERMISSION_DENIED)}},
			status: 403,
		},
		{
			name:   "INTERNAL in an OK RPC is still a denial",
			resp:   authzstub.Deny(code.Code_INTERNAL, 0, "nope"),
			status: 403, body: "nope", ctype: "text/plain",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) { return tc.resp, nil }, nil)
			hc := r.client(t, Client{ServerName: vaultHost})
			resp, got := do(t, hc, "PUT", "https://"+vaultHost+"/secrets/s1?api-version=7.5", nil)
			if resp.StatusCode != tc.status || got != tc.body {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, got, tc.status, tc.body)
			}
			if resp.Header.Get("Content-Type") != tc.ctype || resp.Header.Get("Www-Authenticate") != tc.challenge {
				t.Errorf("headers %v", resp.Header)
			}
			if n := len(r.upstream.requests()); n != 0 {
				t.Errorf("upstream reached %d times by a denied request", n)
			}
			if c := r.lastCheck(t); c.Outcome != Denied || c.Status != tc.status {
				t.Errorf("check log: %s %d", c.Outcome, c.Status)
			}
		})
	}
}

func TestCheckFailures(t *testing.T) {
	rpcError := func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return nil, status.Error(codes.PermissionDenied, "denied as an RPC error")
	}
	deadlines := make(chan bool, 8)
	slow := func(ctx context.Context, _ *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		_, has := ctx.Deadline()
		deadlines <- has
		<-ctx.Done()
		// Answer after the caller gave up: a late OK must not count.
		time.Sleep(100 * time.Millisecond)
		return authzstub.Allow(), nil
	}
	for _, tc := range []struct {
		name    string
		handler authzstub.Handler
		tweak   func(*Options)
		status  int
		outcome Outcome
		minTime time.Duration
	}{
		{"RPC error: status_on_error default 403", rpcError, nil, 403, Error, 0},
		{"RPC error: status_on_error 503", rpcError, func(o *Options) { o.StatusOnError = 503 }, 503, Error, 0},
		{"slow server: 200 ms timeout", slow, nil, 403, Error, 200 * time.Millisecond},
		{"RPC error: failure_mode_allow", rpcError, func(o *Options) { o.FailureModeAllow = true }, 200, FailureModeAllowed, 0},
		{"timeout: failure_mode_allow", slow, func(o *Options) { o.FailureModeAllow = true; o.Timeout = 50 * time.Millisecond }, 200, FailureModeAllowed, 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.handler, tc.tweak)
			hc := r.client(t, Client{ServerName: vaultHost})
			start := time.Now()
			resp, body := do(t, hc, "GET", "https://"+vaultHost+"/secrets", nil)
			took := time.Since(start)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if took < tc.minTime || took > 5*time.Second {
				t.Errorf("took %v, want at least %v", took, tc.minTime)
			}
			c := r.lastCheck(t)
			if c.Outcome != tc.outcome || c.Err == nil {
				t.Errorf("check log: %s err=%v", c.Outcome, c.Err)
			}
			if tc.outcome == Error {
				if body != "" {
					t.Errorf("status_on_error body %q, want empty", body)
				}
				if n := len(r.upstream.requests()); n != 0 {
					t.Errorf("upstream reached on error")
				}
				return
			}
			u := r.upstream.requests()[0]
			if u.Header.Get("X-Envoy-Auth-Failure-Mode-Allowed") != "true" {
				t.Errorf("upstream headers %v: want x-envoy-auth-failure-mode-allowed", u.Header)
			}
		})
	}
	select {
	case has := <-deadlines:
		if !has {
			t.Error("the authz handler saw no deadline: Envoy sends grpc-timeout")
		}
	default:
		// Only under extreme load does the deadline pass before the RPC
		// reaches the server; the outcomes above still held.
		t.Log("slow handler never ran; deadline propagation not observed")
	}

	t.Run("authz server unreachable", func(t *testing.T) {
		r := newRig(t, allowAll, func(o *Options) { o.AuthzAddr = closedPort(t) })
		hc := r.client(t, Client{ServerName: vaultHost})
		if resp, _ := do(t, hc, "GET", "https://"+vaultHost+"/secrets", nil); resp.StatusCode != 403 {
			t.Errorf("status %d, want 403", resp.StatusCode)
		}
	})
}

func TestValidateMutations(t *testing.T) {
	r := newRig(t, func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		return authzstub.Allow(authzstub.Overwrite("x-bad", "a\r\nInjected: yes")), nil
	}, func(o *Options) { o.ValidateMutations = true })
	hc := r.client(t, Client{ServerName: vaultHost})
	if resp, _ := do(t, hc, "GET", "https://"+vaultHost+"/secrets", nil); resp.StatusCode != 500 {
		t.Errorf("status %d, want 500", resp.StatusCode)
	}
	if c := r.lastCheck(t); c.Outcome != Invalid {
		t.Errorf("outcome %s", c.Outcome)
	}
	if len(r.upstream.requests()) != 0 {
		t.Error("an invalid mutation reached the upstream")
	}
}

func TestUpstreamDown(t *testing.T) {
	r := newRig(t, allowAll, func(o *Options) { o.Upstream = &url.URL{Scheme: "https", Host: closedPort(t)} })
	hc := r.client(t, Client{ServerName: vaultHost})
	resp, body := do(t, hc, "GET", "https://"+vaultHost+"/secrets", nil)
	if resp.StatusCode != 503 || !strings.HasPrefix(body, "upstream connect error") {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
	if c := r.lastCheck(t); c.Outcome != OK || c.Status != 503 {
		t.Errorf("check log: %s %d", c.Outcome, c.Status)
	}
}

func TestDialWritesProxyHeader(t *testing.T) {
	// A bad PROXY header is refused before any TLS.
	_, err := Dial(t.Context(), netip.MustParseAddrPort("127.0.0.1:1"), &ProxyHeader{})
	if err == nil {
		t.Fatal("Dial accepted a PROXY header without a source")
	}
	ph := &ProxyHeader{Source: netip.MustParseAddrPort("203.0.113.1:1"), Destination: netip.MustParseAddrPort("[::1]:443")}
	if _, err := ph.header(netip.MustParseAddrPort("127.0.0.1:443")); err == nil {
		t.Error("mixed-family PROXY header accepted")
	}
}

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
