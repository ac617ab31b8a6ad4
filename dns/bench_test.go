package dns

import (
	"context"
	"fmt"
	"net"
	"testing"

	miekg "github.com/miekg/dns"

	"kubelite/api"
)

// packWriter is a ResponseWriter that packs the reply, as the real one
// does before it writes to the socket, and throws it away.
type packWriter struct{ remote net.Addr }

func (w packWriter) LocalAddr() net.Addr  { return &net.UDPAddr{IP: net.IPv4(10, 96, 0, 10), Port: 53} }
func (w packWriter) RemoteAddr() net.Addr { return w.remote }
func (w packWriter) WriteMsg(m *miekg.Msg) error {
	_, err := m.Pack()
	return err
}
func (w packWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w packWriter) Close() error                { return nil }
func (w packWriter) TsigStatus() error           { return nil }
func (w packWriter) TsigTimersOnly(bool)         {}
func (w packWriter) Hijack()                     {}

// benchStore is a cluster of a realistic size behind the real
// InformerStore: 1000 ClusterIP Services and 100 headless ones with 3
// endpoints each, across 10 namespaces.
func benchStore() *InformerStore {
	services := newFakeInformer[*api.Service]()
	endpointsInf := newFakeInformer[*api.Endpoints]()
	for i := range 1000 {
		services.set(service(fmt.Sprintf("ns%d", i%10), fmt.Sprintf("svc%d", i), fmt.Sprintf("10.96.%d.%d", i/250, i%250+1),
			api.ServicePort{Name: "http", Port: 80, Protocol: "TCP"}))
	}
	for i := range 100 {
		ns, name := fmt.Sprintf("ns%d", i%10), fmt.Sprintf("hdls%d", i)
		services.set(service(ns, name, api.ClusterIPNone, api.ServicePort{Name: "http", Port: 80, Protocol: "TCP"}))
		endpointsInf.set(endpoints(ns, name, api.EndpointSubset{
			Addresses: []api.EndpointAddress{
				{IP: fmt.Sprintf("10.244.%d.1", i)}, {IP: fmt.Sprintf("10.244.%d.2", i)}, {IP: fmt.Sprintf("10.244.%d.3", i), Hostname: "named"},
			},
			Ports: []api.EndpointPort{{Name: "http", Port: 80, Protocol: "TCP"}},
		}))
	}
	return NewInformerStore(services, endpointsInf)
}

// BenchmarkServeDNS measures the handler alone — parsing the name,
// looking it up, building and packing the reply — for each kind of query.
func BenchmarkServeDNS(b *testing.B) {
	benchmarks := []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"ClusterIP_A", "svc500.ns0.svc.cluster.local.", miekg.TypeA},
		{"ClusterIP_AAAA_NODATA", "svc500.ns0.svc.cluster.local.", miekg.TypeAAAA},
		{"Headless_A", "hdls50.ns0.svc.cluster.local.", miekg.TypeA},
		{"Headless_SRV", "_http._tcp.hdls50.ns0.svc.cluster.local.", miekg.TypeSRV},
		{"PTR", "1.0.96.10.in-addr.arpa.", miekg.TypePTR},
		{"NXDOMAIN_Service", "nosuch.ns0.svc.cluster.local.", miekg.TypeA},
		{"NXDOMAIN_SearchPath", "www.example.com.ns0.svc.cluster.local.", miekg.TypeA},
		{"Pod_A", "10-244-1-5.ns0.pod.cluster.local.", miekg.TypeA},
	}
	h, _ := newTestHandler(b, testConfig(b), benchStore())
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			benchmarkQuery(b, h, bm.qname, bm.qtype)
		})
	}
}

// BenchmarkServeDNSForwardCached measures a name outside the zone answered
// from the forwarding cache (the upstream is asked once, before timing).
func BenchmarkServeDNSForwardCached(b *testing.B) {
	upstream := startFakeUpstream(b)
	h, _ := newTestHandler(b, testConfig(b, upstream.addr), benchStore())
	benchmarkQuery(b, h, "www.example.com.", miekg.TypeA)
}

func benchmarkQuery(b *testing.B, h *handler, qname string, qtype uint16) {
	ctx := context.Background()
	w := packWriter{remote: &net.UDPAddr{IP: net.IPv4(10, 244, 0, 99), Port: 40000}}
	query := new(miekg.Msg).SetQuestion(qname, qtype)
	// Check once that the query is answered as expected, outside the timing.
	check := &recorder{network: "udp"}
	h.ServeDNS(ctx, check, query.Copy())
	if check.msg == nil || check.msg.Rcode == miekg.RcodeServerFailure || check.msg.Rcode == miekg.RcodeRefused {
		b.Fatalf("%s: unexpected reply %v", qname, check.msg)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeDNS(ctx, w, query)
	}
}
