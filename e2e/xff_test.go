package e2e_test

import (
	"net/http"
	"testing"

	"github.com/vaultwall/vaultwall/config"
	"github.com/vaultwall/vaultwall/e2e/internal/front"
)

// TestBehindL7LoadBalancer is a vault behind one layer-7 load balancer
// (envoy/envoy-behind-l7.yaml: xff_num_trusted_hops 1, no PROXY protocol)
// with network.trustedProxies.hops: 1. The load balancer connects to the
// front from this host's own non-loopback address and appends the client's
// address to X-Forwarded-For; the client is that entry, and whatever the
// client wrote before it changes nothing.
func TestBehindL7LoadBalancer(t *testing.T) {
	t.Parallel()
	lb := front.HostAddress(addr("0.0.0.0"))
	if !lb.IsValid() {
		// For a loopback peer Envoy appends its own address to
		// X-Forwarded-For instead of the peer's, which shifts the hops.
		t.Skip("this host has no non-loopback IPv4 address to play the load balancer from")
	}
	s := newSystem(t, "contoso-l7", front.EnvoyL7, func(c *config.Config) {
		c.Network.TrustedProxies.Hops = 1
	})
	s.vault.SetSecret("db-password", "s3cr3t")
	get := "/secrets/db-password" + api
	// via is a request as the load balancer forwards it: the client's own
	// X-Forwarded-For (if any), with the client's address appended.
	via := func(client, claimed string) req {
		xff := client
		if claimed != "" {
			xff = claimed + ", " + client
		}
		return req{path: get, local: lb, as: &app, header: http.Header{"X-Forwarded-For": {xff}}}
	}

	s.do(t, via("203.0.113.10", "")).
		wantAllowed(t, 200, upstream{op: "SecretGet", caller: app, clientIP: "203.0.113.10", networkInfo: networkInfo("203.0.113.10")})
	// An allowed client that claims another address is still itself.
	s.do(t, via("203.0.113.10", "8.8.8.8")).
		wantAllowed(t, 200, upstream{op: "SecretGet", caller: app, clientIP: "203.0.113.10"})
	// A refused client claiming an allowed address is refused as itself.
	s.do(t, via("198.51.100.99", "203.0.113.10")).
		wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("198.51.100.99", app))
	s.do(t, via("2001:db8:9::1", "2001:db8:1::10, 203.0.113.10")).
		wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage("2001:db8:9::1", app))
	s.do(t, via("2001:db8:1::10", "")).
		wantAllowed(t, 200, upstream{op: "SecretGet", caller: app, clientIP: "2001:db8:1::10"})
	// A request that did not come through the load balancer (no
	// X-Forwarded-For) is the load balancer's own address, which no rule
	// admits.
	s.do(t, req{path: get, local: lb, as: &app}).
		wantRefused(t, 403, "Forbidden", "ForbiddenByFirewall", s.firewallMessage(lb.String(), app))
}
