package front

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlvv3 "github.com/envoyproxy/go-control-plane/envoy/data/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// stream is what the filter knows about one request when it asks.
type stream struct {
	id        uint64
	start     time.Time
	peer      netip.AddrPort // connection remote (PROXY source if any)
	local     netip.AddrPort // connection local (PROXY destination if any)
	tls       bool
	sni       string
	peerCert  *x509.Certificate // verified client certificate, nil without
	localCert *x509.Certificate // the listener's own certificate
	protocol  string            // HTTP/1.1, HTTP/2
	headers   headerMap         // after the HCM's mutations
	tlvs      map[byte][]byte   // PROXY TLVs, by type
}

// checkRequest builds the CheckRequest as CheckRequestUtils::createHttpCheck
// and the ext_authz filter's initiateCall do.
func checkRequest(s *stream, o Options) *authv3.CheckRequest {
	src := &authv3.AttributeContext_Peer{Address: socketAddress(s.peer)}
	dst := &authv3.AttributeContext_Peer{Address: socketAddress(s.local)}
	if s.tls {
		src.Principal = principal(s.peerCert)
		dst.Principal = principal(s.localCert)
		if !o.OmitPeerCertificate && s.peerCert != nil {
			src.Certificate = urlEncodePEM(s.peerCert.Raw)
		}
	}
	method, _ := s.headers.get(":method")
	path, _ := s.headers.get(":path")
	host, _ := s.headers.get(":authority")
	scheme, _ := s.headers.get(":scheme")
	attrs := &authv3.AttributeContext{
		Source:      src,
		Destination: dst,
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.New(s.start),
			Http: &authv3.AttributeContext_HttpRequest{
				Id:       strconv.FormatUint(s.id, 10),
				Method:   method,
				Path:     path,
				Host:     host,
				Scheme:   scheme,
				Protocol: s.protocol,
				// size: bytes received so far — 0 without with_request_body.
			},
		},
		ContextExtensions: o.contextExtensions(host),
		MetadataContext:   metadataContext(s.tlvs, o),
		// route_metadata_context is always set, empty without route metadata.
		RouteMetadataContext: &corev3.Metadata{},
	}
	if o.EncodeRawHeaders {
		attrs.Request.Http.HeaderMap = checkHeaderMap(s.headers, o.AllowedHeaders)
	} else {
		attrs.Request.Http.Headers = checkHeaders(s.headers, o.AllowedHeaders)
	}
	if s.tls && !o.OmitTLSSession {
		attrs.TlsSession = &authv3.AttributeContext_TLSSession{Sni: s.sni}
	}
	return &authv3.CheckRequest{Attributes: attrs}
}

// checkHeaders is the headers map: lower-case keys, duplicates joined with
// "," (no space), values UTF-8-sanitised, x-envoy-auth-partial-body
// dropped.
func checkHeaders(h headerMap, allowed func(string) bool) map[string]string {
	out := make(map[string]string, len(h))
	for _, e := range h {
		if e.key == "x-envoy-auth-partial-body" || allowed != nil && !allowed(e.key) {
			continue
		}
		v := sanitizeUTF8(e.value)
		if prev, ok := out[e.key]; ok {
			v = prev + "," + v
		}
		out[e.key] = v
	}
	return out
}

// checkHeaderMap is encode_raw_headers' header_map: one entry per header
// field in the map's order, the raw bytes in raw_value (value empty),
// nothing joined or sanitised; x-envoy-auth-partial-body dropped as for
// headers.
func checkHeaderMap(h headerMap, allowed func(string) bool) *corev3.HeaderMap {
	out := &corev3.HeaderMap{}
	for _, e := range h {
		if e.key == "x-envoy-auth-partial-body" || allowed != nil && !allowed(e.key) {
			continue
		}
		out.Headers = append(out.Headers, &corev3.HeaderValue{Key: e.key, RawValue: []byte(e.value)})
	}
	return out
}

func socketAddress(ap netip.AddrPort) *corev3.Address {
	if !ap.IsValid() {
		return nil
	}
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       ap.Addr().String(),
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(ap.Port())},
	}}}
}

// principal is Envoy's rule: first URI SAN, else first DNS SAN, else the
// subject DN in RFC 2253 form; "" without a certificate.
func principal(c *x509.Certificate) string {
	switch {
	case c == nil:
		return ""
	case len(c.URIs) > 0:
		return sanitizeUTF8(c.URIs[0].String())
	case len(c.DNSNames) > 0:
		return sanitizeUTF8(c.DNSNames[0])
	default:
		return sanitizeUTF8(subjectRFC2253(c.RawSubject))
	}
}

// urlEncodePEM is include_peer_certificate's form: the leaf as PEM, with
// exactly \n, space, +, / and = percent-encoded.
func urlEncodePEM(der []byte) string {
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return pemEscaper.Replace(string(p))
}

var pemEscaper = strings.NewReplacer("\n", "%0A", " ", "%20", "+", "%2B", "/", "%2F", "=", "%3D")

// sanitizeUTF8 is Envoy's MessageUtil::sanitizeUtf8String: each byte that
// is not part of a valid UTF-8 sequence becomes '!'.
func sanitizeUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			b.WriteByte('!')
			i++
			continue
		}
		b.WriteString(s[i : i+n])
		i += n
	}
	return b.String()
}

// metadataContext is the connection's proxy_protocol metadata, untyped
// (a sanitised string per TLV) and typed (TlvsMetadata with raw bytes),
// each under the namespaces the filter is configured to send. Envoy sets
// the message even when it is empty.
func metadataContext(tlvs map[byte][]byte, o Options) *corev3.Metadata {
	md := &corev3.Metadata{}
	untyped := map[string]*structpb.Value{}
	typed := map[string][]byte{}
	for typ, key := range o.tlvKeys() {
		if v, ok := tlvs[typ]; ok {
			untyped[key] = structpb.NewStringValue(sanitizeUTF8(string(v)))
			typed[key] = v
		}
	}
	if len(untyped) == 0 {
		return md
	}
	for _, ns := range o.metadataNamespaces() {
		if ns == ProxyProtocolNamespace {
			if md.FilterMetadata == nil {
				md.FilterMetadata = map[string]*structpb.Struct{}
			}
			md.FilterMetadata[ns] = &structpb.Struct{Fields: untyped}
		}
	}
	for _, ns := range o.typedMetadataNamespaces() {
		if ns == ProxyProtocolNamespace {
			a, err := anypb.New(&tlvv3.TlvsMetadata{TypedMetadata: typed})
			if err != nil {
				continue
			}
			if md.TypedFilterMetadata == nil {
				md.TypedFilterMetadata = map[string]*anypb.Any{}
			}
			md.TypedFilterMetadata[ns] = a
		}
	}
	return md
}

// subjectRFC2253 prints a DER subject the way OpenSSL's X509_NAME_print_ex
// with XN_FLAG_RFC2253 does (what Envoy's subjectPeerCertificate returns):
// RDNs last to first, "," between RDNs and "+" inside one, OpenSSL's short
// names, RFC 2253 escaping, bytes ≥ 0x80 and control bytes as \XX, and
// unknown attribute types as OID=#hex-of-DER.
func subjectRFC2253(raw []byte) string {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(raw, &seq); err != nil || len(rest) > 0 {
		return ""
	}
	var b strings.Builder
	for i := len(seq) - 1; i >= 0; i-- {
		rdn := seq[i]
		for j := len(rdn) - 1; j >= 0; j-- {
			switch {
			case i == len(seq)-1 && j == len(rdn)-1:
			case j == len(rdn)-1:
				b.WriteByte(',')
			default:
				b.WriteByte('+')
			}
			atv := rdn[j]
			name, known := shortNames[atv.Type.String()]
			s, isString := atv.Value.(string)
			if !known || !isString {
				if !known {
					name = atv.Type.String()
				}
				der, err := asn1.Marshal(atv.Value)
				if err != nil {
					continue
				}
				fmt.Fprintf(&b, "%s=#%s", name, strings.ToUpper(hex.EncodeToString(der)))
				continue
			}
			b.WriteString(name)
			b.WriteByte('=')
			b.WriteString(escape2253(s))
		}
	}
	return b.String()
}

// shortNames are OpenSSL's short names for the attribute types a subject
// commonly carries.
var shortNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.4": "SN", "2.5.4.5": "serialNumber", "2.5.4.6": "C",
	"2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "street", "2.5.4.10": "O",
	"2.5.4.11": "OU", "2.5.4.12": "title", "2.5.4.13": "description",
	"2.5.4.15": "businessCategory", "2.5.4.17": "postalCode", "2.5.4.41": "name",
	"2.5.4.42": "GN", "2.5.4.43": "initials", "2.5.4.44": "generationQualifier",
	"2.5.4.46": "dnQualifier", "2.5.4.65": "pseudonym", "2.5.4.97": "organizationIdentifier",
	"1.2.840.113549.1.9.1":       "emailAddress",
	"0.9.2342.19200300.100.1.1":  "UID",
	"0.9.2342.19200300.100.1.25": "DC",
	"1.3.6.1.4.1.311.60.2.1.1":   "jurisdictionL",
	"1.3.6.1.4.1.311.60.2.1.2":   "jurisdictionST",
	"1.3.6.1.4.1.311.60.2.1.3":   "jurisdictionC",
}

// escape2253 is OpenSSL's ASN1_STRFLGS_RFC2253 escaping of one value.
func escape2253(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x80 || c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, "\\%02X", c)
		case strings.IndexByte(`,+"\<>;`, c) >= 0,
			(c == '#' || c == ' ') && i == 0,
			c == ' ' && i == len(s)-1:
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
