package network_test

import (
	"net/netip"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/network"
	"github.com/vaultwall/vaultwall/config"
)

const vaultYAML = `
vault: {name: contoso, tenantId: 00000000-0000-0000-0000-000000000001, location: westeurope}
`

// firewall compiles a configuration through real validation.
func firewall(tb testing.TB, yaml string) *network.Firewall {
	tb.Helper()
	cfg, err := config.Parse("test.yaml", []byte(vaultYAML+yaml))
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	fw, err := network.New(cfg.FirewallConfig())
	if err != nil {
		tb.Fatalf("network.New: %v", err)
	}
	return fw
}

// request builds a request from a peer ("" for none) and an optional
// X-Forwarded-For header.
func request(peer string, xff ...string) *authz.Request {
	r := &authz.Request{Method: "GET", Path: "/secrets/db?api-version=7.5", Headers: map[string]string{}}
	if peer != "" {
		r.Peer = netip.AddrPortFrom(netip.MustParseAddr(peer), 52100)
	}
	if len(xff) > 0 {
		r.Headers["x-forwarded-for"] = xff[0]
	}
	return r
}

// evaluate runs Connect then Evaluate, as the pipeline does.
func evaluate(fw *network.Firewall, r *authz.Request, trusted string, inScope bool) authz.NetworkVerdict {
	d := &authz.Decision{Request: r}
	d.Network.Connection = fw.Connect(r)
	d.Network.TrustedService, d.Network.TrustedInScope = trusted, inScope
	return fw.Evaluate(d)
}
