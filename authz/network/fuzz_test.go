package network

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/vaultwall/vaultwall/authz"
	"github.com/vaultwall/vaultwall/authz/section"
)

// genRules builds deny-by-default sections with random IP rules, subnets
// (never overlapping, as validation demands) and virtual-network rules
// naming some of them in random case, validated as config.Parse validates
// them; text describes them for a failure message.
func genRules(t *testing.T, s *byteSource) (cfg Config, text string, probes []netip.Addr) {
	var b strings.Builder
	acl := &NetworkAcls{DefaultAction: "Deny", Bypass: "None"}
	var pool []netip.Addr
	seen := map[netip.Prefix]bool{}
	for range int(s.byte()) % 48 {
		v6 := s.byte()&1 == 1
		full := 32
		if v6 {
			full = 128
		}
		bits := int(s.byte()) % (full + 1)
		a := genAddr(s, pool, v6)
		pool = append(pool, a)
		p, err := ParsePrefix(netip.PrefixFrom(a, bits).Masked().String())
		if err != nil || seen[p] {
			continue
		}
		seen[p] = true
		value := p.String()
		if p.IsSingleIP() && s.byte()&1 == 0 {
			value = p.Addr().String()
		}
		acl.IPRules = append(acl.IPRules, IPRule{Value: value})
		fmt.Fprintf(&b, "ipRule %s\n", value)
		probes = append(probes, edges(p)...)
	}
	var n Network
	var prefixes []netip.Prefix
	for i := range int(s.byte()) % 6 {
		id := fmt.Sprintf("/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s%d", i)
		var kept []string
		for range 1 + int(s.byte())%3 {
			v6 := s.byte()&1 == 1
			full := 32
			if v6 {
				full = 128
			}
			bits := 1 + int(s.byte())%full
			a := genAddr(s, pool, v6)
			pool = append(pool, a)
			p, err := ParsePrefix(netip.PrefixFrom(a, bits).Masked().String())
			if err != nil {
				continue
			}
			overlaps := false
			for _, q := range prefixes {
				overlaps = overlaps || q.Overlaps(p)
			}
			if overlaps {
				continue
			}
			prefixes = append(prefixes, p)
			kept = append(kept, p.String())
			probes = append(probes, edges(p)...)
		}
		if len(kept) == 0 {
			continue
		}
		n.Subnets = append(n.Subnets, Subnet{ID: id, AddressPrefixes: kept})
		fmt.Fprintf(&b, "subnet %s %v\n", id, kept)
		switch s.byte() % 3 {
		case 1:
			acl.VirtualNetworkRules = append(acl.VirtualNetworkRules, VirtualNetworkRule{ID: id})
		case 2:
			acl.VirtualNetworkRules = append(acl.VirtualNetworkRules, VirtualNetworkRule{ID: strings.ToLower(id)})
		}
	}
	for _, r := range acl.VirtualNetworkRules {
		fmt.Fprintf(&b, "virtualNetworkRule %s\n", r.ID)
	}
	probes = append(probes, pool...)
	for range int(s.byte()) % 8 {
		probes = append(probes, genAddr(s, pool, s.byte()&1 == 1))
	}
	var errs section.Errors
	acl.Validate(&errs, Limits{IPRules: 1000, VirtualNetworkRules: 200}, n.Subnets, nil)
	n.Validate(&errs)
	if len(errs) > 0 {
		t.Fatalf("generated sections do not validate: %v\n%s", errors.Join(errs...), b.String())
	}
	return Config{NetworkAcls: acl, Network: n}, b.String(), probes
}

// naiveVerdict is the reference for step 5: a linear scan over the rules as
// written, most specific IP rule first (lowest index on ties), then the
// subnet holding the address and the rule naming it.
func naiveVerdict(cfg Config, a netip.Addr) (rule, subnet string) {
	acl := cfg.NetworkAcls
	best, bits := -1, -1
	for i := range acl.IPRules {
		if p := acl.IPRules[i].Prefix(); p.Contains(a) && p.Bits() > bits {
			best, bits = i, p.Bits()
		}
	}
	for i := range cfg.Network.Subnets {
		for _, p := range cfg.Network.Subnets[i].Prefixes() {
			if p.Contains(a) {
				subnet = cfg.Network.Subnets[i].ID
			}
		}
	}
	if best >= 0 {
		return fmt.Sprintf("ipRules[%d]=%s", best, acl.IPRules[best].Value), subnet
	}
	for j, r := range acl.VirtualNetworkRules {
		if subnet != "" && strings.EqualFold(r.ID, subnet) {
			return fmt.Sprintf("virtualNetworkRules[%d]=%s", j, r.ID), subnet
		}
	}
	return RuleDefaultDeny, subnet
}

// FuzzFirewall is the differential test of the compiled firewall: for random
// rules and addresses it must reach the same allow or deny, through the same
// rule, as a linear scan.
func FuzzFirewall(f *testing.F) {
	f.Add([]byte{6, 0, 24, 0, 203, 0, 113, 0, 0, 32, 1, 0, 3, 7, 1, 48, 0, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 16, 0, 10, 1, 0, 0, 1, 3})
	f.Add([]byte{30, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 5, 1, 2, 3})
	f.Add([]byte{0, 4, 0, 8, 1, 10, 0, 0, 0, 2, 1, 1, 64, 1, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, text, probes := genRules(t, &byteSource{b: data})
		fw, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range probes {
			r := &authz.Request{Peer: netip.AddrPortFrom(a, 443)}
			d := &authz.Decision{Request: r}
			d.Network.Connection = fw.Connect(r)
			v := fw.Evaluate(d)
			rule, subnet := naiveVerdict(cfg, a.Unmap())
			if v.Rule != rule || v.Allowed != (rule != RuleDefaultDeny) || v.SubnetID != subnet {
				t.Fatalf("%s: allowed %v by %q in subnet %q; linear scan: %q in subnet %q\n%s",
					a, v.Allowed, v.Rule, v.SubnetID, rule, subnet, text)
			}
		}
	})
}
