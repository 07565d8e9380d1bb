package front

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	proxyprotocolv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/proxy_protocol/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	// Types the shipped files name only inside Any payloads: imported so
	// that they resolve when a file is read and written back.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/downstream_connections/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/fixed_heap/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// The shipped front-proxy files, under envoy/ in the repository.
const (
	EnvoyL4 = "envoy.yaml"           // behind an L4 load balancer: PROXY v2, private-link TLVs
	EnvoyL7 = "envoy-behind-l7.yaml" // behind one L7 load balancer: one trusted XFF hop
	// EnvoyMultiVault is envoy.yaml with one virtual host per vault
	// (contoso-vault, fabrikam-vault), each pinning its vault with the
	// ext_authz filter's context_extensions {vault: <name>}.
	EnvoyMultiVault = "envoy-multi-vault.yaml"
)

// Shipped reads the behaviour of a shipped front-proxy file (EnvoyL4,
// EnvoyL7 or EnvoyMultiVault) into Options: PROXY protocol and its TLV
// rules, the HCM's trusted X-Forwarded-For hops, the virtual hosts' routes
// and ext_authz context_extensions (VirtualHosts for a file with several
// virtual hosts), and the ext_authz filter's timeout,
// status_on_error, failure mode, mutation validation, metadata namespaces
// and peer-certificate / TLS-session inclusion. The stand-in then behaves
// as that file configures Envoy, and StartEnvoy refuses options that differ
// from it. The caller adds the test's environment: AuthzAddr, AuthzTLS,
// Upstream, certificates.
//
// A file using something the stand-in does not reproduce (allowed_headers,
// with_request_body, use_remote_address false, skip_xff_append) is an
// error, so the stand-in never silently runs a different configuration.
func Shipped(name string) (Options, error) {
	p, err := loadFront(name)
	if err != nil {
		return Options{}, err
	}
	return p.options()
}

// frontParts are the pieces of a shipped file the suite reads and patches,
// with their Any payloads opened; pack writes the changes back.
type frontParts struct {
	name      string // the file's base name
	path      string // as given to loadFront
	bootstrap *bootstrapv3.Bootstrap
	listener  *listenerv3.Listener

	ppFilter *listenerv3.ListenerFilter // nil without PROXY protocol
	pp       *proxyprotocolv3.ProxyProtocol

	tlsSocket *corev3.TransportSocket // the listener's; nil for plaintext
	tls       *tlsv3.DownstreamTlsContext

	hcmFilter *listenerv3.Filter
	hcm       *hcmv3.HttpConnectionManager

	authzFilter *hcmv3.HttpFilter
	authz       *extauthzv3.ExtAuthz

	authzCluster *clusterv3.Cluster // ext_authz's envoy_grpc cluster
	vaultCluster *clusterv3.Cluster // the routes' cluster
}

// loadFront reads envoy/<name> from the module root as Envoy reads YAML;
// an absolute name is read as it is (a test's variant of a shipped file).
func loadFront(name string) (*frontParts, error) {
	path := name
	if !filepath.IsAbs(name) {
		root, err := moduleRoot()
		if err != nil {
			return nil, fmt.Errorf("front: module root: %w", err)
		}
		path = filepath.Join(root, "envoy", name)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("front: %w", err)
	}
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("front: %s: %w", name, err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := (protojson.UnmarshalOptions{Resolver: protoregistry.GlobalTypes}).Unmarshal(j, b); err != nil {
		return nil, fmt.Errorf("front: %s: %w", name, err)
	}
	p, err := openFront(b)
	if err != nil {
		return nil, fmt.Errorf("front: %s: %w", name, err)
	}
	p.name = filepath.Base(name)
	p.path = name
	return p, nil
}

func openFront(b *bootstrapv3.Bootstrap) (*frontParts, error) {
	p := &frontParts{bootstrap: b}
	sr := b.GetStaticResources()
	if n := len(sr.GetListeners()); n != 1 {
		return nil, fmt.Errorf("%d listeners, want the one front listener", n)
	}
	p.listener = sr.GetListeners()[0]
	for _, lf := range p.listener.GetListenerFilters() {
		if lf.GetName() != "envoy.filters.listener.proxy_protocol" {
			continue
		}
		p.ppFilter, p.pp = lf, &proxyprotocolv3.ProxyProtocol{}
		if err := lf.GetTypedConfig().UnmarshalTo(p.pp); err != nil {
			return nil, fmt.Errorf("proxy_protocol: %w", err)
		}
	}
	if n := len(p.listener.GetFilterChains()); n != 1 {
		return nil, fmt.Errorf("%d filter chains, want one", n)
	}
	fc := p.listener.GetFilterChains()[0]
	if ts := fc.GetTransportSocket(); ts != nil {
		p.tlsSocket, p.tls = ts, &tlsv3.DownstreamTlsContext{}
		if err := ts.GetTypedConfig().UnmarshalTo(p.tls); err != nil {
			return nil, fmt.Errorf("listener TLS: %w", err)
		}
	}
	for _, f := range fc.GetFilters() {
		if f.GetName() == "envoy.filters.network.http_connection_manager" {
			p.hcmFilter, p.hcm = f, &hcmv3.HttpConnectionManager{}
			if err := f.GetTypedConfig().UnmarshalTo(p.hcm); err != nil {
				return nil, fmt.Errorf("http_connection_manager: %w", err)
			}
		}
	}
	if p.hcm == nil {
		return nil, errors.New("no http_connection_manager")
	}
	for _, hf := range p.hcm.GetHttpFilters() {
		if hf.GetName() == "envoy.filters.http.ext_authz" {
			p.authzFilter, p.authz = hf, &extauthzv3.ExtAuthz{}
			if err := hf.GetTypedConfig().UnmarshalTo(p.authz); err != nil {
				return nil, fmt.Errorf("ext_authz: %w", err)
			}
		}
	}
	if p.authz == nil {
		return nil, errors.New("no ext_authz filter")
	}
	authzName := p.authz.GetGrpcService().GetEnvoyGrpc().GetClusterName()
	vaultNames := map[string]bool{}
	for _, vh := range p.hcm.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if c := r.GetRoute().GetCluster(); c != "" {
				vaultNames[c] = true
			}
		}
	}
	if len(vaultNames) != 1 {
		return nil, fmt.Errorf("routes name clusters %v, want exactly one vault cluster", slices.Sorted(maps.Keys(vaultNames)))
	}
	for _, c := range sr.GetClusters() {
		switch {
		case c.GetName() == authzName:
			p.authzCluster = c
		case vaultNames[c.GetName()]:
			p.vaultCluster = c
		}
	}
	if p.authzCluster == nil || p.vaultCluster == nil {
		return nil, fmt.Errorf("ext_authz cluster %q or vault cluster %v not defined", authzName, slices.Sorted(maps.Keys(vaultNames)))
	}
	return p, nil
}

// options is the file's behaviour as stand-in Options.
func (p *frontParts) options() (Options, error) {
	o := Options{EnvoyConfig: p.path}
	var errs []error
	if p.pp != nil {
		o.ProxyProtocol = true
		o.AllowWithoutProxyProtocol = p.pp.GetAllowRequestsWithoutProxyProtocol()
		o.TLVKeys = map[byte]string{}
		for _, r := range p.pp.GetRules() {
			kv := r.GetOnTlvPresent()
			if ns := kv.GetMetadataNamespace(); ns != "" && ns != ProxyProtocolNamespace {
				errs = append(errs, fmt.Errorf("proxy_protocol rule for TLV %d writes to namespace %q; the stand-in writes %s", r.GetTlvType(), ns, ProxyProtocolNamespace))
			}
			o.TLVKeys[byte(r.GetTlvType())] = kv.GetKey()
		}
	}
	h := p.hcm
	if !h.GetUseRemoteAddress().GetValue() {
		errs = append(errs, errors.New("use_remote_address is not true; the stand-in is an edge proxy"))
	}
	if h.GetSkipXffAppend() {
		errs = append(errs, errors.New("skip_xff_append is not reproduced by the stand-in"))
	}
	o.XFFTrustedHops = int(h.GetXffNumTrustedHops())
	vhs := h.GetRouteConfig().GetVirtualHosts()
	if len(vhs) == 0 {
		errs = append(errs, errors.New("no virtual host"))
	}
	for i, vh := range vhs {
		var routes []Route
		for j, r := range vh.GetRoutes() {
			rt := Route{Path: r.GetMatch().GetPath(), Prefix: r.GetMatch().GetPrefix(), Timeout: 15 * time.Second}
			if t := r.GetRoute().GetTimeout(); t != nil {
				rt.Timeout = t.AsDuration()
			}
			if rt.Path == "" && rt.Prefix == "" || r.GetRoute() == nil {
				errs = append(errs, fmt.Errorf("virtual host %s, route %d: only path or prefix matches routed to a cluster are reproduced", vh.GetName(), j))
			}
			if len(r.GetTypedPerFilterConfig()) > 0 {
				errs = append(errs, fmt.Errorf("virtual host %s, route %d: per-route filter config is not reproduced (pin on the virtual host)", vh.GetName(), j))
			}
			routes = append(routes, rt)
		}
		pin, err := vhostContextExtensions(vh.GetTypedPerFilterConfig(), p.authzFilter.GetName())
		if err != nil {
			errs = append(errs, fmt.Errorf("virtual host %s: %w", vh.GetName(), err))
		}
		if i == 0 {
			o.Routes = routes
		} else if !slices.Equal(routes, o.Routes) {
			errs = append(errs, fmt.Errorf("virtual host %s routes differently from %s; the stand-in has one route table", vh.GetName(), vhs[0].GetName()))
		}
		if len(vhs) == 1 {
			o.ContextExtensions = pin
		} else {
			o.VirtualHosts = append(o.VirtualHosts, VirtualHost{Name: vh.GetName(), Domains: append([]string(nil), vh.GetDomains()...), ContextExtensions: pin})
		}
	}

	a := p.authz
	o.Timeout = a.GetGrpcService().GetTimeout().AsDuration()
	if a.GetGrpcService().GetTimeout() == nil {
		o.Timeout = 200 * time.Millisecond
	}
	o.StatusOnError = int(a.GetStatusOnError().GetCode())
	if o.StatusOnError == 0 {
		o.StatusOnError = 403
	}
	o.FailureModeAllow = a.GetFailureModeAllow()
	if o.FailureModeAllow && !a.GetFailureModeAllowHeaderAdd() {
		errs = append(errs, errors.New("failure_mode_allow without failure_mode_allow_header_add is not reproduced"))
	}
	o.ValidateMutations = a.GetValidateMutations()
	o.MetadataNamespaces = append([]string{}, a.GetMetadataContextNamespaces()...)
	o.TypedMetadataNamespaces = append([]string{}, a.GetTypedMetadataContextNamespaces()...)
	o.OmitPeerCertificate = !a.GetIncludePeerCertificate()
	o.OmitTLSSession = !a.GetIncludeTlsSession()
	if a.GetAllowedHeaders() != nil || a.GetDisallowedHeaders() != nil {
		errs = append(errs, errors.New("allowed_headers / disallowed_headers are not read into Options"))
	}
	if a.GetWithRequestBody() != nil {
		errs = append(errs, errors.New("with_request_body is not reproduced by the stand-in"))
	}
	o.EncodeRawHeaders = a.GetEncodeRawHeaders()
	if err := errors.Join(errs...); err != nil {
		return Options{}, fmt.Errorf("front: %s: %w", p.name, err)
	}
	return o, nil
}

// vhostContextExtensions is a virtual host's ext_authz
// check_settings.context_extensions (nil without), from its
// typed_per_filter_config; any other per-filter setting is refused, as the
// stand-in reproduces none.
func vhostContextExtensions(per map[string]*anypb.Any, authzFilter string) (map[string]string, error) {
	var out map[string]string
	for name, a := range per {
		if name != authzFilter {
			return nil, fmt.Errorf("typed_per_filter_config for %s is not reproduced", name)
		}
		pr := &extauthzv3.ExtAuthzPerRoute{}
		if err := a.UnmarshalTo(pr); err != nil {
			return nil, fmt.Errorf("typed_per_filter_config %s: %w", name, err)
		}
		cs := pr.GetCheckSettings()
		if pr.GetDisabled() || cs == nil {
			return nil, errors.New("ext_authz disabled per virtual host is not reproduced")
		}
		ce := cs.GetContextExtensions()
		cs.ContextExtensions = nil
		if !proto.Equal(cs, &extauthzv3.CheckSettings{}) {
			return nil, errors.New("check_settings other than context_extensions are not reproduced")
		}
		if len(ce) > 0 {
			out = maps.Clone(ce)
		}
	}
	return out, nil
}

// knobs are the Options fields that describe Envoy's behaviour rather than
// the test's environment, with defaults made explicit.
type knobs struct {
	ProxyProtocol, AllowWithoutProxyProtocol bool
	TLVKeys                                  map[byte]string
	XFFTrustedHops                           int
	Timeout                                  time.Duration
	StatusOnError                            int
	FailureModeAllow, ValidateMutations      bool
	MetadataNamespaces                       []string
	TypedMetadataNamespaces                  []string
	OmitPeerCertificate, OmitTLSSession      bool
	AllowedHeaders                           bool
	EncodeRawHeaders                         bool
	Routes                                   []Route
	ContextExtensions                        map[string]string
	VirtualHosts                             []VirtualHost
}

func (o Options) knobs() knobs {
	k := knobs{
		ProxyProtocol:             o.ProxyProtocol,
		AllowWithoutProxyProtocol: o.AllowWithoutProxyProtocol,
		XFFTrustedHops:            o.XFFTrustedHops,
		Timeout:                   o.timeout(),
		StatusOnError:             o.statusOnError(),
		FailureModeAllow:          o.FailureModeAllow,
		ValidateMutations:         o.ValidateMutations,
		MetadataNamespaces:        o.metadataNamespaces(),
		TypedMetadataNamespaces:   o.typedMetadataNamespaces(),
		OmitPeerCertificate:       o.OmitPeerCertificate,
		OmitTLSSession:            o.OmitTLSSession,
		AllowedHeaders:            o.AllowedHeaders != nil,
		EncodeRawHeaders:          o.EncodeRawHeaders,
		Routes:                    o.routes(),
		ContextExtensions:         o.ContextExtensions,
		VirtualHosts:              o.VirtualHosts,
	}
	if o.ProxyProtocol {
		k.TLVKeys = o.tlvKeys()
	}
	return k
}

// knobDiff lists the behaviour knobs on which two options differ.
func knobDiff(got, want Options) []string {
	g, w := got.knobs(), want.knobs()
	var out []string
	add := func(name string, a, b any) {
		out = append(out, fmt.Sprintf("%s: options say %v, the file %v", name, a, b))
	}
	if g.ProxyProtocol != w.ProxyProtocol {
		add("proxy protocol", g.ProxyProtocol, w.ProxyProtocol)
	}
	if g.AllowWithoutProxyProtocol != w.AllowWithoutProxyProtocol {
		add("allow_requests_without_proxy_protocol", g.AllowWithoutProxyProtocol, w.AllowWithoutProxyProtocol)
	}
	if !maps.Equal(g.TLVKeys, w.TLVKeys) {
		add("TLV rules", g.TLVKeys, w.TLVKeys)
	}
	if g.XFFTrustedHops != w.XFFTrustedHops {
		add("xff_num_trusted_hops", g.XFFTrustedHops, w.XFFTrustedHops)
	}
	if g.Timeout != w.Timeout {
		add("ext_authz timeout", g.Timeout, w.Timeout)
	}
	if g.StatusOnError != w.StatusOnError {
		add("status_on_error", g.StatusOnError, w.StatusOnError)
	}
	if g.FailureModeAllow != w.FailureModeAllow {
		add("failure_mode_allow", g.FailureModeAllow, w.FailureModeAllow)
	}
	if g.ValidateMutations != w.ValidateMutations {
		add("validate_mutations", g.ValidateMutations, w.ValidateMutations)
	}
	if !slices.Equal(g.MetadataNamespaces, w.MetadataNamespaces) {
		add("metadata_context_namespaces", g.MetadataNamespaces, w.MetadataNamespaces)
	}
	if !slices.Equal(g.TypedMetadataNamespaces, w.TypedMetadataNamespaces) {
		add("typed_metadata_context_namespaces", g.TypedMetadataNamespaces, w.TypedMetadataNamespaces)
	}
	if g.OmitPeerCertificate != w.OmitPeerCertificate {
		add("omit peer certificate", g.OmitPeerCertificate, w.OmitPeerCertificate)
	}
	if g.OmitTLSSession != w.OmitTLSSession {
		add("omit TLS session", g.OmitTLSSession, w.OmitTLSSession)
	}
	if !slices.Equal(g.Routes, w.Routes) {
		add("routes", g.Routes, w.Routes)
	}
	if g.EncodeRawHeaders != w.EncodeRawHeaders {
		add("encode_raw_headers", g.EncodeRawHeaders, w.EncodeRawHeaders)
	}
	if !maps.Equal(g.ContextExtensions, w.ContextExtensions) {
		add("context_extensions", g.ContextExtensions, w.ContextExtensions)
	}
	if !slices.EqualFunc(g.VirtualHosts, w.VirtualHosts, VirtualHost.equal) {
		add("virtual hosts", g.VirtualHosts, w.VirtualHosts)
	}
	if g.AllowedHeaders != w.AllowedHeaders {
		add("allowed_headers set", g.AllowedHeaders, w.AllowedHeaders)
	}
	return out
}

// repack writes an opened payload back into its holder's typed_config.
func repack(holder any, m proto.Message) error {
	a, err := anypb.New(m)
	if err != nil {
		return err
	}
	switch h := holder.(type) {
	case *corev3.TransportSocket:
		h.ConfigType = &corev3.TransportSocket_TypedConfig{TypedConfig: a}
	case *listenerv3.Filter:
		h.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
	case *listenerv3.ListenerFilter:
		h.ConfigType = &listenerv3.ListenerFilter_TypedConfig{TypedConfig: a}
	default:
		return fmt.Errorf("front: cannot repack into %T", holder)
	}
	return nil
}

// Variant writes into tb's temporary directory a copy of the shipped file
// name with edits applied (pairs of old, new text; each old must occur
// exactly once) and returns its absolute path, for Shipped and
// Options.EnvoyConfig: a deliberate, named departure from the file — one
// knob changed — that both fronts then run.
func Variant(tb testing.TB, name string, edits ...string) string {
	tb.Helper()
	if len(edits)%2 != 0 {
		tb.Fatal("front.Variant: edits come in pairs")
	}
	root, err := moduleRoot()
	if err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "envoy", name))
	if err != nil {
		tb.Fatal(err)
	}
	s := string(b)
	for i := 0; i < len(edits); i += 2 {
		if n := strings.Count(s, edits[i]); n != 1 {
			tb.Fatalf("front.Variant: %q occurs %d times in %s, want once", edits[i], n, name)
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	path := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// WithEncodeRawHeaders is Variant's edit that turns the ext_authz filter's
// encode_raw_headers on in either shipped file.
var WithEncodeRawHeaders = []string{
	"              include_tls_session: true\n",
	"              include_tls_session: true\n              encode_raw_headers: true\n",
}
