package network

import (
	"net/netip"
	"strconv"
	"strings"
)

// proxies is network.trustedProxies, compiled: when X-Forwarded-For is
// believed, and how far.
type proxies struct {
	hops  int
	cidrs []netip.Prefix
}

func (p *proxies) enabled() bool { return p.hops > 0 || len(p.cidrs) > 0 }

func (p *proxies) trusted(a netip.Addr) bool {
	for _, c := range p.cidrs {
		if c.Contains(a) {
			return true
		}
	}
	return false
}

const problemNoPeer = "the proxy did not report the connection's source address"

// client finds the client address from the connection's peer and the
// X-Forwarded-For header, as doc.go describes. It returns an invalid address
// and the reason when an entry that must be believed is not an address.
func (p *proxies) client(peer netip.Addr, xff string) (netip.Addr, string) {
	if !peer.IsValid() {
		return netip.Addr{}, problemNoPeer
	}
	peer = peer.Unmap().WithZone("")
	if !p.enabled() {
		return peer, ""
	}
	chain := newReverse(xff)
	// Envoy with use_remote_address has already appended the peer; without
	// it, or behind skip_xff_append, the peer is the next hop to the right.
	if e, ok := chain.peek(); ok {
		if a, ok := parseEntry(e); ok && a == peer {
			chain.next()
		}
	}
	cur := peer
	for skipped := 0; ; skipped++ {
		if p.hops > 0 && skipped == p.hops {
			return cur, ""
		}
		if len(p.cidrs) > 0 && !p.trusted(cur) {
			return cur, ""
		}
		e, ok := chain.next()
		if !ok {
			// Fewer hops than configured: the request did not come through
			// the proxies, so the peer is the client.
			return peer, ""
		}
		a, ok := parseEntry(e)
		if !ok {
			return netip.Addr{}, badEntry(e, skipped+1)
		}
		cur = a
	}
}

func badEntry(e string, pos int) string {
	if len(e) > 64 {
		e = e[:64] + "…"
	}
	return "x-forwarded-for entry " + strconv.Quote(e) + ", " + strconv.Itoa(pos) +
		" from the right counting the proxy's peer, must be believed under network.trustedProxies but is not an IP address"
}

// reverse walks a comma-separated header from its last entry to its first
// without allocating.
type reverse struct {
	s   string
	end int // the current entry ends before s[end]; -1 when exhausted
}

func newReverse(s string) reverse {
	if trimOWS(s) == "" {
		return reverse{end: -1}
	}
	return reverse{s: s, end: len(s)}
}

func (r *reverse) next() (string, bool) {
	if r.end < 0 {
		return "", false
	}
	i := strings.LastIndexByte(r.s[:r.end], ',')
	e := r.s[i+1 : r.end]
	r.end = i
	return trimOWS(e), true
}

// trimOWS strips HTTP's optional whitespace (a hand loop: strings.Trim builds
// a character set per call, a quarter of this path's cost).
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func (r reverse) peek() (string, bool) { return r.next() }

// parseEntry reads one X-Forwarded-For entry: an IPv4 or IPv6 address, an
// IPv4 address with a port, or a bracketed IPv6 address with or without a
// port (see doc.go for why). IPv4-mapped IPv6 is unmapped.
func parseEntry(s string) (netip.Addr, bool) {
	if s == "" || strings.IndexByte(s, '%') >= 0 {
		// Zones mean nothing beyond a link, and parsing one would allocate.
		return netip.Addr{}, false
	}
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		if rest := s[end+1:]; rest != "" && (rest[0] != ':' || !isPort(rest[1:])) {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(s[1:end])
		if err != nil || !a.Is6() {
			return netip.Addr{}, false
		}
		return a.Unmap(), true
	}
	if i := strings.IndexByte(s, ':'); i >= 0 && strings.IndexByte(s[i+1:], ':') < 0 {
		// One colon: an IPv4 address and a port. An unbracketed IPv6 address
		// always has two or more, and is never read as having a port.
		a, err := netip.ParseAddr(s[:i])
		if err != nil || !a.Is4() || !isPort(s[i+1:]) {
			return netip.Addr{}, false
		}
		return a, true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func isPort(s string) bool {
	if len(s) == 0 || len(s) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n <= 65535
}
