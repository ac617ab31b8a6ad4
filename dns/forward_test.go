package dns

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	miekg "github.com/miekg/dns"

	"kubelite/api"
)

// fakeUpstream is an upstream resolver on a loopback port, over UDP and
// TCP, answering from a fixed table and counting what it is asked.
type fakeUpstream struct {
	addr       string
	udpQueries atomic.Int64
	tcpQueries atomic.Int64
	asked      sync.Map // lower-case name → *atomic.Int64
}

// The fake upstream's zone. Addresses are documentation ranges: data only,
// nothing is ever sent to them.
var upstreamRecords = map[string][]string{
	"www.example.com.":   {"www.example.com. 300 IN A 192.0.2.80"},
	"mail.example.com.":  {"mail.example.com. 300 IN A 192.0.2.25"},
	"short.example.com.": {"short.example.com. 0 IN A 192.0.2.1"},
	"big.example.com.": func() []string {
		var rrs []string
		for i := range 100 {
			rrs = append(rrs, fmt.Sprintf("big.example.com. 300 IN A 198.51.100.%d", i+1))
		}
		return rrs
	}(),
}

const upstreamSOA = "example.com. 300 IN SOA ns.example.com. hostmaster.example.com. 1 7200 1800 86400 60"

func startFakeUpstream(t testing.TB) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{}
	answer := miekg.HandlerFunc(func(w miekg.ResponseWriter, r *miekg.Msg) {
		_, overUDP := w.RemoteAddr().(*net.UDPAddr)
		if overUDP {
			u.udpQueries.Add(1)
		} else {
			u.tcpQueries.Add(1)
		}
		name := strings.ToLower(r.Question[0].Name)
		counter, _ := u.asked.LoadOrStore(name, new(atomic.Int64))
		counter.(*atomic.Int64).Add(1)

		m := new(miekg.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		switch records, ok := upstreamRecords[name]; {
		case name == "servfail.example.com.":
			m.Rcode = miekg.RcodeServerFailure
		case !ok:
			m.Rcode = miekg.RcodeNameError
			m.Ns = []miekg.RR{mustRR(t, upstreamSOA)}
		default:
			for _, s := range records {
				if rr := mustRR(t, s); rr.Header().Rrtype == r.Question[0].Qtype {
					m.Answer = append(m.Answer, rr)
				}
			}
			if len(m.Answer) == 0 {
				m.Ns = []miekg.RR{mustRR(t, upstreamSOA)}
			}
		}
		if overUDP {
			size := miekg.MinMsgSize
			if opt := r.IsEdns0(); opt != nil {
				size = int(opt.UDPSize())
				m.SetEdns0(opt.UDPSize(), false)
			}
			m.Truncate(size)
		}
		_ = w.WriteMsg(m)
	})

	packetConn, listener, err := listenUDPAndTCP(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = packetConn.LocalAddr().String()
	for _, srv := range []*miekg.Server{
		{PacketConn: packetConn, Handler: answer},
		{Listener: listener, Handler: answer},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.ActivateAndServe()
		}()
		<-started
		t.Cleanup(func() {
			_ = srv.Shutdown()
			<-done
		})
	}
	return u
}

// queries returns how often name was asked.
func (u *fakeUpstream) queries(name string) int64 {
	if c, ok := u.asked.Load(name); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

func mustRR(t testing.TB, s string) miekg.RR {
	rr, err := miekg.NewRR(s)
	if err != nil {
		t.Fatalf("bad record %q: %v", s, err)
	}
	return rr
}

// deadLoopbackAddr is a loopback UDP port that nothing listens on: queries
// to it fail at once with "connection refused".
func deadLoopbackAddr(t *testing.T) string {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := conn.LocalAddr().String()
	conn.Close()
	return addr
}

func TestForwardAndCache(t *testing.T) {
	upstream := startFakeUpstream(t)
	h, reg := newTestHandler(t, testConfig(t, upstream.addr), &fakeStore{synced: true})

	dnsCase{qname: "www.example.com.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
		answer: []string{"www.example.com. 300 IN A 192.0.2.80"}}.check(t, query(h, "udp", dnsCase{qname: "www.example.com.", qtype: miekg.TypeA}.msg()))
	// The second query, in another case, comes from the cache, in its own case.
	reply := query(h, "udp", dnsCase{qname: "WWW.Example.com.", qtype: miekg.TypeA}.msg())
	if len(reply.Answer) != 1 || reply.Answer[0].Header().Name != "WWW.Example.com." || reply.Answer[0].Header().Ttl > 300 {
		t.Errorf("cached answer = %v, want one A record owned by WWW.Example.com. with TTL ≤ 300", reply.Answer)
	}
	if reply.Authoritative {
		t.Error("a forwarded answer claims authority")
	}
	if n := upstream.queries("www.example.com."); n != 1 {
		t.Errorf("upstream asked %d times, want once: the second answer should come from the cache", n)
	}
	if hits, misses := counterValue(t, reg, "kubelite_dns_cache_hits_total", nil), counterValue(t, reg, "kubelite_dns_cache_misses_total", nil); hits != 1 || misses != 1 {
		t.Errorf("cache hits=%v misses=%v, want 1 and 1", hits, misses)
	}

	// NXDOMAIN is cached too, for the SOA's negative TTL.
	for range 2 {
		dnsCase{qname: "nosuch.example.com.", qtype: miekg.TypeA, rcode: miekg.RcodeNameError,
			ns: []string{upstreamSOA}}.check(t, query(h, "udp", dnsCase{qname: "nosuch.example.com.", qtype: miekg.TypeA}.msg()))
	}
	if n := upstream.queries("nosuch.example.com."); n != 1 {
		t.Errorf("upstream asked %d times for an NXDOMAIN name, want once", n)
	}

	// An answer with TTL 0 must not be cached.
	for range 2 {
		query(h, "udp", dnsCase{qname: "short.example.com.", qtype: miekg.TypeA}.msg())
	}
	if n := upstream.queries("short.example.com."); n != 2 {
		t.Errorf("upstream asked %d times for a TTL-0 name, want twice", n)
	}

	// Search-path junk never reaches the upstream.
	query(h, "udp", dnsCase{qname: "www.example.com.default.svc.cluster.local.", qtype: miekg.TypeA}.msg())
	query(h, "udp", dnsCase{qname: "www.example.com.cluster.local.", qtype: miekg.TypeA}.msg())
	upstream.asked.Range(func(name, _ any) bool {
		if strings.HasSuffix(name.(string), "cluster.local.") {
			t.Errorf("upstream was asked for %s", name)
		}
		return true
	})
}

// An answer too large for UDP: the upstream truncates it, the forwarder
// fetches it again over TCP, and the client gets it cut to its own UDP
// size — and whole over TCP.
func TestForwardTruncated(t *testing.T) {
	upstream := startFakeUpstream(t)
	h, _ := newTestHandler(t, testConfig(t, upstream.addr), &fakeStore{synced: true})

	plain := new(miekg.Msg).SetQuestion("big.example.com.", miekg.TypeA)
	reply, size := queryWithSize(h, "udp", plain)
	if !reply.Truncated || size > miekg.MinMsgSize || len(reply.Answer) == 0 {
		t.Errorf("UDP answer without EDNS0: truncated=%v, %d bytes, %d records; want TC, ≤512 bytes, some records", reply.Truncated, size, len(reply.Answer))
	}
	if udp, tcp := upstream.udpQueries.Load(), upstream.tcpQueries.Load(); udp != 1 || tcp != 1 {
		t.Errorf("upstream got %d UDP and %d TCP queries, want 1 and 1 (a retry over TCP after TC)", udp, tcp)
	}
	reply = query(h, "tcp", plain.Copy())
	if reply.Truncated || len(reply.Answer) != 100 {
		t.Errorf("TCP answer: truncated=%v with %d records, want all 100", reply.Truncated, len(reply.Answer))
	}
	if total := upstream.udpQueries.Load() + upstream.tcpQueries.Load(); total != 2 {
		t.Errorf("upstream got %d queries in all, want 2: the TCP answer should come from the cache", total)
	}
}

func TestForwardFailover(t *testing.T) {
	upstream := startFakeUpstream(t)
	dead := deadLoopbackAddr(t)

	h, reg := newTestHandler(t, testConfig(t, dead, upstream.addr), &fakeStore{synced: true})
	dnsCase{qname: "www.example.com.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
		answer: []string{"www.example.com. 300 IN A 192.0.2.80"}}.check(t, query(h, "udp", dnsCase{qname: "www.example.com.", qtype: miekg.TypeA}.msg()))
	if got := counterValue(t, reg, "kubelite_dns_upstream_failures_total", map[string]string{"upstream": dead}); got != 1 {
		t.Errorf("failures of the dead upstream = %v, want 1", got)
	}

	// SERVFAIL from one upstream is passed on only when no other does better.
	dnsCase{qname: "servfail.example.com.", qtype: miekg.TypeA, rcode: miekg.RcodeServerFailure}.
		check(t, query(h, "udp", dnsCase{qname: "servfail.example.com.", qtype: miekg.TypeA}.msg()))

	// With every upstream down, the client gets SERVFAIL.
	h, _ = newTestHandler(t, testConfig(t, dead), &fakeStore{synced: true})
	dnsCase{qname: "www.example.com.", qtype: miekg.TypeA, rcode: miekg.RcodeServerFailure}.
		check(t, query(h, "udp", dnsCase{qname: "www.example.com.", qtype: miekg.TypeA}.msg()))
}

// An ExternalName pointing outside the zone is followed through the upstream.
func TestExternalNameFollowedUpstream(t *testing.T) {
	upstream := startFakeUpstream(t)
	store := &fakeStore{synced: true, services: []*api.Service{
		externalName("shop", "mail", "mail.example.com"),
		externalName("shop", "gone", "nosuch.example.com"),
	}}
	h, _ := newTestHandler(t, testConfig(t, upstream.addr), store)
	for _, tc := range []dnsCase{
		{qname: "mail.shop.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
			answer: []string{
				"mail.shop.svc.cluster.local. 5 IN CNAME mail.example.com.",
				"mail.example.com. 300 IN A 192.0.2.25",
			}},
		// The alias exists; its target does not (RFC 6604: the rcode is the target's).
		{qname: "gone.shop.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeNameError,
			answer: []string{"gone.shop.svc.cluster.local. 5 IN CNAME nosuch.example.com."}},
		// Asked for the CNAME itself, nothing is followed.
		{qname: "mail.shop.svc.cluster.local.", qtype: miekg.TypeCNAME, rcode: miekg.RcodeSuccess,
			answer: []string{"mail.shop.svc.cluster.local. 5 IN CNAME mail.example.com."}},
	} {
		tc.check(t, query(h, "udp", tc.msg()))
	}
}

func TestResponseCache(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	answer := func(name string, ttl uint32) *miekg.Msg {
		m := new(miekg.Msg).SetQuestion(name, miekg.TypeA)
		m.Response = true
		m.Answer = []miekg.RR{mustRR(t, fmt.Sprintf("%s %d IN A 192.0.2.1", name, ttl))}
		return m
	}
	key := func(name string) cacheKey { return cacheKey{name: name, qtype: miekg.TypeA, qclass: miekg.ClassINET} }

	t.Run("TTLs count down and expire", func(t *testing.T) {
		c := newResponseCache(10, time.Hour)
		c.set(key("a."), answer("a.", 30), t0)
		got, ok := c.get(key("a."), t0.Add(10*time.Second))
		if !ok || got.Answer[0].Header().Ttl != 20 {
			t.Fatalf("after 10 s: %v, %v; want the answer with TTL 20", got, ok)
		}
		if _, ok := c.get(key("a."), t0.Add(30*time.Second)); ok {
			t.Fatal("answer still cached when its TTL ran out")
		}
	})
	t.Run("the cache's own cap wins over long TTLs", func(t *testing.T) {
		c := newResponseCache(10, time.Minute)
		c.set(key("a."), answer("a.", 86400), t0)
		if _, ok := c.get(key("a."), t0.Add(61*time.Second)); ok {
			t.Fatal("answer kept beyond the cache's maximum TTL")
		}
	})
	t.Run("the least recently used answer goes first", func(t *testing.T) {
		c := newResponseCache(2, time.Hour)
		c.set(key("a."), answer("a.", 300), t0)
		c.set(key("b."), answer("b.", 300), t0)
		c.get(key("a."), t0) // a. is now more recent than b.
		c.set(key("c."), answer("c.", 300), t0)
		if _, ok := c.get(key("b."), t0); ok {
			t.Error("b. survived; it was the least recently used")
		}
		if _, ok := c.get(key("a."), t0); !ok {
			t.Error("a. was evicted though recently used")
		}
		if c.len() != 2 {
			t.Errorf("cache holds %d answers, capacity 2", c.len())
		}
	})
	t.Run("copies are the caller's own", func(t *testing.T) {
		c := newResponseCache(10, time.Hour)
		c.set(key("a."), answer("a.", 300), t0)
		first, _ := c.get(key("a."), t0)
		first.Answer[0].Header().Name = "changed."
		second, _ := c.get(key("a."), t0)
		if second.Answer[0].Header().Name != "a." {
			t.Error("changing a returned answer changed the cache")
		}
	})
	t.Run("what may not be cached", func(t *testing.T) {
		nodataWithoutSOA := new(miekg.Msg).SetQuestion("a.", miekg.TypeA)
		servfail := new(miekg.Msg).SetQuestion("a.", miekg.TypeA)
		servfail.Rcode = miekg.RcodeServerFailure
		truncated := answer("a.", 300)
		truncated.Truncated = true
		for name, m := range map[string]*miekg.Msg{
			"NODATA without SOA": nodataWithoutSOA,
			"SERVFAIL":           servfail,
			"truncated":          truncated,
			"TTL 0":              answer("a.", 0),
		} {
			if ttl, ok := cacheableFor(m); ok {
				t.Errorf("%s: cacheable for %v", name, ttl)
			}
		}
		nxdomain := new(miekg.Msg).SetQuestion("a.", miekg.TypeA)
		nxdomain.Rcode = miekg.RcodeNameError
		nxdomain.Ns = []miekg.RR{mustRR(t, upstreamSOA)}
		if ttl, ok := cacheableFor(nxdomain); !ok || ttl != 60*time.Second {
			t.Errorf("NXDOMAIN with SOA (TTL 300, minimum 60): cacheable=%v for %v, want 60 s", ok, ttl)
		}
	})
}
