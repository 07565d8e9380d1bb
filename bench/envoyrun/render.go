package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	// Types the shipped file names only inside Any payloads.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/proxy_protocol/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/downstream_connections/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/fixed_heap/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

const extAuthzFilter = "envoy.filters.http.ext_authz"

// render is what changes in the shipped envoy.yaml for the bench: the
// environment only, and for configuration (a) the ext_authz filter removed.
type render struct {
	shipped   string // path of envoy/envoy.yaml
	dir       string // where the bootstrap and its files are written
	name      string // configuration name, in file names
	authzAddr string // ext_authz cluster endpoint; "" removes the filter
	upstream  string // vault cluster endpoint (host:port, TLS)
	pki       *benchPKI
}

// write renders the file into dir and returns the bootstrap's path. The
// admin interface and the listener bind 127.0.0.1 port 0 (the admin
// reports the ports); the listener's certificate and client CA, the vault
// cluster's CA are the bench's; the virtual host's domains are "*"; the
// ext_authz cluster is plaintext on loopback (the floor and vaultwall
// alike), every other knob stays as shipped.
func (r render) write() (string, error) {
	data, err := os.ReadFile(r.shipped)
	if err != nil {
		return "", err
	}
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", r.shipped, err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := (protojson.UnmarshalOptions{Resolver: protoregistry.GlobalTypes}).Unmarshal(j, b); err != nil {
		return "", fmt.Errorf("%s: %w", r.shipped, err)
	}
	if err := r.patch(b); err != nil {
		return "", fmt.Errorf("%s: %w", r.shipped, err)
	}
	if err := b.ValidateAll(); err != nil {
		return "", fmt.Errorf("%s rendered: %w", r.shipped, err)
	}
	out, err := protojson.MarshalOptions{Indent: "  ", UseProtoNames: true}.Marshal(b)
	if err != nil {
		return "", err
	}
	path := filepath.Join(r.dir, "envoy-"+r.name+".json")
	return path, os.WriteFile(path, out, 0o600)
}

func loopback(port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
}

func (r render) patch(b *bootstrapv3.Bootstrap) error {
	if b.GetAdmin() == nil {
		return errors.New("no admin interface")
	}
	b.Admin.Address = loopback(0)
	sr := b.GetStaticResources()
	if len(sr.GetListeners()) != 1 || len(sr.GetListeners()[0].GetFilterChains()) != 1 {
		return errors.New("want one listener with one filter chain")
	}
	l := sr.GetListeners()[0]
	l.Address = loopback(0)
	fc := l.GetFilterChains()[0]

	// The listener's certificate and client CA.
	dts := &tlsv3.DownstreamTlsContext{}
	if err := fc.GetTransportSocket().GetTypedConfig().UnmarshalTo(dts); err != nil {
		return fmt.Errorf("listener TLS: %w", err)
	}
	ctc := dts.GetCommonTlsContext()
	if len(ctc.GetTlsCertificates()) != 1 || ctc.GetValidationContext() == nil {
		return errors.New("listener TLS: want one certificate and a validation context")
	}
	ctc.TlsCertificates[0].CertificateChain = file(r.pki.frontCert)
	ctc.TlsCertificates[0].PrivateKey = file(r.pki.frontKey)
	ctc.GetValidationContext().TrustedCa = file(r.pki.caFile)
	if err := repackSocket(fc.GetTransportSocket(), dts); err != nil {
		return err
	}

	// The HTTP connection manager: any host, and the ext_authz filter kept
	// or removed.
	var hcmFilter *listenerv3.Filter
	for _, f := range fc.GetFilters() {
		if f.GetName() == "envoy.filters.network.http_connection_manager" {
			hcmFilter = f
		}
	}
	if hcmFilter == nil {
		return errors.New("no http_connection_manager")
	}
	hcm := &hcmv3.HttpConnectionManager{}
	if err := hcmFilter.GetTypedConfig().UnmarshalTo(hcm); err != nil {
		return err
	}
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		vh.Domains = []string{"*"}
	}
	found := false
	var filters []*hcmv3.HttpFilter
	for _, f := range hcm.GetHttpFilters() {
		if f.GetName() == extAuthzFilter {
			found = true
			if r.authzAddr == "" {
				continue
			}
		}
		filters = append(filters, f)
	}
	if !found {
		return errors.New("no ext_authz filter")
	}
	hcm.HttpFilters = filters
	if err := repack(hcmFilter, hcm); err != nil {
		return err
	}

	// The clusters.
	var kept []*clusterv3.Cluster
	for _, c := range sr.GetClusters() {
		switch c.GetName() {
		case "vaultwall":
			if r.authzAddr == "" {
				continue // nothing refers to it any more
			}
			c.TransportSocket = nil // plaintext on loopback, for the floor and vaultwall alike
			if err := pointAt(c.GetLoadAssignment(), r.authzAddr); err != nil {
				return err
			}
		case "vault":
			uts := &tlsv3.UpstreamTlsContext{}
			if err := c.GetTransportSocket().GetTypedConfig().UnmarshalTo(uts); err != nil {
				return fmt.Errorf("vault cluster TLS: %w", err)
			}
			uts.GetCommonTlsContext().GetValidationContext().TrustedCa = file(r.pki.caFile)
			if err := repackSocket(c.GetTransportSocket(), uts); err != nil {
				return err
			}
			if err := pointAt(c.GetLoadAssignment(), r.upstream); err != nil {
				return err
			}
		default:
			return fmt.Errorf("cluster %q: the bench knows vaultwall and vault", c.GetName())
		}
		kept = append(kept, c)
	}
	sr.Clusters = kept
	return nil
}

func file(path string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: path}}
}

func pointAt(la *endpointv3.ClusterLoadAssignment, hostport string) error {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		return err
	}
	if len(la.GetEndpoints()) != 1 || len(la.GetEndpoints()[0].GetLbEndpoints()) != 1 {
		return fmt.Errorf("cluster %s: want one endpoint", la.GetClusterName())
	}
	sa := la.GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	sa.Address = ap.Addr().String()
	sa.PortSpecifier = &corev3.SocketAddress_PortValue{PortValue: uint32(ap.Port())}
	return nil
}

func repack(f *listenerv3.Filter, m proto.Message) error {
	a, err := anypb.New(m)
	if err != nil {
		return err
	}
	f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
	return nil
}

func repackSocket(ts *corev3.TransportSocket, m proto.Message) error {
	a, err := anypb.New(m)
	if err != nil {
		return err
	}
	ts.ConfigType = &corev3.TransportSocket_TypedConfig{TypedConfig: a}
	return nil
}
