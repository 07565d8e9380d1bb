package envoy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	"sigs.k8s.io/yaml"
)

// TestEnvoyValidateIstioFilter runs Envoy itself (`envoy --mode validate`)
// on the ext_authz filter Istio renders into the vault's sidecar from the
// shipped extension provider (istio/mesh/istiod-values.yaml; the Istio
// tests keep istiooperator.yaml identical). There is no istiod in the
// tests, so istioExtAuthz reproduces what istiod's builder
// (pilot/pkg/security/authz/builder/extauthz.go, generateGRPCConfig) makes
// of an envoyExtAuthzGrpc provider; the bootstrap around it is the least
// Envoy needs to load it: the RBAC shadow filter that the CUSTOM
// AuthorizationPolicy becomes, the ext_authz filter, the router, and the
// outbound cluster Istio names for the provider's service. See realEnvoy
// for when it is skipped.
func TestEnvoyValidateIstioFilter(t *testing.T) {
	bin := realEnvoy(t)
	for name, p := range istioProviders(t) {
		t.Run(name, func(t *testing.T) {
			ea, cluster := istioExtAuthz(t, p)
			// What the shipped provider must come out as.
			if to := ea.GetGrpcService().GetTimeout().AsDuration(); ea.GetFailureModeAllow() ||
				ea.GetStatusOnError().GetCode() != typev3.StatusCode_ServiceUnavailable || to <= 0 || to > maxCheckTimeout {
				t.Errorf("rendered filter: failure_mode_allow %v, status_on_error %v, timeout %v; want false, 503, at most %s",
					ea.GetFailureModeAllow(), ea.GetStatusOnError().GetCode(), to, maxCheckTimeout)
			}
			b := istioBootstrap(t, ea, cluster)
			if err := b.ValidateAll(); err != nil {
				t.Fatal(err)
			}
			j, err := protojson.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "istio-sidecar.json")
			if err := os.WriteFile(file, j, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.CommandContext(t.Context(), bin, "--mode", "validate", "-c", file, "--log-level", "warn").CombinedOutput()
			if err != nil {
				t.Fatalf("envoy --mode validate (Istio-rendered ext_authz): %v\n%s", err, out)
			}
			t.Logf("%s", out)
		})
	}
}

// istioProviders are the envoyExtAuthzGrpc extension providers of the
// shipped Helm values, by name.
func istioProviders(t *testing.T) map[string]*meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationGrpcProvider {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("istio", meshDir, "istiod-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		MeshConfig map[string]any `json:"meshConfig"`
	}
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatal(err)
	}
	raw, err := yaml.Marshal(values.MeshConfig)
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	m := &meshv1alpha1.MeshConfig{}
	if err := protojson.Unmarshal(j, m); err != nil {
		t.Fatal(err)
	}
	out := map[string]*meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationGrpcProvider{}
	for _, p := range m.GetExtensionProviders() {
		if g := p.GetEnvoyExtAuthzGrpc(); g != nil {
			out[p.GetName()] = g
		}
	}
	if len(out) == 0 {
		t.Fatal("no envoyExtAuthzGrpc provider in the Helm values")
	}
	return out
}

// Istio's names for the RBAC shadow rules a CUSTOM policy becomes
// (pilot/pkg/security/authz/model): the ext_authz filter runs only when
// they set <prefix>shadow_effective_policy_id to istio-ext-authz….
const (
	istioShadowStatPrefix = "istio_ext_authz_"
	istioPolicyIDKey      = istioShadowStatPrefix + "shadow_effective_policy_id"
	istioMatchPrefix      = "istio-ext-authz"
)

// istioExtAuthz is the HTTP ext_authz filter istiod renders for an
// envoyExtAuthzGrpc provider, and the cluster it calls: Envoy's gRPC
// client on outbound|<port>||<service> with the service as authority, the
// provider's timeout (Istio's default 600s), status_on_error, failure mode
// and optional body, transport V3, enabled by the RBAC shadow metadata.
func istioExtAuthz(t *testing.T, p *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationGrpcProvider) (*extauthzv3.ExtAuthz, string) {
	t.Helper()
	cluster := "outbound|" + strconv.Itoa(int(p.GetPort())) + "||" + p.GetService()
	timeout := p.GetTimeout()
	if timeout == nil {
		t.Fatal("provider without timeout: Istio would render 600s")
	}
	ea := &extauthzv3.ExtAuthz{
		FailureModeAllow:    p.GetFailOpen(),
		TransportApiVersion: corev3.ApiVersion_V3,
		Services: &extauthzv3.ExtAuthz_GrpcService{GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: cluster, Authority: p.GetService()}},
			Timeout:         timeout,
		}},
		FilterEnabledMetadata: &matcherv3.MetadataMatcher{
			Filter: "envoy.filters.http.rbac",
			Path:   []*matcherv3.MetadataMatcher_PathSegment{{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: istioPolicyIDKey}}},
			Value: &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: istioMatchPrefix}}}},
		},
	}
	if s := p.GetStatusOnError(); s != "" {
		code, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("statusOnError %q: %v", s, err)
		}
		if _, ok := typev3.StatusCode_name[int32(code)]; !ok {
			t.Fatalf("statusOnError %q is no status Istio accepts", s)
		}
		ea.StatusOnError = &typev3.HttpStatus{Code: typev3.StatusCode(code)}
	}
	if b := p.GetIncludeRequestBodyInCheck(); b != nil {
		ea.WithRequestBody = &extauthzv3.BufferSettings{MaxRequestBytes: b.GetMaxRequestBytes(), AllowPartialMessage: b.GetAllowPartialMessage(), PackAsBytes: b.GetPackAsBytes()}
	}
	return ea, cluster
}

// istioBootstrap wraps the filter in the least a sidecar's inbound
// listener needs: RBAC shadow rules matching every request (the CUSTOM
// policy's rules: [{}]), ext_authz, the router; the provider's cluster
// (gRPC: HTTP/2) and the vault's.
func istioBootstrap(t *testing.T, ea *extauthzv3.ExtAuthz, authzCluster string) *bootstrapv3.Bootstrap {
	t.Helper()
	pack := func(m proto.Message) *anypb.Any {
		a, err := anypb.New(m)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	rbac := &rbacv3.RBAC{
		ShadowRules: &rbacconfigv3.RBAC{Action: rbacconfigv3.RBAC_DENY, Policies: map[string]*rbacconfigv3.Policy{
			istioMatchPrefix + "-ns[vault]-policy[vault-ext-authz]-rule[0]": {
				Permissions: []*rbacconfigv3.Permission{{Rule: &rbacconfigv3.Permission_Any{Any: true}}},
				Principals:  []*rbacconfigv3.Principal{{Identifier: &rbacconfigv3.Principal_Any{Any: true}}},
			},
		}},
		ShadowRulesStatPrefix: istioShadowStatPrefix,
	}
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: "inbound_0.0.0.0_8443",
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			Name: "inbound|8443||",
			VirtualHosts: []*routev3.VirtualHost{{Name: "inbound", Domains: []string{"*"}, Routes: []*routev3.Route{{
				Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "inbound|8443||"}}},
			}}}},
		}},
		HttpFilters: []*hcmv3.HttpFilter{
			{Name: "envoy.filters.http.rbac", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: pack(rbac)}},
			{Name: "envoy.filters.http.ext_authz", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: pack(ea)}},
			{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: pack(&routerv3.Router{})}},
		},
	}
	loopback := func(port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
	}
	cluster := func(name string, port uint32, h2 bool) *clusterv3.Cluster {
		c := &clusterv3.Cluster{
			Name:                 name,
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
			LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{
				LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: loopback(port)}}}},
			}}},
		}
		if h2 {
			c.TypedExtensionProtocolOptions = map[string]*anypb.Any{
				"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": pack(&upstreamhttpv3.HttpProtocolOptions{
					UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
						ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
					}},
				}),
			}
		}
		return c
	}
	return &bootstrapv3.Bootstrap{
		Node: &corev3.Node{Id: "sidecar~10.0.0.1~vault-0.vault~vault.svc.cluster.local", Cluster: "vault.vault"},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Listeners: []*listenerv3.Listener{{
				Name:    "virtualInbound",
				Address: loopback(0),
				FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
					Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: pack(hcm)},
				}}}},
			}},
			Clusters: []*clusterv3.Cluster{cluster(authzCluster, 9191, true), cluster("inbound|8443||", 8443, false)},
		},
	}
}
