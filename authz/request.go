package authz

import (
	"net/netip"
	"time"
)

// Request is what the front proxy tells vaultwall about one HTTP request,
// translated from Envoy's CheckRequest. Nothing in it is trusted merely
// because it is present: stages decide what to believe.
type Request struct {
	// ID is the front proxy's stream id (Envoy: attributes.request.http.id).
	ID   string
	Time time.Time

	// Peer is the connection's remote address as the proxy saw it: the TCP
	// peer, or the source restored from a PROXY-protocol header. IPv4-mapped
	// IPv6 addresses are unmapped. Invalid when the proxy did not say.
	Peer netip.AddrPort
	// Principal is Envoy's source.principal: first URI SAN, else first DNS
	// SAN, else the subject DN of a verified client certificate; "" without.
	Principal string
	// CertificatePEM is the leaf client certificate (source.certificate
	// after URL-decoding); "" when the proxy did not include it.
	CertificatePEM string
	// TLS is true when the downstream connection used TLS (a principal or
	// SNI was reported, or the scheme is https).
	TLS bool
	// SNI is the TLS server name the client asked for, when reported.
	SNI string

	Method   string // :method
	Path     string // :path verbatim, query included
	Host     string // :authority
	Scheme   string // :scheme
	Protocol string // HTTP/1.1, HTTP/2, …

	// Headers are the request headers with lower-case names, duplicates
	// comma-joined, pseudo-headers included, as Envoy sends them.
	Headers map[string]string

	// PrivateLink carries the private-endpoint identity the PROXY-protocol
	// TLVs reported, if any.
	PrivateLink PrivateLink

	// ContextExtensions are the per-route context_extensions of the proxy.
	ContextExtensions map[string]string
}

// Header returns the value of the lower-case header name, "" if absent.
func (r *Request) Header(name string) string {
	if r.Headers == nil {
		return ""
	}
	return r.Headers[name]
}

// PrivateLink is a private-endpoint connection reported by the load balancer
// through PROXY-protocol v2 TLVs.
type PrivateLink struct {
	// AzureLinkID is the Azure Private Link LINKID (TLV 0xEE, subtype 0x01).
	AzureLinkID    uint32
	HasAzureLinkID bool
	// AWSEndpointID is the AWS VPC endpoint id (TLV 0xEA, subtype 0x01).
	AWSEndpointID string
}

// Present reports whether the request arrived over a private endpoint.
func (p PrivateLink) Present() bool { return p.HasAzureLinkID || p.AWSEndpointID != "" }
