package proxy

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"kubelite/api"
)

func TestAnnouncingNodeIsDeterministicAndSpreads(t *testing.T) {
	nodes := []string{"node1", "node2", "node3"}
	perNode := map[string]int{}
	for i := range 300 {
		svc := clusterIPService("default", fmt.Sprintf("lb-%d", i), "10.96.0.1")
		chosen := AnnouncingNode(svc, nodes)
		if !slices.Contains(nodes, chosen) {
			t.Fatalf("chose %q, not a ready node", chosen)
		}
		// The order of the list must not matter: every node computes it alone.
		if other := AnnouncingNode(svc, []string{"node3", "node1", "node2"}); other != chosen {
			t.Fatalf("%s: %s or %s depending on the list order", svc.Name, chosen, other)
		}
		perNode[chosen]++
	}
	for _, node := range nodes {
		if perNode[node] < 60 {
			t.Errorf("uneven spread over nodes: %v", perNode)
		}
	}
	if got := AnnouncingNode(clusterIPService("default", "x", "10.96.0.1"), nil); got != "" {
		t.Errorf("no ready node, chose %q", got)
	}
}

func TestAnnouncingNodeMovesOnlyTheServicesOfALostNode(t *testing.T) {
	before := []string{"node1", "node2", "node3"}
	after := []string{"node1", "node3"}
	for i := range 200 {
		svc := clusterIPService("default", fmt.Sprintf("lb-%d", i), "10.96.0.1")
		was, is := AnnouncingNode(svc, before), AnnouncingNode(svc, after)
		if was != "node2" && was != is {
			t.Errorf("%s moved from %s to %s though %s is still ready", svc.Name, was, is, was)
		}
	}
}

func TestAnnouncedAddresses(t *testing.T) {
	lb := func(name string, ips ...string) *api.Service {
		svc := clusterIPService("default", name, "10.96.0.1", tcpPort(80, 80))
		svc.Spec.Type = api.ServiceTypeLoadBalancer
		for _, ip := range ips {
			svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress, api.LoadBalancerIngress{IP: ip})
		}
		return svc
	}
	services := []*api.Service{
		lb("a", "192.168.56.201", "2001:db8::1"),
		lb("b", "192.168.56.200"),
		lb("pending"), // no address from the pool yet
		clusterIPService("default", "plain", "10.96.0.2", tcpPort(80, 80)),
	}
	got := announcedAddresses(services, []string{"node1"}, "node1")
	want := []netip.Addr{netip.MustParseAddr("192.168.56.200"), netip.MustParseAddr("192.168.56.201")}
	if !slices.Equal(got, want) {
		t.Errorf("the only ready node announces %v, want %v", got, want)
	}
	if got := announcedAddresses(services, []string{"node2"}, "node1"); len(got) != 0 {
		t.Errorf("a node that is not chosen announces %v", got)
	}
}
