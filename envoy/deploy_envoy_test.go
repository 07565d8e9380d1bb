package envoy_test

// Loading the shipped front-proxy files with Envoy's own API definitions
// (go-control-plane), validating every message including those packed in
// Any, and checking the settings vaultwall's decisions depend on.

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	proxyprotocolv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/proxy_protocol/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	udpatypev1 "github.com/cncf/xds/go/udpa/type/v1"
	xdstypev3 "github.com/cncf/xds/go/xds/type/v3"
	yamlv3 "go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	// Extensions the shipped files use only by type: imported so that their
	// Any payloads resolve and validate.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/downstream_connections/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/fixed_heap/v3"
)

// frontFile is one shipped front-proxy configuration and what the vaultwall
// config deployed with it must say.
type frontFile struct {
	name string
	// proxyProtocol: the listener expects PROXY protocol v2 with the
	// private-link TLVs (behind an L4 load balancer).
	proxyProtocol bool
	// trustedHops is Envoy's xff_num_trusted_hops, which must equal
	// vaultwall's network.trustedProxies.hops.
	trustedHops uint32
	// vaults, when set, makes this a multi-vault file: one virtual host per
	// vault, each pinning its vault with the ext_authz per-filter config's
	// context_extensions {vault: <name>} (checkVaultPins), these exactly.
	vaults []string
	// sameAs names the shipped file this one must equal except for its
	// virtual hosts (checkSameAsBase).
	sameAs string
	// port is the listener's port, filled in by checkFront: a vault's
	// domains are <vault>.vault.azure.net with or without it.
	port uint32
}

var frontFiles = []frontFile{
	{name: "envoy.yaml", proxyProtocol: true, trustedHops: 0},
	{name: "envoy-behind-l7.yaml", proxyProtocol: false, trustedHops: 1},
	{name: "envoy-multi-vault.yaml", proxyProtocol: true, trustedHops: 0,
		vaults: []string{"contoso-vault", "fabrikam-vault"}, sameAs: "envoy.yaml"},
}

func frontFileNamed(name string) (frontFile, bool) {
	for _, f := range frontFiles {
		if f.name == name {
			return f, true
		}
	}
	return frontFile{}, false
}

const (
	nsProxyProtocol = "envoy.filters.listener.proxy_protocol"
	nsExtAuthz      = "envoy.filters.http.ext_authz"
	authzHealthName = "envoy.service.auth.v3.Authorization"
	httpOptionsKey  = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	maxCheckTimeout = time.Second
)

// decisionMetadataKeys are the dynamic metadata keys vaultwall sets under
// envoy.filters.http.ext_authz; the access log must carry each.
var decisionMetadataKeys = []string{
	"decision_id", "allowed", "stage", "operation", "code", "network_rule",
	"policy_rule", "client_ip", "trusted_service", "private_endpoint",
}

// headersVaultwallReads are request headers the Check must carry: what
// vaultwall decides on, and its own header names (sampled), whose
// client-sent copies it must see to remove them.
var headersVaultwallReads = []string{
	"authorization", "x-forwarded-for", "x-http-method", "x-ms-client-request-id",
	"user-agent", "x-vaultwall-caller", "x-vaultwall-decision-id",
}

// TestValidateTreeOpensEveryAny proves that the walk behind validateTree
// reaches every typed_config of the shipped files: the payloads it opens are
// exactly the @types written in each file.
func TestValidateTreeOpensEveryAny(t *testing.T) {
	typeRE := regexp.MustCompile(`"@type":\s*type\.googleapis\.com/([\w.]+)`)
	for _, front := range frontFiles {
		t.Run(front.name, func(t *testing.T) {
			data, err := os.ReadFile(front.name)
			if err != nil {
				t.Fatal(err)
			}
			b, err := parseBootstrap(data)
			if err != nil {
				t.Fatal(err)
			}
			var written []string
			for _, m := range typeRE.FindAllStringSubmatch(string(data), -1) {
				written = append(written, m[1])
			}
			w := &treeWalker{}
			w.walk(b.ProtoReflect(), "Bootstrap")
			if len(w.errs) > 0 {
				t.Fatal(errors.Join(w.errs...))
			}
			slices.Sort(written)
			slices.Sort(w.opened)
			if !slices.Equal(written, w.opened) {
				t.Errorf("opened %d payloads, the file has %d typed_configs\nopened:  %v\nwritten: %v", len(w.opened), len(written), w.opened, written)
			}
			if len(written) < 10 {
				t.Errorf("only %d typed_configs found; the pattern no longer matches the file", len(written))
			}
		})
	}
}

// TestValidateAllStopsAtAny shows why validateTree walks the tree: the
// generated ValidateAll accepts a TLV type the proxy_protocol filter's own
// rules forbid, because that filter's config is packed in an Any.
func TestValidateAllStopsAtAny(t *testing.T) {
	data, err := os.ReadFile("envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const rule = "{tlv_type: 238,"
	if strings.Count(string(data), rule) != 1 {
		t.Fatalf("envoy.yaml no longer has exactly one %q", rule)
	}
	b, err := parseBootstrap([]byte(strings.Replace(string(data), rule, "{tlv_type: 494,", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.ValidateAll(); err != nil {
		t.Fatalf("ValidateAll now looks inside Any payloads (%v); the walk may be redundant", err)
	}
	if err := validateTree(b); err == nil || !strings.Contains(err.Error(), "value must be less than 256") {
		t.Fatalf("validateTree: %v, want the proxy_protocol rule's violation", err)
	}
}

// checkEnvoyFile parses, validates and checks one front-proxy file; the error
// joins every problem found.
func checkEnvoyFile(name string, data []byte) error {
	front, ok := frontFileNamed(name)
	if !ok {
		return fmt.Errorf("%s: not a known front-proxy file", name)
	}
	b, err := parseBootstrap(data)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	var errs []error
	if err := validateTree(b); err != nil {
		errs = append(errs, err)
	}
	if err := checkFront(b, front); err != nil {
		errs = append(errs, err)
	}
	if front.sameAs != "" {
		if err := checkSameAsBase(front.sameAs, data); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s:\n%w", name, err)
	}
	return nil
}

// parseBootstrap reads an Envoy bootstrap YAML as Envoy does: YAML → JSON →
// protojson, where an unknown field or an unresolvable @type is an error.
func parseBootstrap(data []byte) (*bootstrapv3.Bootstrap, error) {
	// sigs.k8s.io/yaml lets a repeated key silently win; yaml/v3 refuses it.
	var probe any
	if err := yamlv3.Unmarshal(data, &probe); err != nil {
		return nil, err
	}
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	b := &bootstrapv3.Bootstrap{}
	opts := protojson.UnmarshalOptions{DiscardUnknown: false, Resolver: protoregistry.GlobalTypes}
	if err := opts.Unmarshal(j, b); err != nil {
		return nil, err
	}
	return b, nil
}

// validateTree runs the generated validation (protoc-gen-validate) on m and
// on every message packed in an Any below it, however deep: ValidateAll
// checks an Any field's own rules but never looks inside it.
func validateTree(m proto.Message) error {
	w := &treeWalker{}
	w.validate(m, string(m.ProtoReflect().Descriptor().Name()))
	w.walk(m.ProtoReflect(), string(m.ProtoReflect().Descriptor().Name()))
	return errors.Join(w.errs...)
}

// treeWalker validates every Any payload of a message tree.
type treeWalker struct {
	errs []error
	// opened lists the type of every Any payload opened, in walk order.
	opened []string
}

func (w *treeWalker) validate(m proto.Message, path string) {
	v, ok := m.(interface{ ValidateAll() error })
	if !ok {
		return
	}
	if err := v.ValidateAll(); err != nil {
		w.errs = append(w.errs, fmt.Errorf("%s: %w", path, err))
	}
}

// walk visits every message-typed field of m.
func (w *treeWalker) walk(m protoreflect.Message, path string) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := path + "." + string(fd.Name())
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() == nil {
				return true
			}
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				w.visit(mv.Message(), p+"["+k.String()+"]")
				return true
			})
		case fd.IsList():
			if fd.Message() == nil {
				return true
			}
			l := v.List()
			for i := range l.Len() {
				w.visit(l.Get(i).Message(), fmt.Sprintf("%s[%d]", p, i))
			}
		case fd.Message() != nil:
			w.visit(v.Message(), p)
		}
		return true
	})
}

// visit opens an Any (and a TypedStruct inside one), validates the payload,
// and walks on.
func (w *treeWalker) visit(m protoreflect.Message, path string) {
	a, ok := m.Interface().(*anypb.Any)
	if !ok {
		w.walk(m, path)
		return
	}
	inner, err := a.UnmarshalNew()
	if err != nil {
		w.errs = append(w.errs, fmt.Errorf("%s: %s: %w", path, a.GetTypeUrl(), err))
		return
	}
	path += "(" + string(inner.ProtoReflect().Descriptor().FullName()) + ")"
	if ts, ok := inner.(typedStruct); ok {
		inner, err = openTypedStruct(ts)
		if err != nil {
			w.errs = append(w.errs, fmt.Errorf("%s: %w", path, err))
			return
		}
		path += "(" + string(inner.ProtoReflect().Descriptor().FullName()) + ")"
	}
	w.opened = append(w.opened, string(inner.ProtoReflect().Descriptor().FullName()))
	w.validate(inner, path)
	w.walk(inner.ProtoReflect(), path)
}

// typedStruct is xds.type.v3.TypedStruct or udpa.type.v1.TypedStruct: a
// config written as a JSON struct that Envoy converts to type_url.
type typedStruct interface {
	proto.Message
	GetTypeUrl() string
	GetValue() *structpb.Struct
}

var (
	_ typedStruct = (*xdstypev3.TypedStruct)(nil)
	_ typedStruct = (*udpatypev1.TypedStruct)(nil)
)

func openTypedStruct(ts typedStruct) (proto.Message, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(ts.GetTypeUrl())
	if err != nil {
		return nil, fmt.Errorf("TypedStruct %s: %w", ts.GetTypeUrl(), err)
	}
	j, err := protojson.Marshal(ts.GetValue())
	if err != nil {
		return nil, err
	}
	inner := mt.New().Interface()
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(j, inner); err != nil {
		return nil, fmt.Errorf("TypedStruct %s: %w", ts.GetTypeUrl(), err)
	}
	return inner, nil
}

// findings collects invariant violations, each with the path where it was
// found.
type findings struct{ errs []error }

func (f *findings) add(path, format string, args ...any) {
	f.errs = append(f.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

func (f *findings) err() error { return errors.Join(f.errs...) }

// unpack opens a typed_config; a missing or unresolvable one is a finding.
func unpack(f *findings, path string, a *anypb.Any) proto.Message {
	if a == nil {
		f.add(path, "typed_config is missing (a named extension without typed_config is not checked by anything)")
		return nil
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		f.add(path, "%s: %v", a.GetTypeUrl(), err)
		return nil
	}
	return m
}

// checkFront checks the settings of one front proxy that vaultwall relies on.
func checkFront(b *bootstrapv3.Bootstrap, want frontFile) error {
	f := &findings{}
	if sa := b.GetAdmin().GetAddress().GetSocketAddress(); sa != nil {
		switch sa.GetAddress() {
		case "127.0.0.1", "::1", "localhost":
		default:
			f.add("admin.address", "%q: the admin interface must listen on loopback only", sa.GetAddress())
		}
	}
	clusters := map[string]*clusterv3.Cluster{}
	for i, c := range b.GetStaticResources().GetClusters() {
		if _, dup := clusters[c.GetName()]; dup {
			f.add(fmt.Sprintf("clusters[%d]", i), "duplicate cluster %q", c.GetName())
		}
		clusters[c.GetName()] = c
	}
	listeners := b.GetStaticResources().GetListeners()
	if len(listeners) == 0 {
		f.add("static_resources.listeners", "no listener")
	}
	authzClusters := map[string]bool{}
	routed := map[string]bool{}
	pinned := map[string]bool{}
	for i, l := range listeners {
		path := fmt.Sprintf("listeners[%d](%s)", i, l.GetName())
		want := want
		want.port = l.GetAddress().GetSocketAddress().GetPortValue()
		checkListenerFilters(f, path, l, want)
		chains := slices.Clone(l.GetFilterChains())
		if l.GetDefaultFilterChain() != nil {
			chains = append(chains, l.GetDefaultFilterChain())
		}
		if len(chains) == 0 {
			f.add(path, "no filter chain")
		}
		for j, fc := range chains {
			cp := fmt.Sprintf("%s.filter_chains[%d]", path, j)
			checkDownstreamTLS(f, cp+".transport_socket", fc.GetTransportSocket())
			checkNetworkFilters(f, cp, fc, clusters, want, authzClusters, routed, pinned)
		}
	}
	for _, v := range want.vaults {
		if !pinned[v] {
			f.add("routes", "no virtual host pins vault %q (context_extensions {vault: %s}): its requests would 404, or reach vaultwall unpinned", v, v)
		}
	}
	for name := range authzClusters {
		if c, ok := clusters[name]; ok {
			checkAuthzCluster(f, "clusters("+name+")", c)
		}
		if routed[name] {
			f.add("routes", "a route sends client traffic to the ext_authz cluster %q: vaultwall's Check API must not be reachable through the front proxy", name)
		}
	}
	for name := range routed {
		c, ok := clusters[name]
		if !ok {
			f.add("routes", "route to unknown cluster %q", name)
			continue
		}
		if !authzClusters[name] {
			checkVaultCluster(f, "clusters("+name+")", c)
		}
	}
	return f.err()
}

func checkListenerFilters(f *findings, path string, l *listenerv3.Listener, want frontFile) {
	ppAt, tlsAt := -1, -1
	for i, lf := range l.GetListenerFilters() {
		p := fmt.Sprintf("%s.listener_filters[%d](%s)", path, i, lf.GetName())
		switch c := unpack(f, p, lf.GetTypedConfig()).(type) {
		case *proxyprotocolv3.ProxyProtocol:
			ppAt = i
			checkProxyProtocol(f, p, c)
		case *tlsinspectorv3.TlsInspector:
			tlsAt = i
		}
	}
	switch {
	case want.proxyProtocol && ppAt < 0:
		f.add(path, "no proxy_protocol listener filter: the client address and the private-link TLVs would be lost")
	case !want.proxyProtocol && ppAt >= 0:
		f.add(path, "proxy_protocol listener filter present, but this front proxy gets no PROXY header: every connection would be refused")
	case ppAt >= 0 && tlsAt >= 0 && ppAt > tlsAt:
		f.add(path, "proxy_protocol must come before tls_inspector: the PROXY header precedes the ClientHello")
	}
}

// tlvRules are the PROXY-protocol TLVs vaultwall reads, by type.
var tlvRules = map[uint32]string{
	0xEA: "aws_vpce_id",  // AWS PrivateLink VPC endpoint id
	0xEE: "azure_linkid", // Azure Private Link LINKID
}

func checkProxyProtocol(f *findings, path string, pp *proxyprotocolv3.ProxyProtocol) {
	if pp.GetAllowRequestsWithoutProxyProtocol() {
		f.add(path, "allow_requests_without_proxy_protocol: true lets a client that bypasses the load balancer present its own address")
	}
	if pp.GetTlvLocation() != proxyprotocolv3.ProxyProtocol_DYNAMIC_METADATA {
		f.add(path, "tlv_location %s: ext_authz forwards dynamic metadata only", pp.GetTlvLocation())
	}
	found := map[uint32]bool{}
	for i, r := range pp.GetRules() {
		key, ok := tlvRules[r.GetTlvType()]
		if !ok {
			continue
		}
		p := fmt.Sprintf("%s.rules[%d]", path, i)
		found[r.GetTlvType()] = true
		kv := r.GetOnTlvPresent()
		if kv.GetKey() != key {
			f.add(p, "TLV 0x%X stored as %q; vaultwall reads %q", r.GetTlvType(), kv.GetKey(), key)
		}
		if ns := kv.GetMetadataNamespace(); ns != "" && ns != nsProxyProtocol {
			f.add(p, "metadata_namespace %q: vaultwall reads %s", ns, nsProxyProtocol)
		}
	}
	for tlv, key := range tlvRules {
		if !found[tlv] {
			f.add(path, "no rule for TLV 0x%X (tlv_type: %d, key %s): that private endpoint could never be recognised", tlv, tlv, key)
		}
	}
}

func checkDownstreamTLS(f *findings, path string, ts *corev3.TransportSocket) {
	if ts == nil {
		f.add(path, "plaintext listener: bearer tokens and client certificates need TLS")
		return
	}
	ctx, ok := unpack(f, path, ts.GetTypedConfig()).(*tlsv3.DownstreamTlsContext)
	if !ok {
		f.add(path, "want a DownstreamTlsContext")
		return
	}
	if ctx.GetRequireClientCertificate().GetValue() {
		f.add(path, "require_client_certificate: true refuses every ordinary client; request certificates without requiring them")
	}
	common := ctx.GetCommonTlsContext()
	if v := common.GetTlsParams().GetTlsMinimumProtocolVersion(); v != tlsv3.TlsParameters_TLS_AUTO && v < tlsv3.TlsParameters_TLSv1_2 {
		f.add(path, "tls_minimum_protocol_version %s: at least TLSv1_2", v)
	}
	vc := common.GetValidationContext()
	if cvc := common.GetCombinedValidationContext(); cvc != nil {
		vc = cvc.GetDefaultValidationContext()
	}
	switch {
	case vc == nil && common.GetValidationContextSdsSecretConfig() == nil:
		f.add(path, "no validation_context: Envoy would not request client certificates, so trusted services could not be recognised")
	case vc != nil && vc.GetTrustedCa() == nil && common.GetCombinedValidationContext() == nil:
		f.add(path, "validation_context without trusted_ca: client certificates would not be verified")
	case vc != nil && vc.GetTrustChainVerification() == tlsv3.CertificateValidationContext_ACCEPT_UNTRUSTED:
		f.add(path, "trust_chain_verification: ACCEPT_UNTRUSTED reports unverified SANs as principals")
	}
}

func checkNetworkFilters(f *findings, path string, fc *listenerv3.FilterChain, clusters map[string]*clusterv3.Cluster,
	want frontFile, authzClusters, routed, pinned map[string]bool,
) {
	hcms := 0
	for i, nf := range fc.GetFilters() {
		p := fmt.Sprintf("%s.filters[%d](%s)", path, i, nf.GetName())
		hcm, ok := unpack(f, p, nf.GetTypedConfig()).(*hcmv3.HttpConnectionManager)
		if !ok {
			continue
		}
		hcms++
		checkHCM(f, p, hcm, clusters, want, authzClusters, routed, pinned)
	}
	if hcms != 1 {
		f.add(path, "%d http_connection_managers, want 1", hcms)
	}
}

func checkHCM(f *findings, path string, hcm *hcmv3.HttpConnectionManager, clusters map[string]*clusterv3.Cluster,
	want frontFile, authzClusters, routed, pinned map[string]bool,
) {
	if !hcm.GetUseRemoteAddress().GetValue() {
		f.add(path, "use_remote_address must be true: Envoy is the edge and must append the real peer to X-Forwarded-For")
	}
	if got := hcm.GetXffNumTrustedHops(); got != want.trustedHops {
		f.add(path, "xff_num_trusted_hops %d, want %d to match vaultwall's network.trustedProxies.hops for this deployment", got, want.trustedHops)
	}
	if hcm.GetSkipXffAppend() {
		f.add(path, "skip_xff_append: true drops the peer from X-Forwarded-For, so vaultwall's hop count would land one address too far left, on a client-written one")
	}
	if len(hcm.GetOriginalIpDetectionExtensions()) > 0 {
		f.add(path, "original_ip_detection_extensions replace xff_num_trusted_hops; vaultwall's trustedProxies would no longer match")
	}
	if !hcm.GetNormalizePath().GetValue() {
		f.add(path, "normalize_path must be true, so vaultwall and the vault see one canonical path")
	}
	if hcm.GetMergeSlashes() {
		f.add(path, "merge_slashes must be false: Key Vault writes an empty version as // (POST /keys/k1//encrypt)")
	}
	if a := hcm.GetPathWithEscapedSlashesAction(); a != hcmv3.HttpConnectionManager_REJECT_REQUEST {
		f.add(path, "path_with_escaped_slashes_action %s, want REJECT_REQUEST", a)
	}
	switch d := hcm.GetForwardClientCertDetails(); d {
	case hcmv3.HttpConnectionManager_SANITIZE, hcmv3.HttpConnectionManager_SANITIZE_SET:
	default:
		f.add(path, "forward_client_cert_details %s passes a client-written X-Forwarded-Client-Cert to the vault; want SANITIZE", d)
	}
	if a := hcm.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction(); a != corev3.HttpProtocolOptions_REJECT_REQUEST {
		f.add(path, "headers_with_underscores_action %s, want REJECT_REQUEST", a)
	}

	filterNames := map[string]bool{}
	authzAt, routerAt := -1, -1
	filters := hcm.GetHttpFilters()
	for i, hf := range filters {
		p := fmt.Sprintf("%s.http_filters[%d](%s)", path, i, hf.GetName())
		filterNames[hf.GetName()] = true
		switch c := unpack(f, p, hf.GetTypedConfig()).(type) {
		case *extauthzv3.ExtAuthz:
			if authzAt >= 0 {
				f.add(p, "a second ext_authz filter")
			}
			authzAt = i
			if hf.GetDisabled() || hf.GetIsOptional() {
				f.add(p, "ext_authz must be neither disabled nor optional")
			}
			if name := checkExtAuthz(f, p, c, clusters, want); name != "" {
				authzClusters[name] = true
			}
		case *routerv3.Router:
			routerAt = i
		}
	}
	switch {
	case authzAt < 0:
		f.add(path, "no ext_authz filter: nothing asks vaultwall")
	case routerAt < 0:
		f.add(path, "no router filter")
	case authzAt > routerAt:
		f.add(path, "ext_authz (http_filters[%d]) comes after the router (http_filters[%d]): requests would be forwarded before the check", authzAt, routerAt)
	}
	if routerAt >= 0 && routerAt != len(filters)-1 {
		f.add(path, "the router must be the last http filter")
	}
	authzName := ""
	if authzAt >= 0 {
		authzName = filters[authzAt].GetName()
	}

	checkAccessLogs(f, path, hcm)

	rc := hcm.GetRouteConfig()
	if rc == nil {
		f.add(path, "route_config must be inline so its routes can be checked")
		return
	}
	checkRoutes(f, path+".route_config", rc, authzName, filterNames, routed)
	if len(want.vaults) > 0 {
		checkVaultPins(f, path+".route_config", rc, authzName, want, pinned)
	}
}

func checkExtAuthz(f *findings, path string, ea *extauthzv3.ExtAuthz, clusters map[string]*clusterv3.Cluster, want frontFile) string {
	gs := ea.GetGrpcService()
	eg := gs.GetEnvoyGrpc()
	cluster := eg.GetClusterName()
	switch {
	case gs == nil:
		f.add(path, "vaultwall is a gRPC service: set grpc_service")
	case eg == nil:
		f.add(path, "grpc_service must use envoy_grpc (a cluster with health checks)")
	case clusters[cluster] == nil:
		f.add(path, "grpc_service.envoy_grpc.cluster_name %q names no cluster", cluster)
	}
	if gs != nil {
		switch t := gs.GetTimeout(); {
		case t == nil:
			f.add(path, "grpc_service.timeout unset: set it explicitly (at most %s)", maxCheckTimeout)
		case t.AsDuration() <= 0 || t.AsDuration() > maxCheckTimeout:
			f.add(path, "grpc_service.timeout %s: want more than 0 and at most %s", t.AsDuration(), maxCheckTimeout)
		}
	}
	if v := ea.GetTransportApiVersion(); v != corev3.ApiVersion_V3 {
		f.add(path, "transport_api_version %s, want V3", v)
	}
	if ea.GetFailureModeAllow() {
		f.add(path, "failure_mode_allow: true lets every request through when vaultwall cannot answer")
	}
	if !ea.GetIncludePeerCertificate() {
		f.add(path, "include_peer_certificate must be true: vaultwall verifies trusted-service certificates")
	}
	if !ea.GetIncludeTlsSession() {
		f.add(path, "include_tls_session must be true")
	}
	switch s := ea.GetStatusOnError(); {
	case s == nil:
		f.add(path, "status_on_error unset: Envoy's default 403 makes an outage look like a Key Vault denial")
	case int32(s.GetCode()) < 500:
		f.add(path, "status_on_error %d: an error must not look like a denial, want a 5xx", s.GetCode())
	}
	if !ea.GetValidateMutations() {
		f.add(path, "validate_mutations must be true")
	}
	if ea.GetShadowMode() {
		f.add(path, "shadow_mode: true never refuses a request")
	}
	if ea.GetFilterEnabled() != nil || ea.GetFilterEnabledMetadata() != nil {
		f.add(path, "filter_enabled / filter_enabled_metadata would skip the check for some requests")
	}
	if v := ea.GetEnableDynamicMetadataIngestion(); v != nil && !v.GetValue() {
		f.add(path, "enable_dynamic_metadata_ingestion: false drops vaultwall's decision metadata from the access log")
	}
	if ea.GetEncodeRawHeaders() {
		f.add(path, "encode_raw_headers: true: the shipped files send the headers map, the shape Istio sends too (README.md: encode_raw_headers)")
	}
	if want.proxyProtocol {
		if !slices.Contains(ea.GetMetadataContextNamespaces(), nsProxyProtocol) {
			f.add(path, "metadata_context_namespaces must include %s (the private-link TLVs)", nsProxyProtocol)
		}
		if !slices.Contains(ea.GetTypedMetadataContextNamespaces(), nsProxyProtocol) {
			f.add(path, "typed_metadata_context_namespaces must include %s (the raw Azure LINKID bytes)", nsProxyProtocol)
		}
	}
	for _, h := range headersVaultwallReads {
		if al := ea.GetAllowedHeaders(); al != nil && !matchesAny(f, path+".allowed_headers", al, h) {
			f.add(path, "allowed_headers drops %q, which vaultwall reads", h)
		}
		if dl := ea.GetDisallowedHeaders(); dl != nil && matchesAny(f, path+".disallowed_headers", dl, h) {
			f.add(path, "disallowed_headers drops %q, which vaultwall reads", h)
		}
	}
	return cluster
}

// matchesAny evaluates Envoy's string matchers the way the header filter
// does.
func matchesAny(f *findings, path string, l *matcherv3.ListStringMatcher, s string) bool {
	for _, m := range l.GetPatterns() {
		v := s
		fold := func(x string) string { return x }
		if m.GetIgnoreCase() {
			fold = strings.ToLower
		}
		switch p := m.GetMatchPattern().(type) {
		case *matcherv3.StringMatcher_Exact:
			if fold(v) == fold(p.Exact) {
				return true
			}
		case *matcherv3.StringMatcher_Prefix:
			if strings.HasPrefix(fold(v), fold(p.Prefix)) {
				return true
			}
		case *matcherv3.StringMatcher_Suffix:
			if strings.HasSuffix(fold(v), fold(p.Suffix)) {
				return true
			}
		case *matcherv3.StringMatcher_Contains:
			if strings.Contains(fold(v), fold(p.Contains)) {
				return true
			}
		case *matcherv3.StringMatcher_SafeRegex:
			// RE2 on both sides; Envoy's safe_regex matches the whole value.
			re, err := regexp.Compile(`^(?:` + p.SafeRegex.GetRegex() + `)$`)
			if err != nil {
				f.add(path, "regex %q: %v", p.SafeRegex.GetRegex(), err)
				continue
			}
			if re.MatchString(v) {
				return true
			}
		default:
			f.add(path, "matcher %T cannot be checked here", p)
		}
	}
	return false
}

func checkAccessLogs(f *findings, path string, hcm *hcmv3.HttpConnectionManager) {
	var formats []string
	for i, al := range hcm.GetAccessLog() {
		p := fmt.Sprintf("%s.access_log[%d]", path, i)
		m := unpack(f, p, al.GetTypedConfig())
		if m == nil {
			continue
		}
		j, err := protojson.Marshal(m)
		if err != nil {
			f.add(p, "%v", err)
			continue
		}
		if strings.Contains(strings.ToUpper(string(j)), "AUTHORIZATION)") {
			f.add(p, "the access log must never record the authorization header")
		}
		if _, ok := m.(*streamv3.StdoutAccessLog); ok || strings.Contains(string(j), "DYNAMIC_METADATA") {
			formats = append(formats, string(j))
		}
	}
	all := strings.Join(formats, "\n")
	for _, k := range decisionMetadataKeys {
		if !strings.Contains(all, "%DYNAMIC_METADATA("+nsExtAuthz+":"+k+")%") {
			f.add(path+".access_log", "no %%DYNAMIC_METADATA(%s:%s)%%: the log line would not carry vaultwall's %s", nsExtAuthz, k, k)
		}
	}
}

func checkRoutes(f *findings, path string, rc *routev3.RouteConfiguration, authzName string, filterNames, routed map[string]bool) {
	health, catchAll := false, false
	checkPerFilter(f, path, rc.GetTypedPerFilterConfig(), authzName, filterNames)
	for i, vh := range rc.GetVirtualHosts() {
		vp := fmt.Sprintf("%s.virtual_hosts[%d](%s)", path, i, vh.GetName())
		checkPerFilter(f, vp, vh.GetTypedPerFilterConfig(), authzName, filterNames)
		for j, r := range vh.GetRoutes() {
			rp := fmt.Sprintf("%s.routes[%d]", vp, j)
			checkPerFilter(f, rp, r.GetTypedPerFilterConfig(), authzName, filterNames)
			a := r.GetRoute()
			if a == nil {
				continue
			}
			var targets []string
			if c := a.GetCluster(); c != "" {
				targets = append(targets, c)
			}
			for _, wc := range a.GetWeightedClusters().GetClusters() {
				targets = append(targets, wc.GetName())
			}
			for _, c := range targets {
				routed[c] = true
			}
			switch m := r.GetMatch(); {
			case m.GetPath() == "/healthstatus":
				health = true
			case m.GetPrefix() == "/" && len(m.GetHeaders()) == 0 && len(m.GetQueryParameters()) == 0:
				catchAll = true
			}
		}
	}
	if !health {
		f.add(path, "no route for /healthstatus (Key Vault's unauthenticated health endpoint, checked by vaultwall like any other)")
	}
	if !catchAll {
		f.add(path, `no catch-all route (prefix "/"): Key Vault's data-plane paths would 404 at Envoy`)
	}
}

// checkPerFilter refuses per-route settings that switch the check off, and
// keys that name no filter (Envoy would ignore them).
func checkPerFilter(f *findings, path string, per map[string]*anypb.Any, authzName string, filterNames map[string]bool) {
	for name, a := range per {
		p := path + ".typed_per_filter_config[" + name + "]"
		if !filterNames[name] {
			f.add(p, "names no http filter")
		}
		switch c := unpack(f, p, a).(type) {
		case *extauthzv3.ExtAuthzPerRoute:
			checkPerRouteAuthz(f, p, c)
		case *routev3.FilterConfig:
			if name == authzName && c.GetDisabled() {
				f.add(p, "disabled: true skips vaultwall for this route")
			}
			if c.GetConfig() == nil {
				break
			}
			if inner, ok := unpack(f, p+".config", c.GetConfig()).(*extauthzv3.ExtAuthzPerRoute); ok {
				checkPerRouteAuthz(f, p+".config", inner)
			}
		}
	}
}

// checkPerRouteAuthz refuses the per-route ext_authz settings that skip the
// check or send it elsewhere.
func checkPerRouteAuthz(f *findings, path string, c *extauthzv3.ExtAuthzPerRoute) {
	if c.GetDisabled() {
		f.add(path, "disabled: true skips vaultwall for this route")
	}
	if c.GetCheckSettings().GetServiceOverride() != nil {
		f.add(path, "check_settings.%s sends this route's Checks to another service than the filter's health-checked, mTLS vaultwall cluster",
			c.GetCheckSettings().ProtoReflect().WhichOneof(c.GetCheckSettings().ProtoReflect().Descriptor().Oneofs().ByName("service_override")).Name())
	}
}

func checkAuthzCluster(f *findings, path string, c *clusterv3.Cluster) {
	h2 := false
	if a, ok := c.GetTypedExtensionProtocolOptions()[httpOptionsKey]; ok {
		if o, ok := unpack(f, path+".typed_extension_protocol_options", a).(*upstreamhttpv3.HttpProtocolOptions); ok {
			h2 = o.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil
		}
	}
	if !h2 {
		f.add(path, "the ext_authz cluster must speak HTTP/2 (gRPC): set %s.explicit_http_config.http2_protocol_options", httpOptionsKey)
	}
	hc := false
	for _, h := range c.GetHealthChecks() {
		if g := h.GetGrpcHealthCheck(); g != nil && g.GetServiceName() == authzHealthName {
			hc = true
		}
	}
	if !hc {
		f.add(path, "no gRPC health check for %s: Envoy would send Checks to a vaultwall that has not loaded its config", authzHealthName)
	}
	ctx, ok := upstreamTLS(f, path, c)
	if !ok {
		f.add(path, "plaintext to vaultwall: Check requests carry bearer tokens, and whoever answers them decides; use mTLS")
		return
	}
	common := ctx.GetCommonTlsContext()
	if !slices.Contains(common.GetAlpnProtocols(), "h2") {
		f.add(path, "alpn_protocols must include h2: gRPC servers refuse TLS clients that do not negotiate it")
	}
	if len(common.GetTlsCertificates()) == 0 && len(common.GetTlsCertificateSdsSecretConfigs()) == 0 {
		f.add(path, "no client certificate: vaultwall cannot tell Envoy from any other caller")
	}
	checkUpstreamValidation(f, path, common)
}

func checkVaultCluster(f *findings, path string, c *clusterv3.Cluster) {
	ctx, ok := upstreamTLS(f, path, c)
	if !ok {
		f.add(path, "plaintext to the vault: secrets would cross the network in clear")
		return
	}
	checkUpstreamValidation(f, path, ctx.GetCommonTlsContext())
}

func upstreamTLS(f *findings, path string, c *clusterv3.Cluster) (*tlsv3.UpstreamTlsContext, bool) {
	ts := c.GetTransportSocket()
	if ts == nil {
		return nil, false
	}
	ctx, ok := unpack(f, path+".transport_socket", ts.GetTypedConfig()).(*tlsv3.UpstreamTlsContext)
	return ctx, ok
}

func checkUpstreamValidation(f *findings, path string, common *tlsv3.CommonTlsContext) {
	vc := common.GetValidationContext()
	switch {
	case vc == nil && common.GetValidationContextSdsSecretConfig() == nil && common.GetCombinedValidationContext() == nil:
		f.add(path, "no validation_context: the server's certificate would not be verified")
	case vc != nil && vc.GetTrustedCa() == nil:
		f.add(path, "validation_context without trusted_ca")
	case vc != nil && len(vc.GetMatchTypedSubjectAltNames()) == 0:
		f.add(path, "validation_context without match_typed_subject_alt_names: any certificate from the CA would do")
	}
}
