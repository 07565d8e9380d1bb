package peer

import (
	"sync"
	"sync/atomic"
	"time"
)

// certVerdict is what one certificate PEM resolved to. It is immutable once
// cached, apart from its CLOCK reference bit.
type certVerdict struct {
	h   uint64 // maphash of pem
	pos int    // slot in the cache ring
	pem string // compared on every hit: the hash only finds the slot

	binding int32 // -1: not recognised
	// problem says why a certificate that names a trusted service was not
	// recognised ("" when it was, or when it names none).
	problem string
	// from and until bound the verdict: the validity of the certificate
	// and, with a caFile, of its chain.
	from, until time.Time
	// recheck, when set, is when a failed chain verification is worth
	// trying again (a clock or bundle problem may not last).
	recheck time.Time

	ref atomic.Bool
}

// at is the verdict at time now.
func (v *certVerdict) at(now time.Time) int32 {
	if v.binding < 0 || now.Before(v.from) || now.After(v.until) {
		return -1
	}
	return v.binding
}

// certCache is a bounded map from certificate PEM to verdict with CLOCK
// (second-chance) eviction: a hit takes a read lock and at most sets a bit,
// so repeat callers on many cores do not serialise on an LRU list.
type certCache struct {
	mu   sync.RWMutex
	m    map[uint64]*certVerdict
	ring []*certVerdict
	hand int
	size int
}

func newCertCache(size int) *certCache {
	return &certCache{m: make(map[uint64]*certVerdict, size), size: size}
}

func (c *certCache) get(h uint64, pem string) *certVerdict {
	c.mu.RLock()
	v := c.m[h]
	c.mu.RUnlock()
	if v == nil || v.pem != pem {
		return nil
	}
	if !v.ref.Load() {
		v.ref.Store(true)
	}
	return v
}

// put stores v, replacing an entry with the same hash (a recheck, or a
// collision) in place, else evicting the first entry not used since the
// hand last passed it.
func (c *certCache) put(v *certVerdict) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[v.h]; ok {
		v.pos = old.pos
		c.ring[v.pos] = v
		c.m[v.h] = v
		return
	}
	if len(c.ring) < c.size {
		v.pos = len(c.ring)
		c.ring = append(c.ring, v)
		c.m[v.h] = v
		return
	}
	for {
		old := c.ring[c.hand]
		if old.ref.Load() {
			old.ref.Store(false)
			c.hand = (c.hand + 1) % c.size
			continue
		}
		delete(c.m, old.h)
		v.pos = c.hand
		c.ring[c.hand] = v
		c.m[v.h] = v
		c.hand = (c.hand + 1) % c.size
		return
	}
}

func (c *certCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

func (c *certCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
	c.ring = c.ring[:0]
	c.hand = 0
}
