package network

import (
	"cmp"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"
)

// u128 is an address as a 128-bit number. IPv6 fills it; IPv4 occupies the
// top 32 bits, so that a prefix of b bits is a prefix of b bits of the u128
// in both families and one piece of code serves both.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }

func (a u128) isMax() bool { return a.hi == ^uint64(0) && a.lo == ^uint64(0) }

func (a u128) next() u128 {
	lo := a.lo + 1
	hi := a.hi
	if lo == 0 {
		hi++
	}
	return u128{hi, lo}
}

// onesBelow has the n low bits set (0 ≤ n ≤ 128).
func onesBelow(n int) u128 {
	switch {
	case n <= 0:
		return u128{}
	case n < 64:
		return u128{0, 1<<n - 1}
	case n < 128:
		return u128{1<<(n-64) - 1, ^uint64(0)}
	}
	return u128{^uint64(0), ^uint64(0)}
}

func keyOf(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{uint64(binary.BigEndian.Uint32(b[:])) << 32, 0}
	}
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// rangeOf is the first and last key of a prefix.
func rangeOf(p netip.Prefix) (first, last u128) {
	first = keyOf(p.Masked().Addr())
	m := onesBelow(128 - p.Bits())
	return first, u128{first.hi | m.hi, first.lo | m.lo}
}

// maxFrontBits is how many leading address bits index the front table of
// a large table. 2^16 buckets keep a bucket to a handful of intervals for
// rules spread over the address space, so a lookup is one index plus a
// search over a few entries, whatever the number of rules. A table of n
// intervals gets about n buckets (at least 2^minFrontBits, at most
// 2^maxFrontBits): a vault with a hundred rules then holds a 1 KiB index,
// not 256 KiB, which matters with a thousand vaults per process (memory,
// and a cold index on every request), while a bucket still holds few
// intervals and the search over them stays logarithmic.
//
// The buckets split the span the intervals' starts occupy, not the whole
// address space: the leading bits every start beyond the zero key shares
// (a vault's rules in one /16: sixteen bits) are compared once, a key
// outside them lies before the first start or after the last one, and
// the buckets index the bits after them. Clustered rules then spread over
// the buckets as rules spread over the space do.
const (
	maxFrontBits = 16
	minFrontBits = 8
)

// table answers longest-prefix-match queries for one address family. The
// prefixes are flattened at compile time into sorted, disjoint intervals,
// each labelled with the value of the most specific prefix covering it (the
// lowest value among equal prefixes), or -1.
type table struct {
	starts []u128  // starts[0] is the zero key; strictly increasing
	vals   []int32 // vals[i] labels [starts[i], starts[i+1])
	// front[b] is the interval holding the first key of bucket b (the
	// first frontBits bits of a key), and front[1<<frontBits] the last
	// interval: the interval of a key in bucket b lies in front[b] …
	// front[b+1].
	front     []uint32
	frontBits uint8
	// skip leading bits are common to every start but the zero key:
	// prefix, right-aligned. Buckets index the frontBits bits after them.
	skip   uint8
	prefix uint64
}

// entry is a prefix to compile and the value it yields.
type entry struct {
	prefix netip.Prefix
	val    int32
}

// compile builds a table from prefixes of one family.
func compile(entries []entry) table {
	type span struct {
		first, last u128
		bits        int
		val         int32
	}
	spans := make([]span, 0, len(entries))
	for _, e := range entries {
		f, l := rangeOf(e.prefix)
		spans = append(spans, span{f, l, e.prefix.Bits(), e.val})
	}
	// Outer prefixes before the prefixes they contain; among equal
	// prefixes, the lowest value first so that it survives deduplication.
	slices.SortFunc(spans, func(a, b span) int {
		if a.first != b.first {
			if a.first.less(b.first) {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.bits, b.bits), cmp.Compare(a.val, b.val))
	})
	spans = slices.CompactFunc(spans, func(a, b span) bool { return a.first == b.first && a.bits == b.bits })

	t := table{starts: []u128{{}}, vals: []int32{-1}}
	emit := func(start u128, val int32) {
		n := len(t.starts) - 1
		if t.starts[n] == start {
			t.vals[n] = val
			if n > 0 && t.vals[n-1] == val {
				t.starts, t.vals = t.starts[:n], t.vals[:n]
			}
			return
		}
		if t.vals[n] == val {
			return
		}
		t.starts = append(t.starts, start)
		t.vals = append(t.vals, val)
	}
	// Prefixes nest or are disjoint, so a stack of the open ones, innermost
	// on top, says which value each stretch of the space gets.
	var stack []span
	top := func() int32 {
		if len(stack) == 0 {
			return -1
		}
		return stack[len(stack)-1].val
	}
	closeBefore := func(limit u128, all bool) {
		for len(stack) > 0 {
			s := stack[len(stack)-1]
			if !all && !s.last.less(limit) {
				return
			}
			stack = stack[:len(stack)-1]
			if !s.last.isMax() {
				emit(s.last.next(), top())
			}
		}
	}
	for _, s := range spans {
		closeBefore(s.first, false)
		stack = append(stack, s)
		emit(s.first, s.val)
	}
	closeBefore(u128{}, true)

	if len(t.starts) > 1 {
		nb := uint8(min(max(bits.Len(uint(len(t.starts)-1)), minFrontBits), maxFrontBits))
		first, last := t.starts[1].hi, t.starts[len(t.starts)-1].hi
		skip := uint8(min(bits.LeadingZeros64(first^last), 64-int(nb)))
		t.frontBits, t.skip = nb, skip
		var base uint64 // the common leading bits, in place
		if skip > 0 {
			t.prefix = first >> (64 - skip)
			base = t.prefix << (64 - skip)
		}
		t.front = make([]uint32, 1<<nb+1)
		i := 0
		for b := range 1 << nb {
			k := u128{hi: base | uint64(b)<<(64-skip-nb)}
			for i+1 < len(t.starts) && !k.less(t.starts[i+1]) {
				i++
			}
			t.front[b] = uint32(i)
		}
		t.front[1<<nb] = uint32(len(t.starts) - 1)
	}
	return t
}

// lookup returns the value of the most specific prefix containing k, or -1.
func (t *table) lookup(k u128) int32 {
	if t.front == nil {
		return t.vals[0]
	}
	h := k.hi
	if t.skip > 0 {
		if p := h >> (64 - t.skip); p != t.prefix {
			if p < t.prefix { // before the first start
				return t.vals[0]
			}
			return t.vals[len(t.vals)-1] // after the last one
		}
		h <<= t.skip
	}
	b := h >> (64 - t.frontBits)
	lo, hi := t.front[b], t.front[b+1]
	for lo < hi {
		mid := (lo + hi + 1) >> 1
		if k.less(t.starts[mid]) {
			hi = mid - 1
		} else {
			lo = mid
		}
	}
	return t.vals[lo]
}

// prefixes is a compiled set of IPv4 and IPv6 prefixes.
type prefixes struct{ v4, v6 table }

func compilePrefixes(entries []entry) prefixes {
	var v4, v6 []entry
	for _, e := range entries {
		if e.prefix.Addr().Is4() {
			v4 = append(v4, e)
		} else {
			v6 = append(v6, e)
		}
	}
	return prefixes{v4: compile(v4), v6: compile(v6)}
}

// lookup returns the value of the most specific prefix containing a, -1 if
// none; a must be valid.
func (p *prefixes) lookup(a netip.Addr) int32 {
	a = a.Unmap()
	if a.Is4() {
		return p.v4.lookup(keyOf(a))
	}
	return p.v6.lookup(keyOf(a))
}
