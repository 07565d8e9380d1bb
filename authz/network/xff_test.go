package network_test

import (
	"net/netip"
	"strconv"
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
		{mode: "hops1", peer: "10.0.0.1", xff: "198.51.100.9:65535", client: "198.51.100.9"},
		{mode: "hops1", peer: "10.0.0.1", xff: "[2001:db8::9]:65535", client: "2001:db8::9"},
		{mode: "hops1", peer: "10.0.0.1", xff: "198.51.100.9:65536", problem: "198.51.100.9:65536"},
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
// peer whatever the header says; with them the client is exactly the hop
// that an independent model of doc.go's rules (xffOracle: a slice walk with
// its own entry parser) picks for the configured hop count and ranges, or
// invalid with a reason exactly when that model meets a non-address.
func FuzzXFF(f *testing.F) {
	none := firewall(f, aclConfig("Enabled", "Deny", "AzureServices"))
	modes := []struct {
		name  string
		fw    *network.Firewall
		hops  int
		cidrs []netip.Prefix
	}{
		{"hops", proxied(f, "{hops: 2}"), 2, nil},
		{"cidrs", proxied(f, `{cidrs: [10.0.0.0/8, "fd00::/8", 0.0.0.0/1]}`), 0,
			[]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("0.0.0.0/1")}},
		{"both", proxied(f, `{hops: 3, cidrs: [10.0.0.0/8, "::/1"]}`), 3,
			[]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::/1")}},
	}
	v4 := func(a, b, c, d byte) []byte { return []byte{a, b, c, d} }
	fd00 := []byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	mapped := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1}
	f.Add(v4(10, 0, 0, 1), "198.51.100.9, 10.0.0.1")
	f.Add(fd00, "[2001:db8::1]:80, fd00::1")
	f.Add([]byte{}, "garbage")
	f.Add(v4(1, 2, 3, 4), ",,, ,")
	f.Add(v4(10, 1, 1, 1), "fe80::1%eth0, 1.2.3.4:5, [::ffff:1.2.3.4]")
	// Hostile shapes: look-alike addresses, ports, padding, raw bytes,
	// spoofed entries left of the client, mapped peers, long chains.
	f.Add(v4(10, 0, 0, 1), "203.0.113.7, 198.51.100.9, 10.0.0.2, 10.0.0.1")
	f.Add(v4(10, 0, 0, 1), "010.0.0.1")
	f.Add(v4(10, 0, 0, 1), "10.0.0.1:65536, 10.0.0.2")
	f.Add(v4(10, 0, 0, 1), "198.51.100.9:080")
	f.Add(v4(10, 0, 0, 1), "[198.51.100.9]:80")
	f.Add(v4(10, 0, 0, 1), "[::1]x")
	f.Add(v4(10, 0, 0, 1), "unknown, _hidden")
	f.Add(v4(10, 0, 0, 1), "\t198.51.100.9\t ,\t10.0.0.2 ")
	f.Add(v4(10, 0, 0, 1), "198.51.100.9\x00")
	f.Add(v4(10, 0, 0, 1), "\xff\xfe, 10.0.0.2")
	f.Add(v4(10, 0, 0, 1), "١.2.3.4")
	f.Add(v4(10, 0, 0, 1), "198.51.100.9,10.0.0.1,10.0.0.1,10.0.0.1,10.0.0.1")
	f.Add(mapped, "198.51.100.9, ::ffff:10.0.0.1")
	f.Add(mapped, "198.51.100.9, 10.0.0.1")
	f.Add(v4(127, 0, 0, 1), "198.51.100.9, 127.0.0.1")
	f.Add(fd00, "2001:db8::1:80, fd00::2")
	f.Add(fd00, "[fd00::2]:80")
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
		for _, m := range modes {
			c := m.fw.Connect(r)
			want, ok := xffOracle(peer, xff, m.hops, m.cidrs)
			switch {
			case !ok:
				if c.ClientAddr.IsValid() || c.Problem == "" {
					t.Fatalf("%s: peer %s, %q: want an invalid client with a problem, got %s (%q)", m.name, peer, xff, c.ClientAddr, c.Problem)
				}
			case c.ClientAddr != want || c.Problem != "":
				t.Fatalf("%s: peer %s, %q: client %s (%q), want %s", m.name, peer, xff, c.ClientAddr, c.Problem, want)
			}
		}
	})
}

// xffOracle is doc.go's rule, written from the prose: the chain is the
// header's entries then the peer (not repeated when the last entry is the
// peer); walk left from the peer, skipping at most hops entries (when
// hops > 0) and only entries inside cidrs (when there are any); the entry
// where the walk stops is the client; a chain that runs out gives the peer;
// a non-address the walk must read gives no client.
func xffOracle(peer netip.Addr, xff string, hops int, cidrs []netip.Prefix) (netip.Addr, bool) {
	if !peer.IsValid() {
		return netip.Addr{}, false
	}
	peer = peer.Unmap()
	var entries []string
	if strings.Trim(xff, " \t") != "" {
		for _, e := range strings.Split(xff, ",") {
			entries = append(entries, strings.Trim(e, " \t"))
		}
	}
	if n := len(entries); n > 0 {
		if a, ok := oracleEntry(entries[n-1]); ok && a == peer {
			entries = entries[:n-1]
		}
	}
	inRanges := func(a netip.Addr) bool {
		for _, p := range cidrs {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	cur := peer
	for skipped := 0; ; skipped++ {
		if hops > 0 && skipped == hops || len(cidrs) > 0 && !inRanges(cur) {
			return cur, true
		}
		if skipped == len(entries) {
			return peer, true
		}
		a, ok := oracleEntry(entries[len(entries)-1-skipped])
		if !ok {
			return netip.Addr{}, false
		}
		cur = a
	}
}

// oracleEntry accepts the forms doc.go lists: a bare address (an
// unbracketed IPv6 address is never address-and-port), IPv4:port, [IPv6],
// [IPv6]:port; no zones; ports are decimal up to 65535.
func oracleEntry(e string) (netip.Addr, bool) {
	port := func(s string) bool {
		n, err := strconv.Atoi(s)
		return err == nil && len(s) <= 5 && strings.Trim(s, "0123456789") == "" && n <= 65535
	}
	if strings.Contains(e, "%") {
		return netip.Addr{}, false
	}
	if rest, ok := strings.CutPrefix(e, "["); ok {
		host, tail, ok := strings.Cut(rest, "]")
		if !ok || tail != "" && (!strings.HasPrefix(tail, ":") || !port(tail[1:])) {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return netip.Addr{}, false
		}
		return a.Unmap(), true
	}
	if strings.Count(e, ":") == 1 {
		host, p, _ := strings.Cut(e, ":")
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is4() || !port(p) {
			return netip.Addr{}, false
		}
		return a, true
	}
	a, err := netip.ParseAddr(e)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
