package network_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/network"
)

// benchSet is a firewall with n IP rules (half IPv4 /24 and /32, half IPv6
// /48 and /128, spread over the public space) and 200 subnets each named by
// a virtual-network rule, plus requests that hit and miss them.
type benchSet struct {
	fw   *network.Firewall
	reqs []*authz.Request
}

func newBenchSet(tb testing.TB, n int, trustedProxies string) benchSet {
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	var y strings.Builder
	fmt.Fprintf(&y, "limits: {maxIpRules: %d}\nproperties:\n  networkAcls:\n    defaultAction: Deny\n    bypass: AzureServices\n    ipRules:\n", max(n, 1))
	seen := map[netip.Prefix]bool{}
	var rules []netip.Prefix
	for len(rules) < n {
		var p netip.Prefix
		if len(rules)%2 == 0 {
			a := netip.AddrFrom4([4]byte{byte(11 + rng.IntN(180)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
			p = netip.PrefixFrom(a, []int{24, 32}[rng.IntN(2)]).Masked()
		} else {
			var b [16]byte
			b[0], b[1] = 0x20, byte(rng.IntN(256))
			for i := 2; i < 16; i++ {
				b[i] = byte(rng.IntN(256))
			}
			p = netip.PrefixFrom(netip.AddrFrom16(b), []int{48, 128}[rng.IntN(2)]).Masked()
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		rules = append(rules, p)
		fmt.Fprintf(&y, "      - value: %s\n", p)
	}
	y.WriteString("    virtualNetworkRules:\n")
	const nSubnets = 200
	subnetID := func(i int) string {
		return fmt.Sprintf("/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s%d", i)
	}
	for i := range nSubnets {
		fmt.Fprintf(&y, "      - id: %s\n", strings.ToLower(subnetID(i)))
	}
	fmt.Fprintf(&y, "network:\n  trustedProxies: %s\n  subnets:\n", trustedProxies)
	for i := range nSubnets {
		fmt.Fprintf(&y, "    - id: %s\n      addressPrefixes: [10.%d.%d.0/24, \"fd00:%x::/64\"]\n", subnetID(i), i/256, i%256, i)
	}
	fw := firewall(tb, y.String())

	inside := func(p netip.Prefix) netip.Addr {
		b := p.Addr().AsSlice()
		for i := p.Bits() / 8; i < len(b); i++ {
			b[i] = byte(rng.IntN(256))
		}
		a, _ := netip.AddrFromSlice(b)
		return a
	}
	var reqs []*authz.Request
	for i := range 1024 {
		var a netip.Addr
		switch i % 8 {
		case 0, 1, 2: // an IP rule, IPv4 and IPv6 alike
			a = inside(rules[rng.IntN(len(rules))])
		case 3: // a subnet
			a = netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(nSubnets)), byte(rng.IntN(256))})
		case 4:
			s := rng.IntN(nSubnets)
			a = netip.AddrFrom16([16]byte{0xfd, 0, byte(s >> 8), byte(s), 0, 0, 0, 0, byte(rng.IntN(256)), 9: byte(rng.IntN(256))})
		case 5, 6: // nothing, IPv4
			a = netip.AddrFrom4([4]byte{byte(200 + rng.IntN(23)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		case 7: // nothing, IPv6
			a = netip.AddrFrom16([16]byte{0x2c, byte(rng.IntN(256)), byte(rng.IntN(256)), 15: byte(rng.IntN(256))})
		}
		r := &authz.Request{Headers: map[string]string{}}
		if trustedProxies == "{hops: 0}" {
			r.Peer = netip.AddrPortFrom(a, 40000)
		} else {
			r.Peer = netip.AddrPortFrom(netip.MustParseAddr("10.255.0.1"), 40000)
			r.Headers["x-forwarded-for"] = "192.0.2.77, " + a.String() + ", 10.255.0.1"
		}
		reqs = append(reqs, r)
	}
	return benchSet{fw: fw, reqs: reqs}
}

// run is one pass of the hot path over every request; it returns how many
// were allowed, so that the work cannot be optimised away.
func (s *benchSet) run(d *authz.Decision) int {
	allowed := 0
	for _, r := range s.reqs {
		d.Request = r
		d.Network = authz.NetworkVerdict{Connection: s.fw.Connect(r)}
		if v := s.fw.Evaluate(d); v.Allowed {
			allowed++
		}
	}
	return allowed
}

func benchFirewall(b *testing.B, s benchSet) {
	d := &authz.Decision{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := s.reqs[i%len(s.reqs)]
		d.Request = r
		d.Network = authz.NetworkVerdict{Connection: s.fw.Connect(r)}
		d.Network = s.fw.Evaluate(d)
	}
}

// BenchmarkFirewall is Connect + Evaluate per request, with 10, 1,000 and
// 10,000 IP rules and 200 subnet rules; TestCostIsFlat compares them.
func BenchmarkFirewall(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		s := newBenchSet(b, n, "{hops: 0}")
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) { benchFirewall(b, s) })
	}
	for _, n := range []int{10, 10000} {
		s := newBenchSet(b, n, "{hops: 1, cidrs: [10.255.0.0/16]}")
		b.Run(fmt.Sprintf("xff/rules=%d", n), func(b *testing.B) { benchFirewall(b, s) })
	}
}

// The hot path allocates nothing: plain peers, X-Forwarded-For, private
// link, trusted services, allows and denies alike.
func TestHotPathAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 10,000 rules")
	}
	for _, tp := range []string{"{hops: 0}", "{hops: 1, cidrs: [10.255.0.0/16]}"} {
		s := newBenchSet(t, 10000, tp)
		d := &authz.Decision{}
		allowed := 0
		if n := testing.AllocsPerRun(20, func() { allowed = s.run(d) }); n != 0 {
			t.Errorf("trustedProxies %s: %v allocations per pass of %d requests", tp, n, len(s.reqs))
		}
		if allowed == 0 || allowed == len(s.reqs) {
			t.Errorf("trustedProxies %s: %d of %d allowed: the set should mix hits and misses", tp, allowed, len(s.reqs))
		}
	}
	fw := firewall(t, aclConfig("Disabled", "Deny", "AzureServices"))
	link := request("172.16.0.9")
	link.PrivateLink = authz.PrivateLink{AzureLinkID: linkID, HasAzureLinkID: true}
	aws := request("172.16.0.9")
	aws.PrivateLink = authz.PrivateLink{AWSEndpointID: vpce}
	reqs := []*authz.Request{link, aws, request("198.18.0.1")}
	d := &authz.Decision{}
	n := testing.AllocsPerRun(100, func() {
		for _, r := range reqs {
			d.Network = authz.NetworkVerdict{Connection: fw.Connect(r), TrustedService: "Backup", TrustedInScope: true}
			d.Network = fw.Evaluate(d)
		}
	})
	if n != 0 {
		t.Errorf("private link and trusted services: %v allocations", n)
	}
}

// One compiled firewall serves every request at once (run with -race).
func TestConcurrentUse(t *testing.T) {
	s := newBenchSet(t, 1000, "{hops: 1, cidrs: [10.255.0.0/16]}")
	want := s.run(&authz.Decision{})
	got := make(chan int)
	for range 4 {
		go func() { got <- s.run(&authz.Decision{}) }()
	}
	for range 4 {
		if n := <-got; n != want {
			t.Errorf("concurrent pass allowed %d, a lone pass %d", n, want)
		}
	}
}

// TestCostIsFlat holds doc.go's claim that a lookup's cost does not grow
// with the number of rules: Connect + Evaluate over 10,000 IP rules against
// 10 rules, measured with testing.Benchmark inside the test so that CI checks
// the claim on every run instead of skipping it.
//
// It asserts what holds on any machine: no allocation at either size, and a
// cost ratio within a generous bound (2.5×: a linear scan of 10,000 rules
// would be hundreds of times slower), the rounds interleaved and the best of
// each taken so that a busy neighbour slows both sizes alike. -race changes
// both sides the same way. VAULTWALL_PERF=1 tightens it to the 1.2× the
// benchmarks show on a quiet machine, with the default -benchtime.
func TestCostIsFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 10,000 rules")
	}
	bound, rounds := 2.5, 5
	if os.Getenv("VAULTWALL_PERF") != "" {
		bound = 1.2
	} else if f := flag.Lookup("test.benchtime"); f != nil {
		// Short runs: the best of five 50 ms runs per size.
		old := f.Value.String()
		if err := f.Value.Set("50ms"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.Value.Set(old) })
	}
	sets := map[int]benchSet{10: newBenchSet(t, 10, "{hops: 0}"), 10000: newBenchSet(t, 10000, "{hops: 0}")}
	best := map[int]float64{}
	for range rounds {
		for _, n := range []int{10, 10000} {
			r := testing.Benchmark(func(b *testing.B) { benchFirewall(b, sets[n]) })
			if r.N == 0 {
				t.Fatalf("rules=%d: the benchmark did not run", n)
			}
			if a := r.AllocsPerOp(); a != 0 {
				t.Errorf("rules=%d: %d allocations per request, want 0", n, a)
			}
			if ns := float64(r.T.Nanoseconds()) / float64(r.N); best[n] == 0 || ns < best[n] {
				best[n] = ns
			}
		}
	}
	small, large := best[10], best[10000]
	ratio := large / small
	t.Logf("10 rules: %.1f ns/op; 10,000 rules: %.1f ns/op; ratio %.3f (bound %.1f)", small, large, ratio, bound)
	if ratio > bound {
		t.Errorf("10,000 rules cost %.2f× 10 rules, want at most %.1f×", ratio, bound)
	}
}
