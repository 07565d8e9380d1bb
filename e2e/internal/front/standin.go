package front

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	proxyproto "github.com/pires/go-proxyproto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// StandIn is the Go stand-in for Envoy: one listener with the
// proxy_protocol and TLS stages, the HTTP connection manager's header
// rules, the ext_authz filter and a router to one upstream.
type StandIn struct {
	opts      Options
	addr      netip.AddrPort
	local     netip.Addr // appended to XFF for loopback peers
	localCert *x509.Certificate
	authz     authv3.AuthorizationClient
	proxy     *httputil.ReverseProxy

	mu     sync.Mutex
	checks []*Check
}

var _ Front = (*StandIn)(nil)

// StartStandIn starts the stand-in on a loopback port until the test ends.
func StartStandIn(tb testing.TB, opts Options) *StandIn {
	tb.Helper()
	if opts.AuthzAddr == "" || opts.Upstream == nil {
		tb.Fatal("front: AuthzAddr and Upstream are required")
	}
	creds := insecure.NewCredentials()
	if opts.AuthzTLS != nil {
		cfg, err := opts.AuthzTLS.clientConfig()
		if err != nil {
			tb.Fatal(err)
		}
		creds = credentials.NewTLS(cfg)
	}
	cc, err := grpc.NewClient(opts.AuthzAddr, grpc.WithTransportCredentials(creds))
	if err != nil {
		tb.Fatalf("front: ext_authz client: %v", err)
	}
	tb.Cleanup(func() { cc.Close() })

	s := &StandIn{opts: opts, authz: authv3.NewAuthorizationClient(cc), local: opts.LocalAddress}
	if !s.local.IsValid() {
		s.local = envoyLocalAddress()
	}
	if opts.ServerCert != nil {
		s.localCert = opts.ServerCert.Leaf
		if s.localCert == nil && len(opts.ServerCert.Certificate) > 0 {
			s.localCert, _ = x509.ParseCertificate(opts.ServerCert.Certificate[0])
		}
	}
	s.proxy = s.reverseProxy()

	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("front: listen: %v", err)
	}
	s.addr = tcp.Addr().(*net.TCPAddr).AddrPort()
	var ln net.Listener = tcp
	if opts.ProxyProtocol {
		policy := proxyproto.REQUIRE
		if opts.AllowWithoutProxyProtocol {
			policy = proxyproto.USE
		}
		ln = &proxyproto.Listener{
			Listener:          tcp,
			ConnPolicy:        func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) { return policy, nil },
			ReadHeaderTimeout: 5 * time.Second,
		}
	}

	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second, // request_headers_timeout
		IdleTimeout:       300 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		ErrorLog: discardLog(),
	}
	done := make(chan struct{})
	if opts.ServerCert != nil {
		srv.TLSConfig = &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{*opts.ServerCert},
			NextProtos:   []string{"h2", "http/1.1"},
		}
		if opts.ClientCAs != nil {
			srv.TLSConfig.ClientAuth = tls.VerifyClientCertIfGiven
			srv.TLSConfig.ClientCAs = opts.ClientCAs
		}
		go func() { defer close(done); _ = srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { defer close(done); _ = srv.Serve(ln) }()
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
		<-done
	})
	return s
}

// Name implements Front.
func (s *StandIn) Name() string { return "go stand-in" }

// Addr implements Front.
func (s *StandIn) Addr() netip.AddrPort { return s.addr }

// Checks implements Front.
func (s *StandIn) Checks() []Check {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Check, len(s.checks))
	for i, c := range s.checks {
		out[i] = *c
	}
	return out
}

func (s *StandIn) record(c *Check) {
	s.mu.Lock()
	s.checks = append(s.checks, c)
	s.mu.Unlock()
}

func (s *StandIn) setStatus(c *Check, status int) {
	s.mu.Lock()
	c.Status = status
	s.mu.Unlock()
}

type connKey struct{}

// forwarded is what the router needs from the filter for one request.
type forwarded struct {
	check     *Check
	headers   headerMap
	responses []*corev3.HeaderValueOption // response_headers_to_add
	start     time.Time
}

type forwardedKey struct{}

// ServeHTTP is one stream: HCM header rules, the ext_authz call, and the
// answer applied as Envoy applies it.
func (s *StandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := s.stream(r)
	mutateRequestHeaders(&st.headers, st.peer.Addr(), st.tls, s.opts.XFFTrustedHops, s.local)
	cr := checkRequest(st, s.opts)

	ctx, cancel := context.WithTimeout(r.Context(), s.opts.timeout())
	began := time.Now()
	resp, err := s.authz.Check(ctx, cr)
	elapsed := time.Since(began)
	cancel()

	// Each branch records the check before the client can see an answer,
	// so a test that got its response always finds the check logged.
	c := &Check{Request: cr, Response: resp, Err: err}
	if err != nil {
		if !s.opts.FailureModeAllow {
			c.Outcome, c.Status = Error, s.opts.statusOnError()
			s.reply(w, c, "", nil)
			return
		}
		c.Outcome = FailureModeAllowed
		st.headers.set("x-envoy-auth-failure-mode-allowed", "true")
		s.forward(w, r, c, st.headers, nil)
		return
	}

	c.DynamicMetadata = dynamicMetadata(resp, elapsed)
	if resp.GetStatus().GetCode() != 0 {
		c.Outcome = Denied
		d := resp.GetDeniedResponse()
		c.Status = http.StatusForbidden
		if code := int(d.GetStatus().GetCode()); code > 0 {
			c.Status = code
		}
		if s.opts.ValidateMutations && !validMutations(d.GetHeaders(), nil) {
			c.Outcome, c.Status = Invalid, http.StatusInternalServerError
			s.reply(w, c, "", nil)
			return
		}
		s.reply(w, c, d.GetBody(), d.GetHeaders())
		return
	}

	ok := resp.GetOkResponse()
	if len(ok.GetQueryParametersToSet()) > 0 || len(ok.GetQueryParametersToRemove()) > 0 {
		// Not reproduced; fail loudly rather than forward a request Envoy
		// would have rewritten.
		c.Outcome, c.Status = Invalid, http.StatusInternalServerError
		s.reply(w, c, "go stand-in: query_parameters_to_set/_remove are not reproduced", nil)
		return
	}
	if s.opts.ValidateMutations && !validMutations(ok.GetHeaders(), ok.GetHeadersToRemove()) ||
		s.opts.ValidateMutations && !validMutations(ok.GetResponseHeadersToAdd(), nil) {
		c.Outcome, c.Status = Invalid, http.StatusInternalServerError
		s.reply(w, c, "", nil)
		return
	}
	c.Outcome = OK
	for _, o := range ok.GetHeaders() {
		applyToMap(&st.headers, o, false)
	}
	for _, k := range ok.GetHeadersToRemove() {
		if removable(k) {
			st.headers.remove(strings.ToLower(k))
		}
	}
	s.forward(w, r, c, st.headers, ok.GetResponseHeadersToAdd())
}

// stream gathers the connection's and the request's facts.
func (s *StandIn) stream(r *http.Request) *stream {
	st := &stream{
		id:        rand.Uint64(),
		start:     time.Now(),
		tls:       r.TLS != nil,
		localCert: s.localCert,
		protocol:  fmt.Sprintf("HTTP/%d.%d", r.ProtoMajor, r.ProtoMinor),
	}
	if r.ProtoMajor == 2 {
		st.protocol = "HTTP/2"
	}
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	if c != nil {
		st.peer = addrPort(c.RemoteAddr())
		st.local = addrPort(c.LocalAddr())
		st.tlvs = tlvsOf(c)
	}
	if r.TLS != nil {
		st.sni = r.TLS.ServerName
		if len(r.TLS.PeerCertificates) > 0 && len(r.TLS.VerifiedChains) > 0 {
			st.peerCert = r.TLS.PeerCertificates[0]
		}
	}
	st.headers = fromRequest(r, schemeOf(st.tls))
	return st
}

// addrPort keeps the family the connection had: a 4-byte IP is IPv4, a
// 16-byte one (even v4-mapped) is IPv6, as Envoy reports them.
func addrPort(a net.Addr) netip.AddrPort {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ip, uint16(ta.Port))
}

// tlvsOf reads the PROXY header's TLVs off the connection, under TLS or not.
func tlvsOf(c net.Conn) map[byte][]byte {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	pc, ok := c.(*proxyproto.Conn)
	if !ok || pc.ProxyHeader() == nil {
		return nil
	}
	tlvs, err := pc.ProxyHeader().TLVs()
	if err != nil {
		return nil
	}
	out := make(map[byte][]byte, len(tlvs))
	for _, t := range tlvs {
		out[byte(t.Type)] = t.Value
	}
	return out
}

// reply records c and sends its local reply.
func (s *StandIn) reply(w http.ResponseWriter, c *Check, body string, headers []*corev3.HeaderValueOption) {
	s.record(c)
	localReply(w, c.Status, body, headers, c.Request.GetAttributes().GetRequest().GetHttp().GetProtocol() == "HTTP/2")
}

// forward records c and sends the request upstream with the filter's
// headers; the router fills in the status and upstream headers.
func (s *StandIn) forward(w http.ResponseWriter, r *http.Request, c *Check, h headerMap, respHeaders []*corev3.HeaderValueOption) {
	s.record(c)
	f := &forwarded{check: c, headers: h, responses: respHeaders, start: time.Now()}
	s.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), forwardedKey{}, f)))
}

func (s *StandIn) reverseProxy() *httputil.ReverseProxy {
	up := s.opts.Upstream
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: s.opts.UpstreamCAs, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
		IdleConnTimeout:   30 * time.Second,
	}
	return &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			f := pr.In.Context().Value(forwardedKey{}).(*forwarded)
			out := pr.Out
			out.Header = http.Header{}
			for _, e := range f.headers {
				switch e.key {
				case ":authority":
					out.Host = e.value
				case ":method":
					out.Method = e.value
				case ":path":
					if u, err := url.ParseRequestURI(e.value); err == nil {
						out.URL.Path, out.URL.RawPath, out.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
					}
				default:
					if e.key[0] != ':' {
						out.Header.Add(e.key, e.value)
					}
				}
			}
			out.URL.Scheme, out.URL.Host = up.Scheme, up.Host
			// The router's own header: the route's timeout.
			if path, ok := f.headers.get(":path"); ok {
				if to, ok := s.opts.routeTimeout(path); ok && to > 0 {
					out.Header.Set("X-Envoy-Expected-Rq-Timeout-Ms", strconv.FormatInt(to.Milliseconds(), 10))
				}
			}
			s.mu.Lock()
			f.check.Upstream = out.Header.Clone()
			s.mu.Unlock()
		},
		ModifyResponse: func(resp *http.Response) error {
			f := resp.Request.Context().Value(forwardedKey{}).(*forwarded)
			for _, o := range f.responses {
				applyToHeader(resp.Header, o)
			}
			resp.Header.Set("Server", "envoy")
			resp.Header.Set("X-Envoy-Upstream-Service-Time", strconv.FormatInt(time.Since(f.start).Milliseconds(), 10))
			s.setStatus(f.check, resp.StatusCode)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			f := r.Context().Value(forwardedKey{}).(*forwarded)
			status := http.StatusServiceUnavailable
			if errors.Is(err, context.DeadlineExceeded) {
				status = http.StatusGatewayTimeout
			}
			s.setStatus(f.check, status)
			localReply(w, status, "upstream connect error or disconnect/reset before headers. reset reason: connection failure", nil, false)
		},
		ErrorLog: discardLog(),
	}
}

// localReply is Envoy's sendLocalReply: the headers the filter was given
// (honouring their append actions), text/plain for a non-empty body
// unless a content-type was set, and Envoy's server header.
// An empty reply over HTTP/2 carries no content-length (Envoy ends the
// stream with the headers), over HTTP/1.1 content-length: 0.
func localReply(w http.ResponseWriter, status int, body string, headers []*corev3.HeaderValueOption, h2 bool) {
	if status < 100 || status > 999 {
		status = http.StatusForbidden
	}
	h := w.Header()
	for _, o := range headers {
		applyToHeader(h, o)
	}
	if body != "" && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/plain")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if body == "" && h2 {
		h["Content-Length"] = nil // a nil value stops net/http adding one
	}
	h.Set("Server", "envoy")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// dynamicMetadata is what Envoy stores under envoy.filters.http.ext_authz:
// ok_response.dynamic_metadata (deprecated) wins over the top-level field,
// and an OK answer with metadata gains ext_authz_duration in ms.
func dynamicMetadata(resp *authv3.CheckResponse, elapsed time.Duration) *structpb.Struct {
	md := resp.GetDynamicMetadata()
	if ok := resp.GetOkResponse(); ok != nil && ok.GetDynamicMetadata() != nil {
		md = ok.GetDynamicMetadata()
	}
	if len(md.GetFields()) == 0 {
		return nil
	}
	md = proto.Clone(md).(*structpb.Struct)
	if resp.GetStatus().GetCode() == 0 {
		md.Fields["ext_authz_duration"] = structpb.NewNumberValue(float64(elapsed.Milliseconds()))
	}
	return md
}

func validMutations(hs []*corev3.HeaderValueOption, removes []string) bool {
	for _, o := range hs {
		if _, invalid := actionOf(o, false); invalid || !validHeader(o.GetHeader().GetKey(), headerValue(o.GetHeader())) {
			return false
		}
	}
	for _, k := range removes {
		if !validHeader(k, "") {
			return false
		}
	}
	return true
}

// envoyLocalAddress is the address Envoy's HCM appends to XFF for loopback
// peers: the first non-loopback IPv4 address of the host.
func envoyLocalAddress() netip.Addr {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				ip = ip.Unmap()
				if ip.Is4() && !ip.IsLoopback() {
					return ip
				}
			}
		}
	}
	return netip.MustParseAddr("127.0.0.1")
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }
