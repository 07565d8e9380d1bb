package envoy

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlvv3 "github.com/envoyproxy/go-control-plane/envoy/data/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// A CheckRequest as Envoy's HTTP filter sends it (envoy-istio-wire §1).
const envoyJSON = `{
 "attributes": {
  "source": {
   "address": {"socketAddress": {"address": "::ffff:203.0.113.9", "portValue": 51234}},
   "principal": "spiffe://trusted.example/azure-backup",
   "certificate": "-----BEGIN%20CERTIFICATE-----%0AMIIB%2Babc%2Fdef%3D%3D%0A-----END%20CERTIFICATE-----%0A"
  },
  "destination": {"address": {"socketAddress": {"address": "10.0.0.5", "portValue": 8443}}},
  "request": {
   "time": "2026-11-27T10:00:00Z",
   "http": {
    "id": "8306787481883314548",
    "method": "POST",
    "headers": {":authority": "contoso.vault.azure.net", ":method": "POST", ":path": "/keys/k1//wrapkey?api-version=7.5",
      ":scheme": "https", "authorization": "Bearer x", "x-forwarded-for": "198.51.100.1,203.0.113.9"},
    "path": "/keys/k1//wrapkey?api-version=7.5",
    "host": "contoso.vault.azure.net",
    "scheme": "https",
    "protocol": "HTTP/2"
   }
  },
  "contextExtensions": {"listener": "public"},
  "tlsSession": {"sni": "contoso.vault.azure.net"}
 }
}`

func TestRequestFrom(t *testing.T) {
	var cr authv3.CheckRequest
	if err := protojson.Unmarshal([]byte(envoyJSON), &cr); err != nil {
		t.Fatal(err)
	}
	req := RequestFrom(&cr)
	if want := netip.MustParseAddrPort("203.0.113.9:51234"); req.Peer != want {
		t.Errorf("peer = %v, want %v (IPv4-mapped unmapped)", req.Peer, want)
	}
	if req.Principal != "spiffe://trusted.example/azure-backup" {
		t.Errorf("principal = %q", req.Principal)
	}
	if want := "-----BEGIN CERTIFICATE-----\nMIIB+abc/def==\n-----END CERTIFICATE-----\n"; req.CertificatePEM != want {
		t.Errorf("certificate = %q, want %q", req.CertificatePEM, want)
	}
	if req.ID != "8306787481883314548" || req.Method != "POST" || req.Path != "/keys/k1//wrapkey?api-version=7.5" ||
		req.Host != "contoso.vault.azure.net" || req.Scheme != "https" || req.Protocol != "HTTP/2" {
		t.Errorf("http = %+v", req)
	}
	if req.Header("authorization") != "Bearer x" || req.Header(":path") != req.Path {
		t.Errorf("headers = %v", req.Headers)
	}
	if !req.TLS || req.SNI != "contoso.vault.azure.net" {
		t.Errorf("tls = %v sni = %q", req.TLS, req.SNI)
	}
	if req.ContextExtensions["listener"] != "public" {
		t.Errorf("context extensions = %v", req.ContextExtensions)
	}
	if req.Time.IsZero() {
		t.Error("time not set")
	}
}

func TestRequestFromMalformed(t *testing.T) {
	tests := map[string]*authv3.CheckRequest{
		"nil":               nil,
		"empty":             {},
		"no http":           {Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{}}},
		"unparsable source": {Attributes: &authv3.AttributeContext{Source: &authv3.AttributeContext_Peer{Address: sockAddr("not-an-ip", 1)}}},
		"zoned source":      {Attributes: &authv3.AttributeContext{Source: &authv3.AttributeContext_Peer{Address: sockAddr("fe80::1%eth0", 1)}}},
		"pipe source": {Attributes: &authv3.AttributeContext{Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{
			Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/tmp/x"}}}}}},
		"bad certificate escaping": {Attributes: &authv3.AttributeContext{Source: &authv3.AttributeContext_Peer{Certificate: "%zz"}}},
	}
	for name, cr := range tests {
		t.Run(name, func(t *testing.T) {
			req := RequestFrom(cr)
			if req == nil {
				t.Fatal("nil request")
			}
			if req.Peer.IsValid() || req.CertificatePEM != "" || req.Method != "" {
				t.Errorf("got %+v; want nothing believed", req)
			}
		})
	}
}

func TestRequestFromHeaderMap(t *testing.T) {
	cr := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: "Authorization", RawValue: []byte("Bearer a")},
			{Key: "authorization", RawValue: []byte("Bearer b")},
			{Key: ":path", Value: "/secrets"},
		}}}}}}
	req := RequestFrom(cr)
	if got := req.Header("authorization"); got != "Bearer a,Bearer b" {
		t.Errorf("authorization = %q: duplicates must stay visible, comma-joined", got)
	}
	if req.Header(":path") != "/secrets" {
		t.Errorf("headers = %v", req.Headers)
	}
}

func TestPrivateLinkTLVs(t *testing.T) {
	azure := make([]byte, 5)
	azure[0] = 0x01
	binary.LittleEndian.PutUint32(azure[1:], 305419896) // 0x12345678
	aws := append([]byte{0x01}, "vpce-0123456789abcdef0"...)

	typed := func(m map[string][]byte) *corev3.Metadata {
		a, err := anypb.New(&tlvv3.TlvsMetadata{TypedMetadata: m})
		if err != nil {
			t.Fatal(err)
		}
		return &corev3.Metadata{TypedFilterMetadata: map[string]*anypb.Any{ProxyProtocolNamespace: a}}
	}
	untyped := func(m map[string]any) *corev3.Metadata {
		st, err := structpb.NewStruct(m)
		if err != nil {
			t.Fatal(err)
		}
		return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{ProxyProtocolNamespace: st}}
	}
	sanitised := []byte{0x01, '!', 0x12, 0x34, 0x12} // a byte Envoy replaced with '!'

	tests := []struct {
		name     string
		md       *corev3.Metadata
		linkID   uint32
		hasLink  bool
		endpoint string
	}{
		{"typed azure", typed(map[string][]byte{TLVKeyAzure: azure}), 305419896, true, ""},
		{"typed aws", typed(map[string][]byte{TLVKeyAWS: aws}), 0, false, "vpce-0123456789abcdef0"},
		{"untyped aws", untyped(map[string]any{TLVKeyAWS: string(aws)}), 0, false, "vpce-0123456789abcdef0"},
		{"untyped azure, clean bytes", untyped(map[string]any{TLVKeyAzure: string([]byte{0x01, 0x11, 0x22, 0x33, 0x44})}), 0x44332211, true, ""},
		{"untyped azure, sanitised", untyped(map[string]any{TLVKeyAzure: string(sanitised)}), 0, false, ""},
		{"wrong subtype", typed(map[string][]byte{TLVKeyAzure: {0x02, 1, 2, 3, 4}}), 0, false, ""},
		{"short", typed(map[string][]byte{TLVKeyAzure: {0x01, 1, 2}}), 0, false, ""},
		{"aws garbage", typed(map[string][]byte{TLVKeyAWS: []byte("\x01vpce-<script>")}), 0, false, ""},
		{"other namespace", &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"other": {}}}, 0, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl := privateLink(tt.md)
			if pl.HasAzureLinkID != tt.hasLink || pl.AzureLinkID != tt.linkID || pl.AWSEndpointID != tt.endpoint {
				t.Errorf("got %+v", pl)
			}
		})
	}
}

func sockAddr(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
}

// mustMarshal marshals a seed; proto3 strings must be UTF-8 (raw bytes go
// in bytes fields, as Envoy's raw_value does).
func mustMarshal(f *testing.F, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzRequestFrom feeds arbitrary wire bytes through the translation: it
// must never panic, and the translation must preserve what the pipeline
// judges, checked field by field against the CheckRequest itself (not
// against the translator): the peer address (only an IP without a zone,
// IPv4-mapped unmapped, never a guess), the principal, the method, path,
// host and scheme byte for byte, and the headers — the headers map as is,
// or else header_map folded (lower-case names, raw bytes preferred,
// duplicates joined with a comma in order).
func FuzzRequestFrom(f *testing.F) {
	var cr authv3.CheckRequest
	if err := protojson.Unmarshal([]byte(envoyJSON), &cr); err != nil {
		f.Fatal(err)
	}
	seed, _ := proto.Marshal(&cr)
	f.Add(seed)
	f.Add([]byte{})
	// Hostile shapes: odd addresses, padding, case, raw header bytes,
	// duplicates, both header forms, escapes in the certificate.
	for _, addr := range []string{"203.0.113.9", "::ffff:10.0.0.1", "fe80::1%eth0", " 203.0.113.9", "203.0.113.9 ",
		"010.0.0.1", "203.0.113.9:80", "[2001:db8::1]", "2001:db8::1", "", "localhost", "1.2.3.4\x00", "\u0661.2.3.4"} {
		for _, port := range []uint32{0, 443, 65535, 65536, 70000, 1 << 31} {
			c := proto.Clone(&cr).(*authv3.CheckRequest)
			c.Attributes.Source.Address = sockAddr(addr, port)
			f.Add(mustMarshal(f, c))
		}
	}
	for _, hm := range [][]*corev3.HeaderValue{
		{{Key: "Authorization", Value: "Bearer a"}, {Key: "authorization", Value: "Bearer b"}},
		{{Key: "x-ms-client-request-id", RawValue: []byte("\xff\x00id")}, {Key: "X-MS-CLIENT-REQUEST-ID", Value: "two"}},
		{{Key: ":path", Value: "/secrets/a"}, {Key: ":method", Value: "get"}, {Key: "x-forwarded-for", RawValue: []byte(" 1.2.3.4 ,5.6.7.8")}},
		{{Key: "", Value: ""}, {Key: "KEY\u00c5", RawValue: []byte{}}, {Key: "k", Value: "v", RawValue: []byte("raw")}},
	} {
		for _, withMap := range []bool{false, true} {
			c := proto.Clone(&cr).(*authv3.CheckRequest)
			h := c.Attributes.Request.Http
			h.HeaderMap = &corev3.HeaderMap{Headers: hm}
			if !withMap {
				h.Headers = nil
			}
			h.Method, h.Path, h.Host = "get", "/secrets/a%2Fb/../c?api-version=7.5", "CONTOSO.vault.azure.net."
			c.Attributes.Source.Principal = " spiffe://trusted.example/azure-backup "
			c.Attributes.Source.Certificate = "-----BEGIN%ZZCERTIFICATE"
			f.Add(mustMarshal(f, c))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var cr authv3.CheckRequest
		if proto.Unmarshal(b, &cr) != nil {
			return
		}
		req := RequestFrom(&cr)
		src := cr.GetAttributes().GetSource()
		sa := src.GetAddress().GetSocketAddress()
		if ip, err := netip.ParseAddr(sa.GetAddress()); sa != nil && err == nil && ip.Zone() == "" {
			if req.Peer.Addr() != ip.Unmap() {
				t.Fatalf("peer %v, want %v from %q", req.Peer, ip.Unmap(), sa.GetAddress())
			}
			want := uint16(0) // a value that is no port is unknown (0), never truncated
			if p := sa.GetPortValue(); p <= 65535 {
				want = uint16(p)
			}
			if req.Peer.Port() != want {
				t.Fatalf("peer port %d, want %d from %d", req.Peer.Port(), want, sa.GetPortValue())
			}
		} else if req.Peer.IsValid() {
			t.Fatalf("believed peer %v from %q", req.Peer, sa.GetAddress())
		}
		if req.Peer.Addr().Is4In6() {
			t.Fatal("IPv4-mapped address not unmapped")
		}
		if req.Principal != src.GetPrincipal() {
			t.Fatalf("principal %q, want %q", req.Principal, src.GetPrincipal())
		}
		h := cr.GetAttributes().GetRequest().GetHttp()
		if req.Method != h.GetMethod() || req.Path != h.GetPath() || req.Host != h.GetHost() || req.Scheme != h.GetScheme() {
			t.Fatalf("method/path/host/scheme %q %q %q %q, want %q %q %q %q",
				req.Method, req.Path, req.Host, req.Scheme, h.GetMethod(), h.GetPath(), h.GetHost(), h.GetScheme())
		}
		want := h.GetHeaders()
		if len(want) == 0 && h.GetHeaderMap() != nil {
			want = map[string]string{}
			for _, e := range h.GetHeaderMap().GetHeaders() {
				k, v := strings.ToLower(e.GetKey()), e.GetValue()
				if raw := e.GetRawValue(); len(raw) > 0 {
					v = string(raw)
				}
				if prev, dup := want[k]; dup {
					v = prev + "," + v
				}
				want[k] = v
			}
		}
		if len(req.Headers) != len(want) {
			t.Fatalf("headers %q, want %q", req.Headers, want)
		}
		for k, v := range want {
			if got, ok := req.Headers[k]; !ok || got != v {
				t.Fatalf("header %q = %q, want %q", k, got, v)
			}
		}
	})
}

// TestAWSEndpointIDSubtype: AWS's TLV 0xEA is read only with subtype 0x01;
// another subtype, or a value too short to hold one, names no endpoint.
func TestAWSEndpointIDSubtype(t *testing.T) {
	for _, tc := range []struct {
		b    []byte
		want string
	}{
		{[]byte("\x01vpce-0abc123"), "vpce-0abc123"},
		{[]byte("\x02vpce-0abc123"), ""},
		{[]byte("vpce-0abc123"), ""},
		{[]byte{0x01}, ""},
		{nil, ""},
	} {
		if got := awsEndpointID(tc.b); got != tc.want {
			t.Errorf("awsEndpointID(%q) = %q, want %q", tc.b, got, tc.want)
		}
	}
}

// TestRequestFromTLSByPrincipal: a source principal means the peer
// presented a certificate, hence TLS, even when Envoy sent neither a TLS
// session nor the https scheme; the https scheme alone also means TLS.
func TestRequestFromTLSByPrincipal(t *testing.T) {
	for _, tc := range []struct {
		name, principal, scheme string
		want                    bool
	}{
		{"principal, no scheme", "spiffe://trusted.example/azure-backup", "", true},
		{"principal over http", "spiffe://trusted.example/azure-backup", "http", true},
		{"https alone", "", "https", true},
		{"neither", "", "http", false},
	} {
		cr := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Source:  &authv3.AttributeContext_Peer{Principal: tc.principal},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/secrets", Scheme: tc.scheme}},
		}}
		if got := RequestFrom(cr).TLS; got != tc.want {
			t.Errorf("%s: TLS = %v, want %v", tc.name, got, tc.want)
		}
	}
}
