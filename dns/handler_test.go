package dns

import (
	"fmt"
	"testing"

	miekg "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"kubelite/api"
)

// The cluster the table tests look at.
var (
	testServices = []*api.Service{
		// The tutorial's Service: one unnamed port, so no SRV record.
		service("default", "httpd-svc", "10.96.0.20", api.ServicePort{Port: 8080, Protocol: "TCP"}),
		service("testns", "svc1", "10.96.0.21",
			api.ServicePort{Name: "http", Port: 80, Protocol: "TCP"},
			api.ServicePort{Name: "dns", Port: 53, Protocol: "UDP"}),
		dualStack(service("testns", "dual", "10.96.0.22", api.ServicePort{Name: "http", Port: 80, Protocol: "TCP"}), "fd00::22"),
		service("testns", "hdls1", api.ClusterIPNone, api.ServicePort{Name: "pg", Port: 5432, Protocol: "TCP"}),
		service("testns", "hdls-down", api.ClusterIPNone, api.ServicePort{Port: 80, Protocol: "TCP"}),
		publishNotReady(service("testns", "hdls-peers", api.ClusterIPNone, api.ServicePort{Port: 80, Protocol: "TCP"})),
		externalName("testns", "ext", "Mail.Example.COM"),
		externalName("testns", "alias", "svc1.testns.svc.cluster.local"),
		externalName("testns", "dangling", "nosuch.testns.svc.cluster.local"),
		service("kube-system", "kube-dns", "10.96.0.10",
			api.ServicePort{Name: "dns", Port: 53, Protocol: "UDP"},
			api.ServicePort{Name: "dns-tcp", Port: 53, Protocol: "TCP"}),
	}
	testEndpoints = []*api.Endpoints{
		endpoints("testns", "svc1", api.EndpointSubset{ // not headless: endpoints play no part in DNS
			Addresses: []api.EndpointAddress{{IP: "10.244.9.9"}},
			Ports:     []api.EndpointPort{{Name: "http", Port: 80, Protocol: "TCP"}},
		}),
		endpoints("testns", "hdls1", api.EndpointSubset{
			Addresses:         []api.EndpointAddress{{IP: "10.244.1.5", Hostname: "db-0"}, {IP: "10.244.2.7"}},
			NotReadyAddresses: []api.EndpointAddress{{IP: "10.244.3.9"}},
			Ports:             []api.EndpointPort{{Name: "pg", Port: 5432, Protocol: "TCP"}},
		}),
		endpoints("testns", "hdls-down", api.EndpointSubset{
			NotReadyAddresses: []api.EndpointAddress{{IP: "10.244.3.10"}},
			Ports:             []api.EndpointPort{{Port: 80, Protocol: "TCP"}},
		}),
		endpoints("testns", "hdls-peers", api.EndpointSubset{
			NotReadyAddresses: []api.EndpointAddress{{IP: "10.244.4.4", Hostname: "peer-0"}},
			Ports:             []api.EndpointPort{{Port: 80, Protocol: "TCP"}},
		}),
	}
)

// soa is the authority record of every negative answer.
const soa = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5"

var dnsTestCases = []dnsCase{
	// A ClusterIP Service: an A record for its cluster IP.
	{qname: "httpd-svc.default.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
		answer: []string{"httpd-svc.default.svc.cluster.local. 5 IN A 10.96.0.20"}},
	{qname: "svc1.testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
		answer: []string{"svc1.testns.svc.cluster.local. 5 IN A 10.96.0.21"}},
	// Names are case-insensitive; the answer keeps the query's case.
	{qname: "SVC1.TestNS.svc.Cluster.Local.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
		answer: []string{"SVC1.TestNS.svc.Cluster.Local. 5 IN A 10.96.0.21"}},
	// An IPv4-only name asked for IPv6: it exists, so NODATA, not NXDOMAIN.
	{qname: "svc1.testns.svc.cluster.local.", qtype: miekg.TypeAAAA, rcode: miekg.RcodeSuccess,
		ns: []string{soa}},
	{qname: "svc1.testns.svc.cluster.local.", qtype: miekg.TypeMX, rcode: miekg.RcodeSuccess,
		ns: []string{soa}},
	// A dual-stack Service has both.
	{qname: "dual.testns.svc.cluster.local.", qtype: miekg.TypeAAAA, rcode: miekg.RcodeSuccess,
		answer: []string{"dual.testns.svc.cluster.local. 5 IN AAAA fd00::22"}},
	{qname: "dual.testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
		answer: []string{"dual.testns.svc.cluster.local. 5 IN A 10.96.0.22"}},

	// SRV for each named port, pointing at the Service, its address attached.
	{qname: "_http._tcp.svc1.testns.svc.cluster.local.", qtype: miekg.TypeSRV, rcode: miekg.RcodeSuccess,
		answer: []string{"_http._tcp.svc1.testns.svc.cluster.local. 5 IN SRV 0 100 80 svc1.testns.svc.cluster.local."},
		extra:  []string{"svc1.testns.svc.cluster.local. 5 IN A 10.96.0.21"}},
	{qname: "_dns._udp.svc1.testns.svc.cluster.local.", qtype: miekg.TypeSRV, rcode: miekg.RcodeSuccess,
		answer: []string{"_dns._udp.svc1.testns.svc.cluster.local. 5 IN SRV 0 100 53 svc1.testns.svc.cluster.local."},
		extra:  []string{"svc1.testns.svc.cluster.local. 5 IN A 10.96.0.21"}},
	{qname: "_HTTP._TCP.svc1.testns.svc.cluster.local.", qtype: miekg.TypeSRV, rcode: miekg.RcodeSuccess,
		answer: []string{"_HTTP._TCP.svc1.testns.svc.cluster.local. 5 IN SRV 0 100 80 svc1.testns.svc.cluster.local."},
		extra:  []string{"svc1.testns.svc.cluster.local. 5 IN A 10.96.0.21"}},
	// The SRV name exists for other types too (NODATA); a wrong protocol
	// or an unnamed port has no SRV name at all.
	{qname: "_http._tcp.svc1.testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
		ns: []string{soa}},
	{qname: "_http._udp.svc1.testns.svc.cluster.local.", qtype: miekg.TypeSRV, rcode: miekg.RcodeNameError,
		ns: []string{soa}},
	{qname: "_8080._tcp.httpd-svc.default.svc.cluster.local.", qtype: miekg.TypeSRV, rcode: miekg.RcodeNameError,
		ns: []string{soa}},
	// "_tcp.<svc>" is an empty non-terminal while the Service has a named TCP port.
	{qname: "_tcp.svc1.testns.svc.cluster.local.", qtype: miekg.TypeSRV, rcode: miekg.RcodeSuccess,
		ns: []string{soa}},
	{qname: "_sctp.svc1.testns.svc.cluster.local.", qtype: miekg.TypeSRV, rcode: miekg.RcodeNameError,
		ns: []string{soa}},
	// A ClusterIP Service has no endpoint names.
	{qname: "10-244-9-9.svc1.testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeNameError,
		ns: []string{soa}},

	// A headless Service: an A record per ready endpoint (10.244.3.9 is not ready).
	{qname: "hdls1.testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
		answer: []string{
			"hdls1.testns.svc.cluster.local. 5 IN A 10.244.1.5",
			"hdls1.testns.svc.cluster.local. 5 IN A 10.244.2.7",
		}},
	// Each endpoint has its own name: its hostname, or its dashed IP.
	{qname: "db-0.hdls1.testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
		answer: []string{"db-0.hdls1.testns.svc.cluster.local. 5 IN A 10.244.1.5"}},
	{qname: "10-244-2-7.hdls1.testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
		answer: []string{"10-244-2-7.hdls1.testns.svc.cluster.local. 5 IN A 10.244.2.7"}},
	{qname: "10-244-3-9.hdls1.testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeNameError,
		ns: []string{soa}},
	{qname: "db-1.hdls1.testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeNameError,
		ns: []string{soa}},
	// SRV: one record per ready endpoint, at the endpoint's name.
	{qname: "_pg._tcp.hdls1.testns.svc.cluster.local.", qtype: miekg.TypeSRV, rcode: miekg.RcodeSuccess,
		answer: []string{
			"_pg._tcp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 50 5432 db-0.hdls1.testns.svc.cluster.local.",
			"_pg._tcp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 50 5432 10-244-2-7.hdls1.testns.svc.cluster.local.",
		},
		extra: []string{
			"db-0.hdls1.testns.svc.cluster.local. 5 IN A 10.244.1.5",
			"10-244-2-7.hdls1.testns.svc.cluster.local. 5 IN A 10.244.2.7",
		}},
	// Without ready endpoints a headless Service does not exist in DNS...
	{qname: "hdls-down.testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeNameError,
		ns: []string{soa}},
	// ...unless it publishes not-ready addresses.
	{qname: "hdls-peers.testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
		answer: []string{"hdls-peers.testns.svc.cluster.local. 5 IN A 10.244.4.4"}},
	{qname: "peer-0.hdls-peers.testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
		answer: []string{"peer-0.hdls-peers.testns.svc.cluster.local. 5 IN A 10.244.4.4"}},

	// An ExternalName Service is a CNAME, whatever the type asked. With no
	// upstream to follow it further, the CNAME comes alone.
	{qname: "ext.testns.svc.cluster.local.", qtype: miekg.TypeCNAME, rcode: miekg.RcodeSuccess,
		answer: []string{"ext.testns.svc.cluster.local. 5 IN CNAME mail.example.com."}},
	{qname: "ext.testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
		answer: []string{"ext.testns.svc.cluster.local. 5 IN CNAME mail.example.com."}},
	{qname: "x.ext.testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeNameError,
		ns: []string{soa}},
	// An alias inside the zone is followed at once.
	{qname: "alias.testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
		answer: []string{
			"alias.testns.svc.cluster.local. 5 IN CNAME svc1.testns.svc.cluster.local.",
			"svc1.testns.svc.cluster.local. 5 IN A 10.96.0.21",
		}},
	// ...and the rcode is that of the end of the chain (RFC 6604).
	{qname: "dangling.testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeNameError,
		answer: []string{"dangling.testns.svc.cluster.local. 5 IN CNAME nosuch.testns.svc.cluster.local."},
		ns:     []string{soa}},

	// PTR for cluster IPs and for headless endpoints.
	{qname: "21.0.96.10.in-addr.arpa.", qtype: miekg.TypePTR, rcode: miekg.RcodeSuccess,
		answer: []string{"21.0.96.10.in-addr.arpa. 5 IN PTR svc1.testns.svc.cluster.local."}},
	{qname: "2.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", qtype: miekg.TypePTR, rcode: miekg.RcodeSuccess,
		answer: []string{"2.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 5 IN PTR dual.testns.svc.cluster.local."}},
	{qname: "5.1.244.10.in-addr.arpa.", qtype: miekg.TypePTR, rcode: miekg.RcodeSuccess,
		answer: []string{"5.1.244.10.in-addr.arpa. 5 IN PTR db-0.hdls1.testns.svc.cluster.local."}},
	{qname: "7.2.244.10.IN-ADDR.ARPA.", qtype: miekg.TypePTR, rcode: miekg.RcodeSuccess,
		answer: []string{"7.2.244.10.IN-ADDR.ARPA. 5 IN PTR 10-244-2-7.hdls1.testns.svc.cluster.local."}},
	// An endpoint of a ClusterIP Service is a pod IP: not ours. It goes
	// upstream, and there is none here.
	{qname: "9.9.244.10.in-addr.arpa.", qtype: miekg.TypePTR, rcode: miekg.RcodeRefused},

	// Pod records: any dashed IP, in any namespace.
	{qname: "10-244-1-5.testns.pod.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
		answer: []string{"10-244-1-5.testns.pod.cluster.local. 5 IN A 10.244.1.5"}},
	{qname: "fd00--5.testns.pod.cluster.local.", qtype: miekg.TypeAAAA, rcode: miekg.RcodeSuccess,
		answer: []string{"fd00--5.testns.pod.cluster.local. 5 IN AAAA fd00::5"}},
	{qname: "10-244-1-5.testns.pod.cluster.local.", qtype: miekg.TypeAAAA, rcode: miekg.RcodeSuccess,
		ns: []string{soa}},
	{qname: "10-244-1.testns.pod.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeNameError,
		ns: []string{soa}},
	{qname: "testns.pod.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
		ns: []string{soa}},

	// The schema version, and the zone's own records.
	{qname: "dns-version.cluster.local.", qtype: miekg.TypeTXT, rcode: miekg.RcodeSuccess,
		answer: []string{`dns-version.cluster.local. 5 IN TXT "1.0.1"`}},
	{qname: "dns-version.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
		ns: []string{soa}},
	{qname: "cluster.local.", qtype: miekg.TypeSOA, rcode: miekg.RcodeSuccess,
		answer: []string{soa}},
	{qname: "cluster.local.", qtype: miekg.TypeNS, rcode: miekg.RcodeSuccess,
		answer: []string{"cluster.local. 5 IN NS ns.dns.cluster.local."},
		extra:  []string{"ns.dns.cluster.local. 5 IN A 10.96.0.10"}},
	{qname: "ns.dns.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
		answer: []string{"ns.dns.cluster.local. 5 IN A 10.96.0.10"}},
	{qname: "cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
		ns: []string{soa}},

	// Empty non-terminals exist; a namespace exists while it has Services.
	{qname: "svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
		ns: []string{soa}},
	{qname: "testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
		ns: []string{soa}},
	{qname: "nons.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeNameError,
		ns: []string{soa}},
	{qname: "nosuch.testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeNameError,
		ns: []string{soa}},
	{qname: "svc1.nons.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeNameError,
		ns: []string{soa}},

	// The search path's junk (ndots:5 tries every search domain first):
	// answered NXDOMAIN from the zone, never forwarded.
	{qname: "httpd-svc.default.svc.cluster.local.default.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeNameError,
		ns: []string{soa}},
	{qname: "httpd-svc.default.svc.cluster.local.svc.cluster.local.", qtype: miekg.TypeAAAA, rcode: miekg.RcodeNameError,
		ns: []string{soa}},
	{qname: "httpd-svc.default.svc.cluster.local.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeNameError,
		ns: []string{soa}},
	{qname: "www.example.com.default.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeNameError,
		ns: []string{soa}},
	{qname: "www.example.com.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeNameError,
		ns: []string{soa}},
	{qname: "example.com.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeNameError,
		ns: []string{soa}},

	// A name outside the zone, with no upstream to forward it to.
	{qname: "example.com.", qtype: miekg.TypeA, rcode: miekg.RcodeRefused},
}

func TestServeDNS(t *testing.T) {
	store := &fakeStore{synced: true, services: testServices, endpoints: testEndpoints}
	h, _ := newTestHandler(t, testConfig(t), store)
	for _, tc := range dnsTestCases {
		t.Run(fmt.Sprintf("%s/%s", tc.qname, miekg.TypeToString[tc.qtype]), func(t *testing.T) {
			for _, network := range []string{"udp", "tcp"} {
				tc.check(t, query(h, network, tc.msg()))
			}
		})
	}
}

// Before the caches have loaded, a name that needs them gets SERVFAIL —
// "try again" — never an NXDOMAIN that resolvers would remember. Names the
// zone alone decides are answered.
func TestServeDNSBeforeSync(t *testing.T) {
	store := &fakeStore{synced: false, services: testServices, endpoints: testEndpoints}
	h, _ := newTestHandler(t, testConfig(t), store)
	cases := []dnsCase{
		{qname: "svc1.testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeServerFailure},
		{qname: "nosuch.testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeServerFailure},
		{qname: "testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeServerFailure},
		{qname: "_http._tcp.svc1.testns.svc.cluster.local.", qtype: miekg.TypeSRV, rcode: miekg.RcodeServerFailure},
		{qname: "21.0.96.10.in-addr.arpa.", qtype: miekg.TypePTR, rcode: miekg.RcodeServerFailure},
		{qname: "dns-version.cluster.local.", qtype: miekg.TypeTXT, rcode: miekg.RcodeSuccess,
			answer: []string{`dns-version.cluster.local. 5 IN TXT "1.0.1"`}},
		{qname: "10-244-1-5.testns.pod.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
			answer: []string{"10-244-1-5.testns.pod.cluster.local. 5 IN A 10.244.1.5"}},
		{qname: "httpd-svc.default.svc.cluster.local.default.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeNameError,
			ns: []string{soa}},
	}
	for _, tc := range cases {
		tc.check(t, query(h, "udp", tc.msg()))
	}
}

func TestServeDNSPodsDisabled(t *testing.T) {
	cfg := testConfig(t)
	cfg.Pods = PodsDisabled
	h, _ := newTestHandler(t, cfg, &fakeStore{synced: true})
	dnsCase{qname: "10-244-1-5.testns.pod.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeNameError,
		ns: []string{soa}}.check(t, query(h, "udp", dnsCase{qname: "10-244-1-5.testns.pod.cluster.local.", qtype: miekg.TypeA}.msg()))
}

// Another zone and TTL change every name and record.
func TestServeDNSOtherZone(t *testing.T) {
	cfg := testConfig(t)
	cfg.Zone, cfg.TTL = "corp.example.", 30_000_000_000 // 30 s
	cfg, err := cfg.complete()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := newTestHandler(t, cfg, &fakeStore{synced: true, services: testServices, endpoints: testEndpoints})
	cases := []dnsCase{
		{qname: "svc1.testns.svc.corp.example.", qtype: miekg.TypeA, rcode: miekg.RcodeSuccess,
			answer: []string{"svc1.testns.svc.corp.example. 30 IN A 10.96.0.21"}},
		{qname: "nosuch.testns.svc.corp.example.", qtype: miekg.TypeA, rcode: miekg.RcodeNameError,
			ns: []string{"corp.example. 30 IN SOA ns.dns.corp.example. hostmaster.corp.example. 1 7200 1800 86400 30"}},
		{qname: "21.0.96.10.in-addr.arpa.", qtype: miekg.TypePTR, rcode: miekg.RcodeSuccess,
			answer: []string{"21.0.96.10.in-addr.arpa. 30 IN PTR svc1.testns.svc.corp.example."}},
		// cluster.local is now just another name outside the zone.
		{qname: "svc1.testns.svc.cluster.local.", qtype: miekg.TypeA, rcode: miekg.RcodeRefused},
	}
	for _, tc := range cases {
		tc.check(t, query(h, "udp", tc.msg()))
	}
}

// An answer too large for the client's UDP buffer is cut to whole records
// with the TC bit set; over TCP it comes whole.
func TestServeDNSTruncatesUDP(t *testing.T) {
	svc := service("big", "many", api.ClusterIPNone, api.ServicePort{Name: "http", Port: 80, Protocol: "TCP"})
	var addrs []api.EndpointAddress
	for i := range 200 {
		addrs = append(addrs, api.EndpointAddress{IP: fmt.Sprintf("10.244.%d.%d", i/100, i%100+1)})
	}
	eps := endpoints("big", "many", api.EndpointSubset{Addresses: addrs, Ports: []api.EndpointPort{{Name: "http", Port: 80, Protocol: "TCP"}}})
	h, _ := newTestHandler(t, testConfig(t), &fakeStore{synced: true, services: []*api.Service{svc}, endpoints: []*api.Endpoints{eps}})

	plain := new(miekg.Msg).SetQuestion("many.big.svc.cluster.local.", miekg.TypeA)
	withEDNS := new(miekg.Msg).SetQuestion("many.big.svc.cluster.local.", miekg.TypeA).SetEdns0(1232, false)
	srv := new(miekg.Msg).SetQuestion("_http._tcp.many.big.svc.cluster.local.", miekg.TypeSRV).SetEdns0(1232, false)
	for _, tc := range []struct {
		name     string
		network  string
		query    *miekg.Msg
		maxBytes int
	}{
		{"UDP without EDNS0: 512 bytes", "udp", plain, 512},
		{"UDP with EDNS0: the client's 1232 bytes", "udp", withEDNS, 1232},
		{"SRV with glue over UDP", "udp", srv, 1232},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply, size := queryWithSize(h, tc.network, tc.query.Copy())
			if !reply.Truncated {
				t.Errorf("TC bit not set on a %d-record answer", len(addrs))
			}
			if size > tc.maxBytes {
				t.Errorf("reply is %d bytes, more than %d", size, tc.maxBytes)
			}
			if len(reply.Answer) == 0 {
				t.Errorf("truncated reply has no answer records; it should carry as many as fit")
			}
		})
	}
	t.Run("TCP is cut at 64 KiB", func(t *testing.T) {
		var huge []api.EndpointAddress
		for i := range 5000 {
			huge = append(huge, api.EndpointAddress{IP: fmt.Sprintf("10.245.%d.%d", i/200, i%200+1)})
		}
		svc := service("big", "huge", api.ClusterIPNone)
		eps := endpoints("big", "huge", api.EndpointSubset{Addresses: huge})
		h, _ := newTestHandler(t, testConfig(t), &fakeStore{synced: true, services: []*api.Service{svc}, endpoints: []*api.Endpoints{eps}})
		reply, size := queryWithSize(h, "tcp", new(miekg.Msg).SetQuestion("huge.big.svc.cluster.local.", miekg.TypeA))
		if reply == nil || !reply.Truncated || size > miekg.MaxMsgSize || len(reply.Answer) < 1000 {
			t.Errorf("5000 records over TCP: %d bytes; want a truncated reply of at most 64 KiB with as many records as fit", size)
		}
	})
	t.Run("TCP gets everything", func(t *testing.T) {
		for _, q := range []*miekg.Msg{plain, srv} {
			reply := query(h, "tcp", q.Copy())
			if reply.Truncated || len(reply.Answer) != len(addrs) {
				t.Errorf("%s over TCP: truncated=%v, %d answers, want all %d", q.Question[0].Name, reply.Truncated, len(reply.Answer), len(addrs))
			}
		}
	})
}

func TestServeDNSMetrics(t *testing.T) {
	h, reg := newTestHandler(t, testConfig(t), &fakeStore{synced: true, services: testServices, endpoints: testEndpoints})
	query(h, "udp", dnsCase{qname: "svc1.testns.svc.cluster.local.", qtype: miekg.TypeA}.msg())
	query(h, "udp", dnsCase{qname: "svc1.testns.svc.cluster.local.", qtype: miekg.TypeA}.msg())
	query(h, "udp", dnsCase{qname: "nosuch.testns.svc.cluster.local.", qtype: miekg.TypeAAAA}.msg())

	if got := counterValue(t, reg, "kubelite_dns_queries_total", map[string]string{"type": "A", "rcode": "NOERROR"}); got != 2 {
		t.Errorf("A/NOERROR queries = %v, want 2", got)
	}
	if got := counterValue(t, reg, "kubelite_dns_queries_total", map[string]string{"type": "AAAA", "rcode": "NXDOMAIN"}); got != 1 {
		t.Errorf("AAAA/NXDOMAIN queries = %v, want 1", got)
	}
	if got := histogramCount(t, reg, "kubelite_dns_query_duration_seconds", map[string]string{"source": "cluster"}); got != 3 {
		t.Errorf("latency observations = %v, want 3", got)
	}
}

// counterValue reads one counter of a registry.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func histogramCount(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue metric
				}
			}
			return m.GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// Builders of test objects.

func service(namespace, name, clusterIP string, ports ...api.ServicePort) *api.Service {
	svc := &api.Service{Spec: api.ServiceSpec{Type: api.ServiceTypeClusterIP, ClusterIP: clusterIP, Ports: ports}}
	svc.Namespace, svc.Name = namespace, name
	if clusterIP != api.ClusterIPNone {
		svc.Spec.ClusterIPs = []string{clusterIP}
	}
	return svc
}

func dualStack(svc *api.Service, ipv6 string) *api.Service {
	svc.Spec.ClusterIPs = append(svc.Spec.ClusterIPs, ipv6)
	return svc
}

func publishNotReady(svc *api.Service) *api.Service {
	svc.Spec.PublishNotReadyAddresses = true
	return svc
}

func externalName(namespace, name, target string) *api.Service {
	svc := &api.Service{Spec: api.ServiceSpec{Type: api.ServiceTypeExternalName, ExternalName: target}}
	svc.Namespace, svc.Name = namespace, name
	return svc
}

func endpoints(namespace, name string, subsets ...api.EndpointSubset) *api.Endpoints {
	eps := &api.Endpoints{Subsets: subsets}
	eps.Namespace, eps.Name = namespace, name
	return eps
}
