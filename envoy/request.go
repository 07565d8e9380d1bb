package envoy

import (
	"encoding/binary"
	"net/netip"
	"net/url"
	"strings"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlvv3 "github.com/envoyproxy/go-control-plane/envoy/data/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/vaultwall/vaultwall/authz"
)

// ProxyProtocolNamespace is where Envoy's proxy_protocol listener filter puts
// TLVs; envoy.yaml names the keys below.
const (
	ProxyProtocolNamespace = "envoy.filters.listener.proxy_protocol"
	TLVKeyAWS              = "aws_vpce_id"  // TLV 0xEA
	TLVKeyAzure            = "azure_linkid" // TLV 0xEE
)

// tlvSubtypeID is the first byte of both clouds' private-link TLVs.
const tlvSubtypeID = 0x01

// RequestFrom translates a CheckRequest into the plain request the
// pipeline decides on. It never fails: what is missing or unparsable is left
// empty or invalid, and the stages refuse it.
func RequestFrom(cr *authv3.CheckRequest) *authz.Request {
	req := &authz.Request{}
	requestInto(cr, req)
	return req
}

// requestInto is RequestFrom into a zero Request the caller allocated.
func requestInto(cr *authv3.CheckRequest, req *authz.Request) {
	attrs := cr.GetAttributes()
	if attrs == nil {
		return
	}
	if src := attrs.GetSource(); src != nil {
		req.Peer = addrPort(src.GetAddress())
		req.Principal = src.GetPrincipal()
		if pem := src.GetCertificate(); pem != "" {
			// Envoy escapes exactly \n, space, +, / and =; PathUnescape
			// reverses that without turning + into a space. A certificate
			// that does not decode is dropped: it then matches nothing.
			if dec, err := url.PathUnescape(pem); err == nil {
				req.CertificatePEM = dec
			}
		}
	}
	if http := attrs.GetRequest().GetHttp(); http != nil {
		req.ID = http.GetId()
		req.Method = http.GetMethod()
		req.Path = http.GetPath()
		req.Host = http.GetHost()
		req.Scheme = http.GetScheme()
		req.Protocol = http.GetProtocol()
		req.Headers = http.GetHeaders()
		if hm := http.GetHeaderMap(); len(req.Headers) == 0 && hm != nil {
			req.Headers = joinHeaderMap(hm)
		}
	}
	if t := attrs.GetRequest().GetTime(); t != nil {
		req.Time = t.AsTime()
	}
	if tls := attrs.GetTlsSession(); tls != nil {
		req.TLS = true
		req.SNI = tls.GetSni()
	}
	if req.Principal != "" || req.Scheme == "https" {
		req.TLS = true
	}
	req.ContextExtensions = attrs.GetContextExtensions()
	req.PrivateLink = privateLink(attrs.GetMetadataContext())
}

func addrPort(a *corev3.Address) netip.AddrPort {
	sa := a.GetSocketAddress()
	if sa == nil {
		return netip.AddrPort{}
	}
	ip, err := netip.ParseAddr(sa.GetAddress())
	if err != nil || ip.Zone() != "" {
		return netip.AddrPort{}
	}
	port := sa.GetPortValue()
	if port > 65535 {
		port = 0 // not a port: unknown, never another port by truncation
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port))
}

// joinHeaderMap folds encode_raw_headers' list into Envoy's usual map:
// lower-case names, duplicates joined with a comma.
func joinHeaderMap(hm *corev3.HeaderMap) map[string]string {
	out := make(map[string]string, len(hm.GetHeaders()))
	for _, h := range hm.GetHeaders() {
		k := strings.ToLower(h.GetKey())
		v := h.GetValue()
		if len(h.GetRawValue()) > 0 {
			v = string(h.GetRawValue())
		}
		if prev, ok := out[k]; ok {
			v = prev + "," + v
		}
		out[k] = v
	}
	return out
}

// privateLink reads the private-link TLVs. The typed form carries raw
// bytes; the untyped form is a UTF-8-sanitised string (invalid bytes become
// '!'), which is exact for AWS's ASCII id but may corrupt Azure's binary
// LinkID — so an untyped LinkID is used only when sanitising cannot have
// touched it.
func privateLink(md *corev3.Metadata) authz.PrivateLink {
	var pl authz.PrivateLink
	if md == nil {
		return pl
	}
	if anyv, ok := md.GetTypedFilterMetadata()[ProxyProtocolNamespace]; ok {
		var tlvs tlvv3.TlvsMetadata
		if anyv.UnmarshalTo(&tlvs) == nil {
			if b, ok := tlvs.GetTypedMetadata()[TLVKeyAzure]; ok {
				pl.AzureLinkID, pl.HasAzureLinkID = azureLinkID(b)
			}
			if b, ok := tlvs.GetTypedMetadata()[TLVKeyAWS]; ok {
				pl.AWSEndpointID = awsEndpointID(b)
			}
		}
	}
	st, ok := md.GetFilterMetadata()[ProxyProtocolNamespace]
	if !ok {
		return pl
	}
	fields := st.GetFields()
	if !pl.HasAzureLinkID {
		if s := stringField(fields, TLVKeyAzure); s != "" && !strings.Contains(s, "!") && utf8.ValidString(s) {
			pl.AzureLinkID, pl.HasAzureLinkID = azureLinkID([]byte(s))
		}
	}
	if pl.AWSEndpointID == "" {
		if s := stringField(fields, TLVKeyAWS); s != "" {
			pl.AWSEndpointID = awsEndpointID([]byte(s))
		}
	}
	return pl
}

func stringField(fields map[string]*structpb.Value, k string) string {
	if v, ok := fields[k]; ok {
		return v.GetStringValue()
	}
	return ""
}

// azureLinkID decodes Azure's TLV 0xEE: subtype 0x01, then a 4-byte
// little-endian LINKID.
func azureLinkID(b []byte) (uint32, bool) {
	if len(b) != 5 || b[0] != tlvSubtypeID {
		return 0, false
	}
	return binary.LittleEndian.Uint32(b[1:]), true
}

// awsEndpointID decodes AWS's TLV 0xEA: subtype 0x01, then the ASCII
// endpoint id.
func awsEndpointID(b []byte) string {
	if len(b) < 2 || b[0] != tlvSubtypeID {
		return ""
	}
	id := string(b[1:])
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return ""
		}
	}
	return id
}
