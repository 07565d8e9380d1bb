package network_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/network"
)

// proxied is a deny-by-default vault admitting 203.0.113.0/24, behind the
// given trustedProxies.
func proxied(tb testing.TB, trustedProxies string) *network.Firewall {
	return firewall(tb, `
properties:
  networkAcls:
    defaultAction: Deny
    bypass: None
    ipRules: [{value: 203.0.113.0/24}]
network:
  trustedProxies: `+trustedProxies+"\n")
}

func TestClientAddress(t *testing.T) {
	modes := map[string]*network.Firewall{
		"none":  proxied(t, "{hops: 0}"),
		"hops1": proxied(t, "{hops: 1}"),
		"hops2": proxied(t, "{hops: 2}"),
		"cidrs": proxied(t, `{cidrs: [10.0.0.0/8, "fd00::/8"]}`),
		"both":  proxied(t, "{hops: 1, cidrs: [10.0.0.0/8]}"),
	}
	for _, tc := range []struct {
		mode, peer, xff string
		client          string // "" means invalid
		problem         string // substring of Problem
	}{
		// Without trustedProxies, X-Forwarded-For means nothing.
		{mode: "none", peer: "198.18.0.1", xff: "203.0.113.7", client: "198.18.0.1"},
		{mode: "none", peer: "198.18.0.1", xff: "garbage", client: "198.18.0.1"},
		{mode: "none", peer: "::ffff:198.18.0.1", xff: "203.0.113.7, ::ffff:198.18.0.1", client: "198.18.0.1"},
		{mode: "none", peer: "", xff: "203.0.113.7", problem: "did not report"},

		// hops: 1 — one L7 proxy (10.0.0.1) in front of Envoy.
		{mode: "hops1", peer: "10.0.0.1", xff: "198.51.100.9, 10.0.0.1", client: "198.51.100.9"},              // Envoy appended the peer
		{mode: "hops1", peer: "10.0.0.1", xff: "198.51.100.9", client: "198.51.100.9"},                        // skip_xff_append
		{mode: "hops1", peer: "10.0.0.1", xff: "203.0.113.7, 198.51.100.9, 10.0.0.1", client: "198.51.100.9"}, // spoofed entry on the left
		{mode: "hops1", peer: "10.0.0.1", xff: "garbage, 198.51.100.9, 10.0.0.1", client: "198.51.100.9"},     // never read
		{mode: "hops1", peer: "10.0.0.1", xff: "  198.51.100.9 ,10.0.0.1  ", client: "198.51.100.9"},
		{mode: "hops1", peer: "10.0.0.1", xff: "", client: "10.0.0.1"}, // short chain: the peer
		{mode: "hops1", peer: "10.0.0.1", xff: " ", client: "10.0.0.1"},
		{mode: "hops1", peer: "10.0.0.1", xff: "10.0.0.1", client: "10.0.0.1"}, // only the appended peer
		{mode: "hops1", peer: "10.0.0.1", xff: "garbage, 10.0.0.1", problem: `"garbage", 1 from the right`},
		{mode: "hops1", peer: "10.0.0.1", xff: ", 10.0.0.1", problem: `"", 1 from the right`},
		{mode: "hops1", peer: "10.0.0.1", xff: "198.51.100.9,", problem: `""`},
		{mode: "hops1", peer: "", xff: "198.51.100.9", problem: "did not report"},

		// hops: 2.
		{mode: "hops2", peer: "10.0.0.2", xff: "198.51.100.9, 10.0.0.1, 10.0.0.2", client: "198.51.100.9"},
		{mode: "hops2", peer: "10.0.0.2", xff: "203.0.113.7, 198.51.100.9, 10.0.0.1, 10.0.0.2", client: "198.51.100.9"},
		{mode: "hops2", peer: "10.0.0.2", xff: "198.51.100.9, 10.0.0.1", client: "198.51.100.9"},
		{mode: "hops2", peer: "10.0.0.2", xff: "10.0.0.1, 10.0.0.2", client: "10.0.0.2"}, // short chain
		{mode: "hops2", peer: "10.0.0.2", xff: "10.0.0.1", client: "10.0.0.2"},
		{mode: "hops2", peer: "10.0.0.2", xff: "198.51.100.9, bad, 10.0.0.2", problem: `"bad", 1 from the right`},
		{mode: "hops2", peer: "10.0.0.2", xff: "bad, 10.0.0.1, 10.0.0.2", problem: `"bad", 2 from the right`},

		// cidrs: skip trusted proxies from the right.
		{mode: "cidrs", peer: "10.0.0.1", xff: "203.0.113.7, 198.51.100.9, 10.0.0.7, 10.0.0.1", client: "198.51.100.9"},
		{mode: "cidrs", peer: "10.0.0.1", xff: "198.51.100.9", client: "198.51.100.9"},
		{mode: "cidrs", peer: "198.18.0.1", xff: "203.0.113.7", client: "198.18.0.1"}, // untrusted peer: XFF ignored
		{mode: "cidrs", peer: "198.18.0.1", xff: "garbage", client: "198.18.0.1"},
		{mode: "cidrs", peer: "10.0.0.1", xff: "10.0.0.3, 10.0.0.1", client: "10.0.0.1"}, // all trusted: the peer
		{mode: "cidrs", peer: "fd00::1", xff: "2001:db8::9, fd00::1", client: "2001:db8::9"},
		{mode: "cidrs", peer: "10.0.0.1", xff: "unknown, 10.0.0.1", problem: `"unknown"`},

		// both: at most one hop, and it must be a trusted proxy.
		{mode: "both", peer: "10.0.0.1", xff: "198.51.100.9, 10.0.0.1", client: "198.51.100.9"},
		{mode: "both", peer: "10.0.0.1", xff: "203.0.113.7, 10.0.0.5, 10.0.0.1", client: "10.0.0.5"},
		{mode: "both", peer: "198.18.0.1", xff: "203.0.113.7, 198.18.0.1", client: "198.18.0.1"}, // bypassed the proxy
		{mode: "both", peer: "10.0.0.1", xff: "", client: "10.0.0.1"},

		// Forms of an entry.
		{mode: "hops1", peer: "10.0.0.1", xff: "198.51.100.9:4711", client: "198.51.100.9"},
		{mode: "hops1", peer: "10.0.0.1", xff: "[2001:db8::9]:443", client: "2001:db8::9"},
		{mode: "hops1", peer: "10.0.0.1", xff: "[2001:db8::9]", client: "2001:db8::9"},
		{mode: "hops1", peer: "10.0.0.1", xff: "2001:db8::9", client: "2001:db8::9"},
		{mode: "hops1", peer: "10.0.0.1", xff: "2001:db8::9:443", client: "2001:db8::9:443"}, // an address, not a port
		{mode: "hops1", peer: "10.0.0.1", xff: "::ffff:198.51.100.9", client: "198.51.100.9"},
		{mode: "hops1", peer: "10.0.0.1", xff: "[::ffff:198.51.100.9]:80", client: "198.51.100.9"},
		{mode: "hops1", peer: "10.0.0.1", xff: "fe80::1%eth0", problem: "fe80::1%eth0"},
		{mode: "hops1", peer: "10.0.0.1", xff: "[198.51.100.9]", problem: "198.51.100.9"},
		{mode: "hops1", peer: "10.0.0.1", xff: "[2001:db8::9", problem: "2001:db8::9"},
		{mode: "hops1", peer: "10.0.0.1", xff: "[2001:db8::9]x", problem: "2001:db8::9"},
		{mode: "hops1", peer: "10.0.0.1", xff: "[2001:db8::9]:", problem: "2001:db8::9"},
		{mode: "hops1", peer: "10.0.0.1", xff: "198.51.100.9:99999", problem: "99999"},
		{mode: "hops1", peer: "10.0.0.1", xff: "198.51.100.9:", problem: "198.51.100.9:"},
		{mode: "hops1", peer: "10.0.0.1", xff: "198.51.100.9:80:80", problem: "198.51.100.9:80:80"},
		{mode: "hops1", peer: "10.0.0.1", xff: "010.1.1.1", problem: "010.1.1.1"},
		{mode: "hops1", peer: "10.0.0.1", xff: "_hidden", problem: "_hidden"},
		{mode: "hops1", peer: "10.0.0.1", xff: `"198.51.100.9"`, problem: "198.51.100.9"},
		{mode: "hops1", peer: "10.0.0.1", xff: "for=198.51.100.9", problem: "for="},
		{mode: "hops1", peer: "10.0.0.1", xff: strings.Repeat("9", 200), problem: "…"},
	} {
		t.Run(tc.mode+"/"+tc.xff, func(t *testing.T) {
			c := modes[tc.mode].Connect(request(tc.peer, tc.xff))
			got := ""
			if c.ClientAddr.IsValid() {
				got = c.ClientAddr.String()
			}
			if got != tc.client {
				t.Fatalf("client = %q, want %q (problem %q)", got, tc.client, c.Problem)
			}
			if tc.client == "" && !strings.Contains(c.Problem, tc.problem) {
				t.Errorf("problem %q does not mention %q", c.Problem, tc.problem)
			}
			if tc.client != "" && c.Problem != "" {
				t.Errorf("valid client with a problem: %q", c.Problem)
			}
		})
	}
}

// An unparseable entry that must be believed refuses the request when a
// rule is needed, but not when none is.
func TestUnbelievableEntry(t *testing.T) {
	r := request("10.0.0.1", "garbage, 10.0.0.1")
	v := evaluate(proxied(t, "{hops: 1}"), r, "", false)
	if v.Allowed || v.Code != network.CodeForbiddenByFirewall || v.ClientAddr.IsValid() || v.Problem == "" {
		t.Errorf("deny vault: %+v", v)
	}
	open := firewall(t, "network: {trustedProxies: {hops: 1}}\n")
	if v := evaluate(open, r, "", false); !v.Allowed {
		t.Errorf("a vault without networkAcls needs no address: %+v", v)
	}
}

// With trustedProxies unset, whatever a client writes in X-Forwarded-For
// leaves the verdict as the peer alone would have it.
func TestSpoofedXFFChangesNothing(t *testing.T) {
	fw := firewall(t, aclConfig("Enabled", "Deny", "AzureServices"))
	spoofs := []string{
		"203.0.113.7", "203.0.113.7, 198.18.0.1", "10.1.2.3", "2001:db8:1::42", "garbage",
		"203.0.113.7, 10.1.2.3, 2001:db8:1::42", ",,,", "[2001:db8:1::42]:80",
	}
	for _, peer := range []string{"198.18.0.1", "203.0.113.9", "10.1.2.3", "10.9.0.1", "2001:db8:2::1"} {
		base := evaluate(fw, request(peer), "", false)
		for _, xff := range spoofs {
			if v := evaluate(fw, request(peer, xff), "", false); v != base {
				t.Errorf("peer %s, x-forwarded-for %q: %+v, without it %+v", peer, xff, v, base)
			}
		}
	}
}

// FuzzXFF: parsing never panics; without trustedProxies the client is the
// peer whatever the header says; with them the client is the peer, an
// address written in the header, or invalid with a reason.
func FuzzXFF(f *testing.F) {
	none := firewall(f, aclConfig("Enabled", "Deny", "AzureServices"))
	hops := proxied(f, "{hops: 2}")
	cidrs := proxied(f, `{cidrs: [10.0.0.0/8, "fd00::/8", 0.0.0.0/1]}`)
	both := proxied(f, `{hops: 3, cidrs: [10.0.0.0/8, "::/1"]}`)
	f.Add([]byte{10, 0, 0, 1}, "198.51.100.9, 10.0.0.1")
	f.Add([]byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, "[2001:db8::1]:80, fd00::1")
	f.Add([]byte{}, "garbage")
	f.Add([]byte{1, 2, 3, 4}, ",,, ,")
	f.Add([]byte{10, 1, 1, 1}, "fe80::1%eth0, 1.2.3.4:5, [::ffff:1.2.3.4]")
	f.Fuzz(func(t *testing.T, peerBytes []byte, xff string) {
		var peer netip.Addr
		switch len(peerBytes) {
		case 4:
			peer = netip.AddrFrom4([4]byte(peerBytes))
		case 16:
			peer = netip.AddrFrom16([16]byte(peerBytes))
		}
		r := &authz.Request{Headers: map[string]string{"x-forwarded-for": xff}}
		if peer.IsValid() {
			r.Peer = netip.AddrPortFrom(peer, 443)
		}
		c := none.Connect(r)
		if peer.IsValid() && (c.ClientAddr != peer.Unmap() || c.Problem != "") {
			t.Fatalf("without trustedProxies the client is the peer %s, got %s (%q)", peer, c.ClientAddr, c.Problem)
		}
		written := map[netip.Addr]bool{}
		for e := range strings.SplitSeq(xff, ",") {
			e = strings.Trim(e, " \t")
			e = strings.TrimPrefix(e, "[")
			if i := strings.LastIndexAny(e, "]"); i >= 0 {
				e = e[:i]
			} else if strings.Count(e, ":") == 1 {
				e = e[:strings.IndexByte(e, ':')]
			}
			if a, err := netip.ParseAddr(e); err == nil {
				written[a.Unmap()] = true
			}
		}
		for _, fw := range []*network.Firewall{hops, cidrs, both} {
			c := fw.Connect(r)
			switch {
			case !c.ClientAddr.IsValid():
				if c.Problem == "" {
					t.Fatalf("invalid client without a problem: %q", xff)
				}
			case c.Problem != "":
				t.Fatalf("valid client %s with a problem %q", c.ClientAddr, c.Problem)
			case c.ClientAddr == peer.Unmap():
			case !written[c.ClientAddr] || c.ClientAddr.Zone() != "" || c.ClientAddr.Is4In6():
				t.Fatalf("client %s is neither the peer %s nor written in %q", c.ClientAddr, peer, xff)
			}
		}
	})
}
