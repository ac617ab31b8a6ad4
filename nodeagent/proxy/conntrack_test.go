package proxy

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"

	"kubelite/api"
)

func TestStaleConntrackFlows(t *testing.T) {
	ip := netip.MustParseAddr
	ports := func(services []*api.Service, endpoints ...*api.Endpoints) []servicePort {
		return servicePorts(RuleInput{Services: services, Endpoints: endpoints, NodeName: "node1"})
	}
	dns := clusterIPService("default", "dns", "10.96.0.53", udpPort(53, 5353))
	web := clusterIPService("default", "web", "10.96.0.80", tcpPort(80, 8080))
	lb := clusterIPService("default", "udp-lb", "10.96.0.99", api.ServicePort{Protocol: api.ProtocolUDP, Port: 514, TargetPort: api.FromInt(514), NodePort: 30514})
	lb.Spec.Type = api.ServiceTypeLoadBalancer
	lb.Status.LoadBalancer.Ingress = []api.LoadBalancerIngress{{IP: "192.168.56.201"}}

	for _, tc := range []struct {
		name      string
		prev, cur []servicePort
		want      []ConntrackFlow
	}{
		{
			name: "first sync: nothing is stale",
			prev: nil,
			cur:  ports([]*api.Service{dns}, endpointsOf("default", "dns", api.ProtocolUDP, 5353, "10.244.1.5")),
		},
		{
			name: "endpoint removed",
			prev: ports([]*api.Service{dns}, endpointsOf("default", "dns", api.ProtocolUDP, 5353, "10.244.1.5", "10.244.2.6")),
			cur:  ports([]*api.Service{dns}, endpointsOf("default", "dns", api.ProtocolUDP, 5353, "10.244.1.5")),
			want: []ConntrackFlow{{Protocol: "udp", OrigDst: ip("10.96.0.53"), OrigDstPort: 53, ReplySrc: ip("10.244.2.6")}},
		},
		{
			name: "TCP endpoints are left to TCP",
			prev: ports([]*api.Service{web}, endpointsOf("default", "web", api.ProtocolTCP, 8080, "10.244.1.5", "10.244.2.6")),
			cur:  ports([]*api.Service{web}, endpointsOf("default", "web", api.ProtocolTCP, 8080, "10.244.1.5")),
		},
		{
			name: "first endpoint of a Service that was rejecting",
			prev: ports([]*api.Service{dns}),
			cur:  ports([]*api.Service{dns}, endpointsOf("default", "dns", api.ProtocolUDP, 5353, "10.244.1.5")),
			want: []ConntrackFlow{{Protocol: "udp", OrigDst: ip("10.96.0.53"), OrigDstPort: 53}},
		},
		{
			name: "Service deleted: its endpoints are stale on every address and the node port",
			prev: ports([]*api.Service{lb}, endpointsOf("default", "udp-lb", api.ProtocolUDP, 514, "10.244.1.7")),
			cur:  nil,
			want: []ConntrackFlow{
				{Protocol: "udp", OrigDst: ip("10.96.0.99"), OrigDstPort: 514, ReplySrc: ip("10.244.1.7")},
				{Protocol: "udp", OrigDst: ip("192.168.56.201"), OrigDstPort: 514, ReplySrc: ip("10.244.1.7")},
				{Protocol: "udp", OrigDstPort: 30514, ReplySrc: ip("10.244.1.7")},
			},
		},
		{
			name: "nothing changed",
			prev: ports([]*api.Service{dns}, endpointsOf("default", "dns", api.ProtocolUDP, 5353, "10.244.1.5")),
			cur:  ports([]*api.Service{dns}, endpointsOf("default", "dns", api.ProtocolUDP, 5353, "10.244.1.5")),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := staleConntrackFlows(tc.prev, tc.cur); !slices.Equal(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestConntrackFilterMatchesOnlyTheFlow(t *testing.T) {
	// A client's DNS flow to the cluster IP, DNATed to 10.244.2.6.
	flow := func(protocol uint8, origDst string, replySrc string) *netlink.ConntrackFlow {
		return &netlink.ConntrackFlow{
			Forward: netlink.IPTuple{Protocol: protocol, SrcIP: net.ParseIP("10.244.1.9"), SrcPort: 40000, DstIP: net.ParseIP(origDst), DstPort: 53},
			Reverse: netlink.IPTuple{Protocol: protocol, SrcIP: net.ParseIP(replySrc), SrcPort: 5353, DstIP: net.ParseIP("10.244.1.9"), DstPort: 40000},
		}
	}
	filter, err := conntrackFilter(ConntrackFlow{Protocol: "udp", OrigDst: netip.MustParseAddr("10.96.0.53"), OrigDstPort: 53, ReplySrc: netip.MustParseAddr("10.244.2.6")})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flow  *netlink.ConntrackFlow
		match bool
	}{
		{"the stale flow", flow(17, "10.96.0.53", "10.244.2.6"), true},
		{"answered by another endpoint", flow(17, "10.96.0.53", "10.244.1.5"), false},
		{"to another Service", flow(17, "10.96.0.54", "10.244.2.6"), false},
		{"TCP", flow(6, "10.96.0.53", "10.244.2.6"), false},
	} {
		if got := filter.MatchConntrackFlow(tc.flow); got != tc.match {
			t.Errorf("%s: match = %v, want %v", tc.name, got, tc.match)
		}
	}
	if _, err := conntrackFilter(ConntrackFlow{Protocol: "icmp"}); err == nil {
		t.Error("an unknown protocol was accepted")
	}
}
