package config_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vaultwall/vaultwall/config"
)

// The example configuration serves demo keys and admits 127.0.0.1: `make
// run` must not expose it, so every listener it names is on loopback.
func TestExampleListensOnLoopback(t *testing.T) {
	c, err := config.Load("../examples/vault.yaml")
	if err != nil {
		t.Fatal(err)
	}
	addrs := map[string]string{"server.grpcAddr": c.Server.GRPCAddr, "server.httpAddr": c.Server.HTTPAddr}
	if c.ControlPlane.Enabled {
		addrs["controlPlane.listenAddr"] = c.ControlPlane.ListenAddr
	}
	for field, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			t.Errorf("%s %q: %v", field, a, err)
			continue
		}
		if ip, err := netip.ParseAddr(host); host != "localhost" && (err != nil || !ip.IsLoopback()) {
			t.Errorf("%s %q: the example must listen on loopback only", field, a)
		}
	}
}
