package endpoints

import (
	"encoding/json"
	"testing"

	"kubelite/api"
)

// pod builds a Pod for the tables: name, IP, ready, and container ports
// given as "name=port/protocol" pairs through options.
func pod(name, ip string, ready bool, opts ...func(*api.Pod)) *api.Pod {
	p := &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default", UID: "uid-" + name},
		Spec:       api.PodSpec{NodeName: "node-1", Containers: []api.Container{{Name: "c"}}},
		Status:     api.PodStatus{Phase: api.PodRunning, PodIP: ip},
	}
	status := api.ConditionFalse
	if ready {
		status = api.ConditionTrue
	}
	p.Status.Conditions = []api.PodCondition{{Type: api.PodReady, Status: status}}
	for _, o := range opts {
		o(p)
	}
	return p
}

func withPort(name string, number int32, protocol string) func(*api.Pod) {
	return func(p *api.Pod) {
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports,
			api.ContainerPort{Name: name, ContainerPort: number, Protocol: protocol})
	}
}

func terminating(p *api.Pod) { p.DeletionTimestamp = &api.Time{} }

func phase(ph string) func(*api.Pod) { return func(p *api.Pod) { p.Status.Phase = ph } }

func service(ports ...api.ServicePort) *api.Service {
	return &api.Service{
		ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "default"},
		Spec:       api.ServiceSpec{Selector: map[string]string{"app": "web"}, ClusterIP: "10.96.0.20", Ports: ports},
	}
}

func addr(name, ip string) api.EndpointAddress {
	return api.EndpointAddress{
		IP:        ip,
		NodeName:  api.Ptr("node-1"),
		TargetRef: &api.ObjectReference{Kind: "Pod", Namespace: "default", Name: name, UID: "uid-" + name},
	}
}

func port(name string, number int32, protocol string) api.EndpointPort {
	return api.EndpointPort{Name: name, Port: number, Protocol: protocol}
}

var (
	http80     = api.ServicePort{Name: "http", Port: 80, TargetPort: api.FromInt(8080), Protocol: api.ProtocolTCP}
	httpNamed  = api.ServicePort{Name: "http", Port: 80, TargetPort: api.FromString("web"), Protocol: api.ProtocolTCP}
	metrics    = api.ServicePort{Name: "metrics", Port: 9100, TargetPort: api.FromInt(9100), Protocol: api.ProtocolTCP}
	dnsUDP     = api.ServicePort{Name: "dns", Port: 53, TargetPort: api.FromString("dns"), Protocol: api.ProtocolUDP}
	noTarget   = api.ServicePort{Port: 8080, Protocol: api.ProtocolTCP}
	headless   = func(s *api.Service) *api.Service { s.Spec.ClusterIP = api.ClusterIPNone; return s }
	notReadyOK = func(s *api.Service) *api.Service { s.Spec.PublishNotReadyAddresses = true; return s }
)

func TestDesiredSubsets(t *testing.T) {
	tests := []struct {
		name string
		svc  *api.Service
		pods []*api.Pod
		want []api.EndpointSubset
	}{
		{
			name: "ready and not-ready pods, sorted by IP numerically",
			svc:  service(http80),
			pods: []*api.Pod{
				pod("c", "10.244.0.10", true),
				pod("a", "10.244.0.9", true),
				pod("b", "10.244.1.2", false),
			},
			want: []api.EndpointSubset{{
				Addresses:         []api.EndpointAddress{addr("a", "10.244.0.9"), addr("c", "10.244.0.10")},
				NotReadyAddresses: []api.EndpointAddress{addr("b", "10.244.1.2")},
				Ports:             []api.EndpointPort{port("http", 8080, "TCP")},
			}},
		},
		{
			name: "no IP, terminating, succeeded and failed pods are left out",
			svc:  service(http80),
			pods: []*api.Pod{
				pod("no-ip", "", true),
				pod("leaving", "10.244.0.3", true, terminating),
				pod("done", "10.244.0.4", false, phase(api.PodSucceeded)),
				pod("crashed", "10.244.0.5", false, phase(api.PodFailed)),
				pod("ok", "10.244.0.6", true),
			},
			want: []api.EndpointSubset{{
				Addresses: []api.EndpointAddress{addr("ok", "10.244.0.6")},
				Ports:     []api.EndpointPort{port("http", 8080, "TCP")},
			}},
		},
		{
			name: "publishNotReadyAddresses lists every pod as ready, terminating ones too",
			svc:  notReadyOK(service(http80)),
			pods: []*api.Pod{pod("a", "10.244.0.2", false), pod("b", "10.244.0.3", true, terminating)},
			want: []api.EndpointSubset{{
				Addresses: []api.EndpointAddress{addr("a", "10.244.0.2"), addr("b", "10.244.0.3")},
				Ports:     []api.EndpointPort{port("http", 8080, "TCP")},
			}},
		},
		{
			name: "a named targetPort resolves per pod; pods without it are left out",
			svc:  service(httpNamed),
			pods: []*api.Pod{
				pod("a", "10.244.0.2", true, withPort("web", 8080, "TCP")),
				pod("b", "10.244.0.3", true, withPort("web", 9090, "")),
				pod("c", "10.244.0.4", true, withPort("other", 8080, "TCP")),
			},
			want: []api.EndpointSubset{
				{Addresses: []api.EndpointAddress{addr("a", "10.244.0.2")}, Ports: []api.EndpointPort{port("http", 8080, "TCP")}},
				{Addresses: []api.EndpointAddress{addr("b", "10.244.0.3")}, Ports: []api.EndpointPort{port("http", 9090, "TCP")}},
			},
		},
		{
			name: "a named port must also match the protocol",
			svc:  service(dnsUDP),
			pods: []*api.Pod{
				pod("tcp-only", "10.244.0.2", true, withPort("dns", 53, "TCP")),
				pod("udp", "10.244.0.3", true, withPort("dns", 5353, "UDP")),
			},
			want: []api.EndpointSubset{
				{Addresses: []api.EndpointAddress{addr("udp", "10.244.0.3")}, Ports: []api.EndpointPort{port("dns", 5353, "UDP")}},
			},
		},
		{
			name: "pods offering different port sets get separate subsets",
			svc:  service(httpNamed, metrics),
			pods: []*api.Pod{
				pod("a", "10.244.0.2", true, withPort("web", 8080, "TCP")),
				pod("b", "10.244.0.3", true, withPort("web", 8080, "TCP")),
				pod("c", "10.244.0.4", true),
			},
			want: []api.EndpointSubset{
				{
					Addresses: []api.EndpointAddress{addr("a", "10.244.0.2"), addr("b", "10.244.0.3")},
					Ports:     []api.EndpointPort{port("http", 8080, "TCP")},
				},
				{
					Addresses: []api.EndpointAddress{addr("a", "10.244.0.2"), addr("b", "10.244.0.3"), addr("c", "10.244.0.4")},
					Ports:     []api.EndpointPort{port("metrics", 9100, "TCP")},
				},
			},
		},
		{
			name: "pods offering the same ports share one subset with all ports",
			svc:  service(http80, metrics),
			pods: []*api.Pod{pod("a", "10.244.0.2", true), pod("b", "10.244.0.3", false)},
			want: []api.EndpointSubset{{
				Addresses:         []api.EndpointAddress{addr("a", "10.244.0.2")},
				NotReadyAddresses: []api.EndpointAddress{addr("b", "10.244.0.3")},
				Ports:             []api.EndpointPort{port("http", 8080, "TCP"), port("metrics", 9100, "TCP")},
			}},
		},
		{
			name: "an unset targetPort means the service port",
			svc:  service(noTarget),
			pods: []*api.Pod{pod("a", "10.244.0.2", true)},
			want: []api.EndpointSubset{{
				Addresses: []api.EndpointAddress{addr("a", "10.244.0.2")},
				Ports:     []api.EndpointPort{port("", 8080, "TCP")},
			}},
		},
		{
			name: "a headless service without ports lists bare addresses",
			svc:  headless(service()),
			pods: []*api.Pod{pod("a", "10.244.0.2", true), pod("b", "10.244.0.3", false)},
			want: []api.EndpointSubset{{
				Addresses:         []api.EndpointAddress{addr("a", "10.244.0.2")},
				NotReadyAddresses: []api.EndpointAddress{addr("b", "10.244.0.3")},
			}},
		},
		{
			name: "a service with a cluster IP and no ports lists nothing",
			svc:  service(),
			pods: []*api.Pod{pod("a", "10.244.0.2", true)},
			want: nil,
		},
		{
			name: "a pod whose subdomain names the service gets its hostname",
			svc:  headless(service(http80)),
			pods: []*api.Pod{pod("a", "10.244.0.2", true, func(p *api.Pod) {
				p.Spec.Hostname, p.Spec.Subdomain = "db-0", "web"
			})},
			want: []api.EndpointSubset{{
				Addresses: []api.EndpointAddress{func() api.EndpointAddress {
					a := addr("a", "10.244.0.2")
					a.Hostname = "db-0"
					return a
				}()},
				Ports: []api.EndpointPort{port("http", 8080, "TCP")},
			}},
		},
		{
			name: "no pods, no subsets",
			svc:  service(http80),
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DesiredSubsets(tt.svc, tt.pods)
			assertSubsets(t, got, tt.want)
			// The same input in another order gives the same output.
			reversed := make([]*api.Pod, len(tt.pods))
			for i, p := range tt.pods {
				reversed[len(tt.pods)-1-i] = p
			}
			assertSubsets(t, DesiredSubsets(tt.svc, reversed), tt.want)
		})
	}
}

func TestRepackSubsets(t *testing.T) {
	a, b := addr("a", "10.244.0.2"), addr("b", "10.244.0.3")
	p80, p443 := port("http", 80, "TCP"), port("https", 443, "TCP")
	tests := []struct {
		name string
		in   []api.EndpointSubset
		want []api.EndpointSubset
	}{
		{name: "empty", in: nil, want: nil},
		{
			name: "duplicates merge",
			in: []api.EndpointSubset{
				{Addresses: []api.EndpointAddress{a}, Ports: []api.EndpointPort{p80}},
				{Addresses: []api.EndpointAddress{a}, Ports: []api.EndpointPort{p80}},
			},
			want: []api.EndpointSubset{{Addresses: []api.EndpointAddress{a}, Ports: []api.EndpointPort{p80}}},
		},
		{
			name: "ready on a port anywhere means ready",
			in: []api.EndpointSubset{
				{NotReadyAddresses: []api.EndpointAddress{a}, Ports: []api.EndpointPort{p80}},
				{Addresses: []api.EndpointAddress{a}, Ports: []api.EndpointPort{p80}},
			},
			want: []api.EndpointSubset{{Addresses: []api.EndpointAddress{a}, Ports: []api.EndpointPort{p80}}},
		},
		{
			name: "ports reaching the same addresses share a subset",
			in: []api.EndpointSubset{
				{Addresses: []api.EndpointAddress{b}, Ports: []api.EndpointPort{p443}},
				{Addresses: []api.EndpointAddress{a}, Ports: []api.EndpointPort{p80}},
				{Addresses: []api.EndpointAddress{a}, Ports: []api.EndpointPort{p443}},
				{Addresses: []api.EndpointAddress{b}, Ports: []api.EndpointPort{p80}},
			},
			want: []api.EndpointSubset{{Addresses: []api.EndpointAddress{a, b}, Ports: []api.EndpointPort{p80, p443}}},
		},
		{
			name: "the same IP from two pods is kept twice",
			in: []api.EndpointSubset{
				{Addresses: []api.EndpointAddress{a, addr("a2", "10.244.0.2")}, Ports: []api.EndpointPort{p80}},
			},
			want: []api.EndpointSubset{{Addresses: []api.EndpointAddress{a, addr("a2", "10.244.0.2")}, Ports: []api.EndpointPort{p80}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assertSubsets(t, RepackSubsets(tt.in), tt.want) })
	}
}

func assertSubsets(t *testing.T, got, want []api.EndpointSubset) {
	t.Helper()
	if !sameJSON(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("subsets:\n%s\nwant:\n%s", g, w)
	}
}
