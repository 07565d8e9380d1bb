package front

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// ProxyHeader is a PROXY protocol v2 header a test client writes before
// its TLS handshake — how a test claims a source address (an L4 load
// balancer's view of the client) and private-link TLVs.
type ProxyHeader struct {
	// Source is the client address the header claims. Its family picks
	// TCP over IPv4 or IPv6.
	Source netip.AddrPort
	// Destination defaults to the front's port on 127.0.0.1 or ::1.
	Destination netip.AddrPort
	TLVs        []proxyproto.TLV
}

// AWSVPCE is AWS PrivateLink's TLV 0xEA: subtype 0x01 then the ASCII
// endpoint id.
func AWSVPCE(id string) proxyproto.TLV {
	return proxyproto.TLV{Type: TLVAWS, Value: append([]byte{0x01}, id...)}
}

// AzureLinkID is Azure Private Link's TLV 0xEE: subtype 0x01 then the
// LINKID as a 4-byte little-endian uint32.
func AzureLinkID(id uint32) proxyproto.TLV {
	v := []byte{0x01, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(v[1:], id)
	return proxyproto.TLV{Type: TLVAzure, Value: v}
}

func (p *ProxyHeader) header(front netip.AddrPort) (*proxyproto.Header, error) {
	src := p.Source
	if !src.IsValid() {
		return nil, fmt.Errorf("front: PROXY header without a source address")
	}
	dst := p.Destination
	h := &proxyproto.Header{Version: 2, Command: proxyproto.PROXY}
	if src.Addr().Is4() {
		if !dst.IsValid() {
			dst = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), front.Port())
		}
		if !dst.Addr().Is4() {
			return nil, fmt.Errorf("front: PROXY header mixes IPv4 source %s and IPv6 destination %s", src, dst)
		}
		h.TransportProtocol = proxyproto.TCPv4
	} else {
		if !dst.IsValid() {
			dst = netip.AddrPortFrom(netip.IPv6Loopback(), front.Port())
		}
		if dst.Addr().Is4() {
			dst = netip.AddrPortFrom(netip.AddrFrom16(dst.Addr().As16()), dst.Port())
		}
		h.TransportProtocol = proxyproto.TCPv6
	}
	h.SourceAddr = net.TCPAddrFromAddrPort(src)
	h.DestinationAddr = net.TCPAddrFromAddrPort(dst)
	if len(p.TLVs) > 0 {
		if err := h.SetTLVs(p.TLVs); err != nil {
			return nil, fmt.Errorf("front: PROXY TLVs: %w", err)
		}
	}
	return h, nil
}

// Dial opens a TCP connection to a front and, when ph is set, writes the
// PROXY v2 header first.
func Dial(ctx context.Context, front netip.AddrPort, ph *ProxyHeader) (net.Conn, error) {
	return DialFrom(ctx, netip.Addr{}, front, ph)
}

// DialFrom is Dial from a chosen local address (any when invalid).
func DialFrom(ctx context.Context, local netip.Addr, front netip.AddrPort, ph *ProxyHeader) (net.Conn, error) {
	var d net.Dialer
	if local.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
	}
	c, err := d.DialContext(ctx, "tcp", front.String())
	if err != nil {
		return nil, err
	}
	if ph == nil {
		return c, nil
	}
	h, err := ph.header(front)
	if err != nil {
		c.Close()
		return nil, err
	}
	if _, err := h.WriteTo(c); err != nil {
		c.Close()
		return nil, fmt.Errorf("front: write PROXY header: %w", err)
	}
	return c, nil
}

// Client is one test client's identity on the wire.
type Client struct {
	// ServerName is the SNI and the name the server certificate must
	// carry; empty takes the request URL's host.
	ServerName string
	// RootCAs verifies the front's certificate.
	RootCAs *x509.CertPool
	// Certificate is the client certificate offered, if any.
	Certificate *tls.Certificate
	// Proxy, when set, is written at the start of every connection.
	Proxy *ProxyHeader
	// LocalAddr, when valid, is the address connections are made from. A
	// test's layer-7 load balancer needs a non-loopback one (see
	// HostAddress): for a loopback peer Envoy appends its own address to
	// X-Forwarded-For instead of the peer's.
	LocalAddr netip.Addr
	// HTTP1 disables h2 in ALPN.
	HTTP1 bool
}

// TLSConfig is the client's TLS configuration.
func (c Client) TLSConfig() *tls.Config {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    c.RootCAs,
		ServerName: c.ServerName,
		NextProtos: []string{"h2", "http/1.1"},
	}
	if c.HTTP1 {
		cfg.NextProtos = []string{"http/1.1"}
	}
	if c.Certificate != nil {
		// Present the certificate whatever CA names the server asks for,
		// as curl and OpenSSL clients do; Go's default would silently send
		// none when the issuer is not in the server's list.
		cert := c.Certificate
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return cfg
}

// DialContext dials front whatever address the caller asks for: every
// URL, whatever its host and port, reaches the front.
func (c Client) DialContext(front netip.AddrPort) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		return DialFrom(ctx, c.LocalAddr, front, c.Proxy)
	}
}

// Transport is an http.Transport speaking to front as this client.
func (c Client) Transport(front netip.AddrPort) *http.Transport {
	return &http.Transport{
		DialContext:         c.DialContext(front),
		TLSClientConfig:     c.TLSConfig(),
		ForceAttemptHTTP2:   !c.HTTP1,
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConnsPerHost: 4,
	}
}

// HTTPClient is an http.Client speaking to front as this client. Its idle
// connections close when the test ends.
func (c Client) HTTPClient(tb interface{ Cleanup(func()) }, front netip.AddrPort) *http.Client {
	tr := c.Transport(front)
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// HostAddress is the host's first non-loopback address of the family of
// like (IPv4 or IPv6; link-local excluded), invalid when there is none.
// Connections from it reach a loopback listener but do not look like
// loopback to the front.
func HostAddress(like netip.Addr) netip.Addr {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.Is4() == like.Is4() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
			return ip
		}
	}
	return netip.Addr{}
}
