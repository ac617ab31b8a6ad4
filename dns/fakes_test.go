package dns

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	miekg "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"kubelite/api"
)

// fakeStore is a Store over plain slices, for handler tests.
type fakeStore struct {
	synced    bool
	services  []*api.Service
	endpoints []*api.Endpoints
}

var _ Store = (*fakeStore)(nil)

func (f *fakeStore) HasSynced() bool { return f.synced }

func (f *fakeStore) Service(namespace, name string) (*api.Service, bool) {
	for _, s := range f.services {
		if s.Namespace == namespace && s.Name == name {
			return s, true
		}
	}
	return nil, false
}

func (f *fakeStore) Endpoints(namespace, name string) (*api.Endpoints, bool) {
	for _, e := range f.endpoints {
		if e.Namespace == namespace && e.Name == name {
			return e, true
		}
	}
	return nil, false
}

func (f *fakeStore) HasServices(namespace string) bool {
	return slices.ContainsFunc(f.services, func(s *api.Service) bool { return s.Namespace == namespace })
}

func (f *fakeStore) ReverseLookup(ip netip.Addr) []ReverseName {
	var out []ReverseName
	for _, svc := range f.services {
		eps, _ := f.Endpoints(svc.Namespace, svc.Name)
		out = append(out, reverseNames(svc, eps)[ip]...)
	}
	return out
}

// recorder is a miekg.ResponseWriter that keeps what is written to it, as
// if the query had come from 10.244.0.99 over network ("udp" or "tcp").
type recorder struct {
	network string
	msg     *miekg.Msg
	size    int // bytes on the wire
}

func (w *recorder) LocalAddr() net.Addr { return w.addr(53) }
func (w *recorder) RemoteAddr() net.Addr {
	return w.addr(40000)
}

func (w *recorder) addr(port int) net.Addr {
	ip := net.IPv4(10, 244, 0, 99)
	if w.network == "tcp" {
		return &net.TCPAddr{IP: ip, Port: port}
	}
	return &net.UDPAddr{IP: ip, Port: port}
}

func (w *recorder) WriteMsg(m *miekg.Msg) error {
	// Pack and unpack, as the wire would: it catches records that cannot
	// be encoded, and applies truncation and compression for real.
	packed, err := m.Pack()
	if err != nil {
		return err
	}
	w.size = len(packed)
	w.msg = new(miekg.Msg)
	return w.msg.Unpack(packed)
}

func (w *recorder) Write(b []byte) (int, error) {
	w.msg = new(miekg.Msg)
	return len(b), w.msg.Unpack(b)
}

func (w *recorder) Close() error        { return nil }
func (w *recorder) TsigStatus() error   { return nil }
func (w *recorder) TsigTimersOnly(bool) {}
func (w *recorder) Hijack()             {}

// testConfig is a complete Config that never reads this machine's
// resolv.conf: upstreams are the given ones, or none at all.
func testConfig(t testing.TB, upstreams ...string) Config {
	t.Helper()
	emptyResolvConf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(emptyResolvConf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Config{Upstreams: upstreams, ResolvConf: emptyResolvConf, Logger: testLogger(t)}.complete()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// testLogger logs through t, so that a failing test shows what the server said.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// newTestHandler builds a handler over store with cfg, its SOA serial
// fixed at 1 so that expected records can be written down.
func newTestHandler(t testing.TB, cfg Config, store Store) (*handler, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(cfg, store, m)
	h.serial = 1
	return h, reg
}

// dnsCase is one query and the answer expected, in zone-file syntax, in
// the manner of CoreDNS's test.Case.
type dnsCase struct {
	qname  string
	qtype  uint16
	rcode  int
	answer []string
	ns     []string
	extra  []string
}

// msg is the query, with EDNS0 so that answers are not cut at 512 bytes.
func (tc dnsCase) msg() *miekg.Msg {
	m := new(miekg.Msg)
	m.SetQuestion(tc.qname, tc.qtype)
	m.SetEdns0(4096, false)
	return m
}

// check compares a reply with the expected sections, ignoring order
// within a section and the EDNS0 OPT record.
func (tc dnsCase) check(t *testing.T, got *miekg.Msg) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s %s: no reply", tc.qname, miekg.TypeToString[tc.qtype])
	}
	if got.Rcode != tc.rcode {
		t.Errorf("%s %s: rcode %s, want %s", tc.qname, miekg.TypeToString[tc.qtype],
			miekg.RcodeToString[got.Rcode], miekg.RcodeToString[tc.rcode])
	}
	if len(got.Question) != 1 || got.Question[0].Name != tc.qname {
		t.Errorf("%s: question %v, want the query's own", tc.qname, got.Question)
	}
	sections := []struct {
		name       string
		got, wants []string
	}{
		{"answer", rrStrings(got.Answer), tc.answer},
		{"authority", rrStrings(got.Ns), tc.ns},
		{"additional", rrStrings(got.Extra), tc.extra},
	}
	for _, s := range sections {
		want := canonicalRRs(t, s.wants)
		if !slices.Equal(s.got, want) {
			t.Errorf("%s %s: %s section:\n got: %s\nwant: %s", tc.qname, miekg.TypeToString[tc.qtype], s.name,
				strings.Join(s.got, "\n      "), strings.Join(want, "\n      "))
		}
	}
}

// rrStrings renders records in zone-file syntax, sorted, without OPT.
func rrStrings(rrs []miekg.RR) []string {
	out := []string{}
	for _, rr := range rrs {
		if rr.Header().Rrtype != miekg.TypeOPT {
			out = append(out, rr.String())
		}
	}
	sort.Strings(out)
	return out
}

// canonicalRRs parses zone-file lines and renders them as rrStrings does.
func canonicalRRs(t *testing.T, lines []string) []string {
	t.Helper()
	rrs := make([]miekg.RR, 0, len(lines))
	for _, line := range lines {
		rr, err := miekg.NewRR(line)
		if err != nil {
			t.Fatalf("bad expected record %q: %v", line, err)
		}
		rrs = append(rrs, rr)
	}
	return rrStrings(rrs)
}

// query sends m to h as if over network, and returns the reply.
func query(h *handler, network string, m *miekg.Msg) *miekg.Msg {
	reply, _ := queryWithSize(h, network, m)
	return reply
}

// queryWithSize also returns the size of the reply on the wire.
func queryWithSize(h *handler, network string, m *miekg.Msg) (*miekg.Msg, int) {
	w := &recorder{network: network}
	h.ServeDNS(context.Background(), w, m)
	return w.msg, w.size
}
