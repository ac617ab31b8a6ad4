package proxy

import (
	"net/netip"
	"reflect"
	"strconv"
	"testing"

	"kubelite/api"
)

func TestServicePortsEndpoints(t *testing.T) {
	dns := clusterIPService("kube-system", "kube-dns", "10.96.0.10",
		api.ServicePort{Name: "dns", Protocol: api.ProtocolUDP, Port: 53},
		api.ServicePort{Name: "metrics", Protocol: api.ProtocolTCP, Port: 9153})
	web := clusterIPService("default", "web", "10.96.0.80", tcpPort(80, 8080))
	webEndpoints := endpointsOf("default", "web", api.ProtocolTCP, 8080, "10.244.2.6", "10.244.1.5", "fd00::5")
	// The same address twice (two subsets), and a UDP port of the same name.
	webEndpoints.Subsets = append(webEndpoints.Subsets,
		api.EndpointSubset{Addresses: []api.EndpointAddress{{IP: "10.244.1.5"}}, Ports: []api.EndpointPort{{Port: 8080, Protocol: api.ProtocolTCP}}},
		api.EndpointSubset{Addresses: []api.EndpointAddress{{IP: "10.244.3.3"}}, Ports: []api.EndpointPort{{Port: 8080, Protocol: api.ProtocolUDP}}})
	// kube-dns Endpoints that some controller wrote: LocalDNS wins for port 53.
	dnsEndpoints := endpointsOf("kube-system", "kube-dns", api.ProtocolUDP, 53, "10.244.9.9")

	ports := servicePorts(RuleInput{
		Services:  []*api.Service{web, dns},
		Endpoints: []*api.Endpoints{webEndpoints, dnsEndpoints},
		NodeName:  "node1",
		LocalDNS:  netip.MustParseAddrPort("10.244.1.1:53"),
	})
	got := map[string][]string{}
	for _, p := range ports {
		var eps []string
		for _, ep := range p.endpoints {
			s := ep.addr.String()
			if ep.local {
				s += " (local)"
			}
			eps = append(eps, s)
		}
		got[p.name.String()+"/"+p.protocol] = eps
	}
	want := map[string][]string{
		"default/web:/tcp":                 {"10.244.1.5:8080 (local)", "10.244.2.6:8080 (local)"},
		"kube-system/kube-dns:dns/udp":     {"10.244.1.1:53 (local)"},
		"kube-system/kube-dns:metrics/tcp": nil,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("endpoints by port:\n got %v\nwant %v", got, want)
	}
	if ports[0].name.Name != "web" || ports[1].name.Port != "dns" {
		t.Errorf("ports not sorted by name: %v, %v", ports[0].name, ports[1].name)
	}
}

func TestServicePortsSkipsServicesWithoutAVirtualIP(t *testing.T) {
	headless := clusterIPService("default", "db", api.ClusterIPNone, tcpPort(5432, 5432))
	external := &api.Service{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "up"}, Spec: api.ServiceSpec{Type: api.ServiceTypeExternalName, ExternalName: "example.com"}}
	unallocated := clusterIPService("default", "new", "", tcpPort(80, 80))
	if ports := servicePorts(RuleInput{Services: []*api.Service{headless, external, unallocated}}); len(ports) != 0 {
		t.Errorf("got ports %v", ports)
	}
}

// The memo gives what working everything out again gives, follows a
// change of the Service or of its Endpoints (each a new resourceVersion),
// and never trusts objects without a resourceVersion.
func TestServicePortsMemo(t *testing.T) {
	state, steps := syncScenario()
	version := 0
	seen := make(map[api.Object]bool)
	stamp := func(in RuleInput) RuleInput {
		// As a cache would: a new object, with a new resourceVersion, for
		// each change (the scenario replaces an object to change it).
		var objects []api.Object
		for _, svc := range in.Services {
			objects = append(objects, svc)
		}
		for _, eps := range in.Endpoints {
			objects = append(objects, eps)
		}
		for _, obj := range objects {
			if !seen[obj] {
				seen[obj] = true
				version++
				obj.GetObjectMeta().ResourceVersion = strconv.Itoa(version)
			}
		}
		return in
	}
	_, memo := servicePortsMemo(stamp(state.input()), nil)
	for _, step := range steps {
		step.change(state)
		in := stamp(state.input())
		got, next := servicePortsMemo(in, memo)
		if want := servicePorts(in); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: memoized ports differ:\n got %+v\nwant %+v", step.name, got, want)
		}
		memo = next
	}

	// An object changed in place, without a new resourceVersion, is not
	// something a cache hands out; one without any is never memoized.
	svc := clusterIPService("default", "bare", "10.96.9.9", tcpPort(80, 8080))
	in := RuleInput{Services: []*api.Service{svc}}
	_, memo = servicePortsMemo(in, nil)
	svc.Spec.Ports[0].Port = 81
	if got, _ := servicePortsMemo(in, memo); len(got) != 1 || got[0].port != 81 {
		t.Errorf("a Service without a resourceVersion was taken from the memo: %+v", got)
	}
}
