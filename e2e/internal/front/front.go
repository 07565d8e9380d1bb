package front

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// Front is a running front proxy.
type Front interface {
	// Name says which implementation runs: "go stand-in" or
	// "envoy (<binary>, <version>)".
	Name() string
	// Addr is the loopback address clients connect to. Tests keep
	// https://<vault>.vault.azure.net (port 443) in their URLs and map the
	// dial to Addr, so the Azure SDK's challenge check sees port 443.
	Addr() netip.AddrPort
	// Checks is the log of ext_authz calls, oldest first.
	Checks() []Check
}

// The namespaces and keys of Envoy's proxy_protocol listener filter, as
// envoy.yaml configures them (TLV types 0xEA and 0xEE).
const (
	ProxyProtocolNamespace = "envoy.filters.listener.proxy_protocol"
	ExtAuthzNamespace      = "envoy.filters.http.ext_authz"
	TLVAWS                 = 0xEA
	TLVAzure               = 0xEE
	KeyAWS                 = "aws_vpce_id"
	KeyAzure               = "azure_linkid"
)

// Options configure a front the way envoy.yaml configures Envoy. The zero
// value of every field is Envoy's default or envoy.yaml's choice, noted
// per field.
type Options struct {
	// EnvoyConfig names the shipped front-proxy file under envoy/ that a
	// real Envoy is started from ("envoy.yaml", "envoy-behind-l7.yaml");
	// Shipped sets it. Empty: envoy.yaml with ProxyProtocol, else
	// envoy-behind-l7.yaml. An absolute path names a test's variant of a
	// shipped file (one knob changed, say). The stand-in ignores it.
	EnvoyConfig string

	// AuthzAddr is host:port of the ext_authz gRPC server: plaintext h2, or
	// TLS with AuthzTLS.
	AuthzAddr string
	// AuthzTLS secures the ext_authz channel as envoy.yaml does: Envoy
	// presents a client certificate and verifies the server's name. nil
	// speaks plaintext (and a real Envoy's vaultwall cluster loses its
	// transport_socket).
	AuthzTLS *AuthzTLS
	// Upstream receives allowed requests (https or http). UpstreamCAs
	// verifies an https upstream; UpstreamCAPEM is the same CA for a real
	// Envoy, which reads it from a file (a CertPool cannot be written out).
	// A real Envoy keeps the vault cluster's sni and SAN match from the
	// shipped file (vault.internal): the upstream's certificate must carry
	// that name.
	Upstream      *url.URL
	UpstreamCAs   *x509.CertPool
	UpstreamCAPEM []byte

	// ServerCert is the listener's certificate; nil serves plaintext
	// HTTP/1.1 (a "no TLS" fixture: no principal, no tls_session).
	ServerCert *tls.Certificate
	// ClientCAs, when set, makes client certificates optional but
	// verified: requested, absent is fine, one not chaining to ClientCAs
	// fails the handshake (require_client_certificate: false +
	// validation_context).
	ClientCAs *x509.CertPool
	// ClientCAPEM is ClientCAs in PEM, for a real Envoy's trusted_ca.
	ClientCAPEM []byte
	// Domains are the virtual host's domains for a real Envoy (default
	// "*"); the stand-in has one route and matches no host. A file with
	// several virtual hosts (VirtualHosts) keeps its own: leave it empty.
	Domains []string
	// VirtualHosts are the virtual hosts of a file with several
	// (EnvoyMultiVault), as Shipped reads them; nil for a file with one.
	// A real Envoy picks one by :authority and answers 404 itself for a
	// host none lists. The stand-in sends the context_extensions of the
	// virtual host one of whose domains is the :authority (exact, ASCII
	// case-insensitive: the shipped domains have no wildcard), and, not
	// matching hosts, sends a host none lists to the authorizer with
	// ContextExtensions (never a 404): how a test reaches vaultwall's own
	// answer to a host it does not serve.
	VirtualHosts []VirtualHost

	// ProxyProtocol puts the proxy_protocol listener filter first: every
	// connection must open with a PROXY header unless
	// AllowWithoutProxyProtocol (allow_requests_without_proxy_protocol).
	ProxyProtocol             bool
	AllowWithoutProxyProtocol bool
	// TLVKeys maps TLV types to metadata keys (the filter's rules).
	// nil: 0xEA → aws_vpce_id, 0xEE → azure_linkid.
	TLVKeys map[byte]string

	// XFFTrustedHops is the HCM's xff_num_trusted_hops (use_remote_address
	// is always true: this is the edge).
	XFFTrustedHops int
	// LocalAddress is what Envoy appends to X-Forwarded-For when the peer is
	// loopback (its own address). Zero: the first non-loopback IPv4
	// interface address, else 127.0.0.1, as Envoy picks it.
	LocalAddress netip.Addr

	// Timeout is grpc_service.timeout; 0 means Envoy's 200 ms.
	Timeout time.Duration
	// StatusOnError is status_on_error; 0 means 403.
	StatusOnError int
	// FailureModeAllow lets a request through when the check fails (RPC
	// error or timeout), adding x-envoy-auth-failure-mode-allowed: true
	// (failure_mode_allow_header_add).
	FailureModeAllow bool
	// ValidateMutations turns invalid header mutations into a 500
	// (validate_mutations: true).
	ValidateMutations bool

	// ContextExtensions are the per-route check_settings.context_extensions
	// (a file with one virtual host: that virtual host's); for a host of
	// one of VirtualHosts, that virtual host's replace them.
	ContextExtensions map[string]string
	// MetadataNamespaces / TypedMetadataNamespaces are
	// metadata_context_namespaces / typed_metadata_context_namespaces.
	// nil: [envoy.filters.listener.proxy_protocol]; empty non-nil: none.
	MetadataNamespaces      []string
	TypedMetadataNamespaces []string
	// AllowedHeaders is allowed_headers; nil sends every header.
	// Pseudo-headers are not added automatically when it is set.
	AllowedHeaders func(name string) bool
	// OmitPeerCertificate / OmitTLSSession turn off
	// include_peer_certificate / include_tls_session (envoy.yaml has both
	// on; Istio leaves the certificate out).
	OmitPeerCertificate bool
	OmitTLSSession      bool
	// Routes are the virtual host's routes, in order: the first whose Path
	// is the request's path (without its query), or whose Prefix starts
	// it, is taken, and the router tells the upstream that route's timeout
	// in x-envoy-expected-rq-timeout-ms (none when it is 0: disabled). nil:
	// one catch-all route with Envoy's default 15 s.
	Routes []Route
	// EncodeRawHeaders is encode_raw_headers: the headers travel as
	// http.header_map (one entry per header field, raw bytes, unmerged,
	// unsanitised) instead of the http.headers map.
	EncodeRawHeaders bool
}

// VirtualHost is one virtual host of a file with several: its name, its
// domains and the ext_authz context_extensions it pins.
type VirtualHost struct {
	Name              string
	Domains           []string
	ContextExtensions map[string]string
}

func (v VirtualHost) equal(w VirtualHost) bool {
	return v.Name == w.Name && slices.Equal(v.Domains, w.Domains) && maps.Equal(v.ContextExtensions, w.ContextExtensions)
}

// contextExtensions are the context_extensions of a request to authority:
// its virtual host's (VirtualHosts), else ContextExtensions.
func (o Options) contextExtensions(authority string) map[string]string {
	for _, vh := range o.VirtualHosts {
		for _, d := range vh.Domains {
			if strings.EqualFold(d, authority) {
				return vh.ContextExtensions
			}
		}
	}
	return o.ContextExtensions
}

// Route is one route of the front's virtual host: a path or prefix match
// and the route's timeout.
type Route struct {
	Path, Prefix string
	Timeout      time.Duration
}

func (o Options) routes() []Route {
	if o.Routes != nil {
		return o.Routes
	}
	return []Route{{Prefix: "/", Timeout: 15 * time.Second}}
}

// routeTimeout is the timeout of the route a request path takes, and
// whether one matched.
func (o Options) routeTimeout(path string) (time.Duration, bool) {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	for _, r := range o.routes() {
		if r.Path != "" && r.Path == path || r.Path == "" && strings.HasPrefix(path, r.Prefix) {
			return r.Timeout, true
		}
	}
	return 0, false
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return 200 * time.Millisecond
}

func (o Options) statusOnError() int {
	if o.StatusOnError > 0 {
		return o.StatusOnError
	}
	return http.StatusForbidden
}

func (o Options) tlvKeys() map[byte]string {
	if o.TLVKeys != nil {
		return o.TLVKeys
	}
	return map[byte]string{TLVAWS: KeyAWS, TLVAzure: KeyAzure}
}

func (o Options) metadataNamespaces() []string {
	if o.MetadataNamespaces != nil {
		return o.MetadataNamespaces
	}
	return []string{ProxyProtocolNamespace}
}

func (o Options) typedMetadataNamespaces() []string {
	if o.TypedMetadataNamespaces != nil {
		return o.TypedMetadataNamespaces
	}
	return []string{ProxyProtocolNamespace}
}

// AuthzTLS is the client side of an mTLS ext_authz channel.
type AuthzTLS struct {
	// ServerName is the SNI sent and the DNS SAN required of the server's
	// certificate (envoy.yaml: vaultwall.internal).
	ServerName string
	// CAPEM verifies the server's certificate.
	CAPEM []byte
	// Certificate is the front's client certificate.
	Certificate tls.Certificate
}

// clientConfig is the TLS configuration the stand-in's gRPC client uses.
func (a *AuthzTLS) clientConfig() (*tls.Config, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(a.CAPEM) {
		return nil, errors.New("front: AuthzTLS.CAPEM holds no certificate")
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		ServerName:   a.ServerName,
		RootCAs:      roots,
		Certificates: []tls.Certificate{a.Certificate},
	}, nil
}

// Outcome is how the filter classified the ext_authz answer.
type Outcome string

// The outcomes, named after Envoy's ext_authz stats.
const (
	OK                 Outcome = "ok"                   // RPC OK, status.code 0: forwarded upstream
	Denied             Outcome = "denied"               // RPC OK, status.code ≠ 0: local reply
	Error              Outcome = "error"                // RPC failed or timed out: status_on_error
	FailureModeAllowed Outcome = "failure_mode_allowed" // RPC failed, failure_mode_allow: forwarded
	Invalid            Outcome = "invalid"              // validate_mutations refused the answer: 500
)

// Check is one ext_authz call and what the front did with its answer.
type Check struct {
	Request  *authv3.CheckRequest
	Response *authv3.CheckResponse // nil when the RPC failed
	Err      error                 // the RPC error, if any
	Outcome  Outcome
	// Status is the HTTP status the client got: the local reply's, or the
	// upstream's for forwarded requests.
	Status int
	// DynamicMetadata is what Envoy would store under
	// envoy.filters.http.ext_authz (ext_authz_duration added on OK).
	DynamicMetadata *structpb.Struct
	// Upstream holds the request headers sent upstream (forwarded
	// requests only), after the ok_response mutations.
	Upstream http.Header
}

// Environment variables that choose the front.
const (
	EnvEnvoyBin = "ENVOY_BIN"
	EnvFront    = "E2E_FRONT" // "standin" or "envoy" forces one
)

// NewFront starts the front the environment asks for — a real Envoy when
// ENVOY_BIN is set or envoy is on PATH (unless E2E_FRONT=standin), the Go
// stand-in otherwise — and logs which one runs.
func NewFront(t testing.TB, opts Options) Front {
	t.Helper()
	bin, why, err := chooseFront()
	if err != nil {
		t.Fatalf("front: %v", err)
	}
	if bin != "" {
		f := StartEnvoy(t, bin, opts)
		t.Logf("front: %s", f.Name())
		return f
	}
	f := StartStandIn(t, opts)
	t.Logf("front: %s (%s)", f.Name(), why)
	return f
}

// chooseFront is NewFront's choice: an Envoy binary, or "" for the
// stand-in, and why.
func chooseFront() (bin, why string, err error) {
	bin, why = envoyBinary()
	switch os.Getenv(EnvFront) {
	case "standin":
		return "", EnvFront + "=standin", nil
	case "envoy":
		if bin == "" {
			return "", why, fmt.Errorf("%s=envoy but no Envoy binary (%s)", EnvFront, why)
		}
	}
	return bin, why, nil
}

// Which names the front NewFront would start, for a suite's log: "go
// stand-in (<why>)" or "envoy (<binary>, <version>)".
func Which() string {
	bin, why, err := chooseFront()
	switch {
	case err != nil:
		return "none: " + err.Error()
	case bin == "":
		return "go stand-in (" + why + ")"
	}
	return "envoy (" + bin + ", " + envoyVersion(bin) + ")"
}

// RealEnvoy is the Envoy binary for a test that needs a real one
// (ENVOY_BIN, else envoy on PATH). Without one the test is skipped — or
// fails when E2E_FRONT=envoy, where a missing Envoy is a broken set-up (CI
// sets it), never a reason to pass. E2E_FRONT=standin skips it.
func RealEnvoy(tb testing.TB) string {
	tb.Helper()
	bin, why, err := chooseFront()
	switch {
	case err != nil:
		tb.Fatalf("front: %v", err)
	case bin == "":
		tb.Skipf("front: no real Envoy (%s)", why)
	}
	return bin
}

// envoyBinary finds a real Envoy and says why it did or did not.
func envoyBinary() (bin, why string) {
	if p := os.Getenv(EnvEnvoyBin); p != "" {
		return p, EnvEnvoyBin + "=" + p
	}
	if p, err := exec.LookPath("envoy"); err == nil {
		return p, "envoy on PATH"
	}
	return "", "no " + EnvEnvoyBin + " and no envoy on PATH"
}
