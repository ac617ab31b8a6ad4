package dns

import (
	"container/list"
	"sync"
	"time"

	miekg "github.com/miekg/dns"
)

// cacheKey identifies a forwarded question. Names are lower-case: DNS names
// compare case-insensitively. The DNSSEC bits are part of the key because
// they change what an upstream puts in its answer.
type cacheKey struct {
	name             string
	qtype, qclass    uint16
	dnssecOK         bool
	checkingDisabled bool
}

// cacheEntry is one cached answer, stored at a time and kept for ttl.
type cacheEntry struct {
	key    cacheKey
	msg    *miekg.Msg
	stored time.Time
	ttl    time.Duration
}

// responseCache keeps upstream answers for as long as their TTLs allow
// (capped at maxTTL), and at most capacity of them: when full, the least
// recently used answer goes.
type responseCache struct {
	capacity int
	maxTTL   time.Duration

	mu      sync.Mutex
	entries map[cacheKey]*list.Element // of *cacheEntry
	recency *list.List                 // front = most recently used
}

func newResponseCache(capacity int, maxTTL time.Duration) *responseCache {
	return &responseCache{
		capacity: capacity,
		maxTTL:   maxTTL,
		entries:  make(map[cacheKey]*list.Element),
		recency:  list.New(),
	}
}

// get returns a copy of the cached answer to key, its TTLs counted down by
// the time it has spent in the cache, as a resolver must (RFC 1035 §7.3).
func (c *responseCache) get(key cacheKey, now time.Time) (*miekg.Msg, bool) {
	c.mu.Lock()
	elem, ok := c.entries[key]
	if !ok {
		c.mu.Unlock()
		return nil, false
	}
	entry := elem.Value.(*cacheEntry)
	age := now.Sub(entry.stored)
	if age >= entry.ttl {
		c.recency.Remove(elem)
		delete(c.entries, key)
		c.mu.Unlock()
		return nil, false
	}
	c.recency.MoveToFront(elem)
	c.mu.Unlock()

	// entry.msg is never changed after it is stored, so it can be copied
	// outside the lock.
	msg := entry.msg.Copy()
	elapsed := uint32(age / time.Second)
	for _, section := range [][]miekg.RR{msg.Answer, msg.Ns, msg.Extra} {
		for _, rr := range section {
			rr.Header().Ttl -= min(rr.Header().Ttl, elapsed)
		}
	}
	return msg, true
}

// set stores a copy of msg, the answer to key, if it may be cached.
func (c *responseCache) set(key cacheKey, msg *miekg.Msg, now time.Time) {
	ttl, ok := cacheableFor(msg)
	if !ok {
		return
	}
	ttl = min(ttl, c.maxTTL)
	entry := &cacheEntry{key: key, msg: msg.Copy(), stored: now, ttl: ttl}

	c.mu.Lock()
	defer c.mu.Unlock()
	if elem, ok := c.entries[key]; ok {
		elem.Value = entry
		c.recency.MoveToFront(elem)
		return
	}
	c.entries[key] = c.recency.PushFront(entry)
	for c.recency.Len() > c.capacity {
		oldest := c.recency.Back()
		c.recency.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).key)
	}
}

// len is the number of cached answers.
func (c *responseCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recency.Len()
}

// cacheableFor says how long an answer may be cached, if at all:
//   - a positive answer for the smallest TTL among its records;
//   - a negative answer (NXDOMAIN, or NOERROR without answers: NODATA) for
//     the smaller of its SOA record's TTL and the SOA's MINIMUM field, and
//     only if it carries an SOA (RFC 2308 §5);
//   - never a truncated answer, a failure (SERVFAIL, REFUSED, …), or an
//     answer with a zero TTL.
func cacheableFor(msg *miekg.Msg) (time.Duration, bool) {
	if msg.Truncated {
		return 0, false
	}
	var ttl uint32
	switch {
	case msg.Rcode == miekg.RcodeSuccess && len(msg.Answer) > 0:
		ttl = ^uint32(0)
		for _, section := range [][]miekg.RR{msg.Answer, msg.Ns} {
			for _, rr := range section {
				ttl = min(ttl, rr.Header().Ttl)
			}
		}
	case msg.Rcode == miekg.RcodeSuccess || msg.Rcode == miekg.RcodeNameError:
		soa := findSOA(msg.Ns)
		if soa == nil {
			return 0, false
		}
		ttl = min(soa.Hdr.Ttl, soa.Minttl)
	default:
		return 0, false
	}
	if ttl == 0 {
		return 0, false
	}
	return time.Duration(ttl) * time.Second, true
}

func findSOA(rrs []miekg.RR) *miekg.SOA {
	for _, rr := range rrs {
		if soa, ok := rr.(*miekg.SOA); ok {
			return soa
		}
	}
	return nil
}
