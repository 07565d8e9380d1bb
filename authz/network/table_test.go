package network

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// naiveLookup is the reference: a linear scan for the longest prefix
// containing a, the lowest value among equal prefixes. An IPv4-mapped address
// is its IPv4 address, as the firewall's client addresses always are.
func naiveLookup(entries []entry, a netip.Addr) int32 {
	a = a.Unmap()
	best, bits := int32(-1), -1
	for _, e := range entries {
		if !e.prefix.Contains(a) {
			continue
		}
		if b := e.prefix.Bits(); b > bits || (b == bits && e.val < best) {
			best, bits = e.val, b
		}
	}
	return best
}

func TestTableLookup(t *testing.T) {
	entries := []entry{
		{netip.MustParsePrefix("0.0.0.0/0"), 0},
		{netip.MustParsePrefix("10.0.0.0/8"), 1},
		{netip.MustParsePrefix("10.255.255.0/24"), 2}, // ends where its parent ends
		{netip.MustParsePrefix("10.1.0.0/16"), 3},
		{netip.MustParsePrefix("10.1.0.0/16"), 9}, // equal: the lower value wins
		{netip.MustParsePrefix("10.1.2.3/32"), 4},
		{netip.MustParsePrefix("10.1.2.4/32"), 5}, // adjacent to the one above
		{netip.MustParsePrefix("255.255.255.255/32"), 6},
		{netip.MustParsePrefix("2001:db8::/32"), 7},
		{netip.MustParsePrefix("2001:db8::1/128"), 8},
		{netip.MustParsePrefix("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120"), 10},
		{netip.MustParsePrefix("::/0"), 11},
		{netip.MustParsePrefix("::ffff:0:0/96"), 12}, // an IPv6 rule, never an IPv4 one
	}
	p := compilePrefixes(entries)
	for _, tc := range []struct {
		addr string
		want int32
	}{
		{"9.255.255.255", 0},
		{"10.0.0.0", 1},
		{"10.0.255.255", 1},
		{"10.1.0.0", 3},
		{"10.1.2.2", 3},
		{"10.1.2.3", 4},
		{"10.1.2.4", 5},
		{"10.1.2.5", 3},
		{"10.1.255.255", 3},
		{"10.2.0.0", 1},
		{"10.255.254.255", 1},
		{"10.255.255.0", 2},
		{"10.255.255.255", 2},
		{"11.0.0.0", 0},
		{"255.255.255.254", 0},
		{"255.255.255.255", 6},
		{"::ffff:10.1.2.3", 4}, // an IPv4-mapped address is its IPv4 address
		{"::1", 11},
		{"2001:db8::", 7},
		{"2001:db8::1", 8},
		{"2001:db8::2", 7},
		{"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 7},
		{"2001:db9::", 11},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:feff", 11},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00", 10},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 10},
	} {
		a := netip.MustParseAddr(tc.addr)
		if got := p.lookup(a); got != tc.want {
			t.Errorf("lookup(%s) = %d, want %d", tc.addr, got, tc.want)
		}
		if ref := naiveLookup(entries, a); ref != tc.want {
			t.Errorf("reference disagrees on %s: %d, want %d", tc.addr, ref, tc.want)
		}
	}
}

func TestTableEmpty(t *testing.T) {
	p := compilePrefixes(nil)
	for _, s := range []string{"0.0.0.0", "203.0.113.7", "::", "2001:db8::1"} {
		if got := p.lookup(netip.MustParseAddr(s)); got != -1 {
			t.Errorf("empty table: lookup(%s) = %d, want -1", s, got)
		}
	}
	if p.v4.front != nil || p.v6.front != nil {
		t.Error("an empty table should not allocate a front index")
	}
}

// byteSource turns fuzz input into choices; it yields zeros when exhausted.
type byteSource struct{ b []byte }

func (s *byteSource) byte() byte {
	if len(s.b) == 0 {
		return 0
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c
}

func (s *byteSource) bytes(n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = s.byte()
	}
	return out
}

// genAddr makes an address that is often close to an earlier one, so that
// generated prefixes nest, touch and repeat.
func genAddr(s *byteSource, pool []netip.Addr, v6 bool) netip.Addr {
	mode := s.byte()
	var b [16]byte
	switch {
	case len(pool) > 0 && mode%4 != 0:
		base := pool[int(s.byte())%len(pool)]
		if base.Is4() == v6 {
			break
		}
		if base.Is4() {
			a4 := base.As4()
			copy(b[:4], a4[:])
		} else {
			b = base.As16()
		}
		n := 4
		if v6 {
			n = 16
		}
		// Flip a few low bits.
		x := int(mode>>2) % n
		b[n-1-x] ^= s.byte()
	default:
		if v6 {
			copy(b[:], s.bytes(16))
		} else {
			copy(b[:4], s.bytes(4))
		}
	}
	if v6 {
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte(b[:4]))
}

// edges lists addresses around a prefix's boundaries.
func edges(p netip.Prefix) []netip.Addr {
	first, last := rangeOf(p)
	out := []netip.Addr{p.Addr()}
	for _, k := range []u128{first, last} {
		out = append(out, addrOf(k, p.Addr().Is4()))
	}
	if !last.isMax() {
		out = append(out, addrOf(last.next(), p.Addr().Is4()))
	}
	if first != (u128{}) {
		prev := u128{first.hi, first.lo - 1}
		if first.lo == 0 {
			prev.hi--
		}
		out = append(out, addrOf(prev, p.Addr().Is4()))
	}
	return out
}

func addrOf(k u128, v4 bool) netip.Addr {
	if v4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(k.hi>>32))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	return netip.AddrFrom16(b)
}

// FuzzTable compares the compiled lookup with a linear scan on random rules
// (nested, adjacent, equal, /0 to /128, both families) and addresses at and
// around every rule's edges.
func FuzzTable(f *testing.F) {
	f.Add([]byte{3, 0, 24, 0, 10, 1, 2, 3, 1, 16, 1, 0, 0, 1, 32, 2, 5, 0})
	f.Add([]byte{8, 1, 48, 0, 0x20, 0x01, 0x0d, 0xb8, 1, 128, 1, 0, 0, 1, 0, 0, 0, 0xff})
	f.Add([]byte{20, 0, 0, 0, 0, 1, 0, 255, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &byteSource{b: data}
		n := int(s.byte()) % 40
		var entries []entry
		var pool []netip.Addr
		for i := range n {
			c := s.byte()
			v6 := c&1 == 1
			full := 32
			if v6 {
				full = 128
			}
			bits := int(s.byte()) % (full + 1)
			a := genAddr(s, pool, v6)
			pool = append(pool, a)
			entries = append(entries, entry{netip.PrefixFrom(a, bits).Masked(), int32(i)})
		}
		p := compilePrefixes(entries)
		probes := append([]netip.Addr{}, pool...)
		for _, e := range entries {
			probes = append(probes, edges(e.prefix)...)
		}
		for range int(s.byte()) % 16 {
			probes = append(probes, genAddr(s, pool, s.byte()&1 == 1))
		}
		probes = append(probes, netip.IPv4Unspecified(), netip.IPv6Unspecified(),
			netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))
		for _, a := range probes {
			if got, want := p.lookup(a), naiveLookup(entries, a); got != want {
				t.Fatalf("lookup(%s) = %d, linear scan says %d; rules %v", a, got, want, entries)
			}
		}
	})
}

// TestTableFrontSize: the front index grows with the table (a hundred
// rules get a small one, ten thousand the full 2^16 buckets), and lookups
// agree with the reference at every size, for rules clustered in one
// bucket and spread over the space.
func TestTableFrontSize(t *testing.T) {
	for _, tc := range []struct {
		n        int
		spread   bool
		maxFront int
	}{
		{1, false, 1<<minFrontBits + 1},
		{100, false, 1<<minFrontBits + 1},
		{100, true, 1<<minFrontBits + 1},
		{1000, true, 1<<11 + 1},
		{10000, true, 1<<maxFrontBits + 1},
		{40000, true, 1<<maxFrontBits + 1},
	} {
		var entries []entry
		for k := range tc.n {
			var a [4]byte
			if tc.spread { // every /24 somewhere in the space
				binary.BigEndian.PutUint32(a[:], uint32(k)*2654435761&^0xff)
			} else { // all in 10.0.0.0/16: one bucket at any size
				a = [4]byte{10, 0, byte(k >> 8 & 0xff), byte(k)}
			}
			bits := 24
			if k%2 == 1 || !tc.spread {
				bits = 32
			}
			entries = append(entries, entry{netip.PrefixFrom(netip.AddrFrom4(a), bits).Masked(), int32(k)})
		}
		p := compilePrefixes(entries)
		if got := len(p.v4.front); got == 0 || got > tc.maxFront {
			t.Errorf("%d rules (spread %v): a front index of %d entries, want 1…%d", tc.n, tc.spread, got, tc.maxFront)
		}
		if !tc.spread && tc.n > 1 { // clustered rules still spread over the buckets
			widest := uint32(0)
			for b := 0; b+1 < len(p.v4.front); b++ {
				widest = max(widest, p.v4.front[b+1]-p.v4.front[b])
			}
			if widest > 8 {
				t.Errorf("%d rules in one /16: a bucket spans %d intervals, want a few", tc.n, widest)
			}
		}
		for k, e := range entries {
			if tc.n > 1000 && k%97 != 0 { // the reference is a linear scan
				continue
			}
			for _, a := range edges(e.prefix) {
				if got, want := p.lookup(a), naiveLookup(entries, a); got != want {
					t.Fatalf("%d rules: lookup(%s) = %d, want %d", tc.n, a, got, want)
				}
			}
		}
	}
}
