package allocator

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"kubelite/api"
)

func TestCreateAllocatesAndDeleteReleases(t *testing.T) {
	env := newTestEnv(t, Config{})
	svc := env.mustCreate(t, service("web", api.ServiceTypeNodePort, port("http", 80, 0), port("https", 443, 0)))

	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !env.hook.ServiceCIDR().Contains(ip) {
		t.Fatalf("clusterIP %q is not in %s", svc.Spec.ClusterIP, env.hook.ServiceCIDR())
	}
	if !slices.Equal(svc.Spec.ClusterIPs, []string{svc.Spec.ClusterIP}) {
		t.Errorf("clusterIPs = %v, want [%s]", svc.Spec.ClusterIPs, svc.Spec.ClusterIP)
	}
	np := nodePorts(svc)
	if np[0] == np[1] || !env.hook.NodePortRange().Contains(int(np[0])) || !env.hook.NodePortRange().Contains(int(np[1])) {
		t.Fatalf("nodePorts = %v, want two distinct ports in %s", np, env.hook.NodePortRange())
	}
	want := map[string]string{
		"serviceips/" + svc.Spec.ClusterIP: "default/web",
		"servicenodeports/" + itoa(np[0]):  "default/web",
		"servicenodeports/" + itoa(np[1]):  "default/web",
	}
	if got := env.keys(t); !maps.Equal(got, want) {
		t.Fatalf("keys = %v, want %v", got, want)
	}

	env.hook.AfterDelete(ctxT(t), svc)
	if got := env.keys(t); len(got) != 0 {
		t.Fatalf("keys after delete = %v, want none", got)
	}
}

func TestCreateHonoursRequestedValues(t *testing.T) {
	env := newTestEnv(t, Config{})
	svc := service("httpd-svc", api.ServiceTypeNodePort, port("", 8080, 31000))
	svc.Spec.ClusterIP = "10.96.0.50"
	env.mustCreate(t, svc)
	if svc.Spec.ClusterIP != "10.96.0.50" || !slices.Equal(svc.Spec.ClusterIPs, []string{"10.96.0.50"}) || svc.Spec.Ports[0].NodePort != 31000 {
		t.Fatalf("got clusterIP %s %v, nodePort %d; want 10.96.0.50 and 31000",
			svc.Spec.ClusterIP, svc.Spec.ClusterIPs, svc.Spec.Ports[0].NodePort)
	}
	want := map[string]string{"serviceips/10.96.0.50": "default/httpd-svc", "servicenodeports/31000": "default/httpd-svc"}
	if got := env.keys(t); !maps.Equal(got, want) {
		t.Fatalf("keys = %v, want %v", got, want)
	}
}

func TestCreateRefusals(t *testing.T) {
	env := newTestEnv(t, Config{})
	holder := service("holder", api.ServiceTypeNodePort, port("", 80, 31000))
	holder.Spec.ClusterIP = "10.96.0.50"
	env.mustCreate(t, holder)

	withIP := func(ip string, ports ...api.ServicePort) *api.Service {
		svc := service("bad", api.ServiceTypeNodePort, ports...)
		svc.Spec.ClusterIP = ip
		return svc
	}
	tests := []struct {
		name    string
		svc     *api.Service
		wantErr string
	}{
		{
			name:    "node port below the range",
			svc:     service("bad", api.ServiceTypeNodePort, port("", 80, 8888)),
			wantErr: "spec.ports[0].nodePort: Invalid value: 8888: provided port is not in the valid range. The range of valid ports is 30000-32767",
		},
		{
			name:    "node port taken",
			svc:     service("bad", api.ServiceTypeNodePort, port("", 80, 31000)),
			wantErr: "spec.ports[0].nodePort: Invalid value: 31000: provided port is already allocated",
		},
		{
			name:    "cluster IP outside the service CIDR",
			svc:     withIP("10.0.0.5", port("", 80, 0)),
			wantErr: `spec.clusterIPs: Invalid value: []string{"10.0.0.5"}: failed to allocate IP 10.0.0.5: the provided IP (10.0.0.5) is not in the valid range. The range of valid IPs is 10.96.0.0/12`,
		},
		{
			name:    "the network address",
			svc:     withIP("10.96.0.0", port("", 80, 0)),
			wantErr: `spec.clusterIPs: Invalid value: []string{"10.96.0.0"}: failed to allocate IP 10.96.0.0: the provided IP (10.96.0.0) is not in the valid range. The range of valid IPs is 10.96.0.0/12`,
		},
		{
			name:    "cluster IP taken",
			svc:     withIP("10.96.0.50", port("", 80, 0)),
			wantErr: `spec.clusterIPs: Invalid value: []string{"10.96.0.50"}: failed to allocate IP 10.96.0.50: provided IP is already allocated`,
		},
		{
			name:    "the DNS address asked for by another service",
			svc:     withIP("10.96.0.10", port("", 80, 0)),
			wantErr: `spec.clusterIPs: Invalid value: []string{"10.96.0.10"}: failed to allocate IP 10.96.0.10: the provided IP (10.96.0.10) is reserved for kube-system/kube-dns`,
		},
		{
			name:    "not an IP",
			svc:     withIP("10.96.0.300", port("", 80, 0)),
			wantErr: `spec.clusterIPs[0]: Invalid value: "10.96.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`,
		},
		{
			name: "clusterIPs disagreeing with clusterIP",
			svc: func() *api.Service {
				svc := withIP("10.96.0.60", port("", 80, 0))
				svc.Spec.ClusterIPs = []string{"10.96.0.61"}
				return svc
			}(),
			wantErr: "spec.clusterIPs: Invalid value: []string{\"10.96.0.61\"}: first value must match `clusterIP`",
		},
		{
			name:    "second node port taken after the first and the cluster IP were allocated",
			svc:     withIP("10.96.0.70", port("http", 80, 31001), port("https", 443, 31000)),
			wantErr: "spec.ports[1].nodePort: Invalid value: 31000: provided port is already allocated",
		},
		{
			name:    "second node port taken, the first yet to be picked at random",
			svc:     service("bad", api.ServiceTypeNodePort, port("http", 80, 0), port("https", 443, 31000)),
			wantErr: "spec.ports[1].nodePort: Invalid value: 31000: provided port is already allocated",
		},
	}
	before := env.keys(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := env.create(t, tt.svc)
			wantInvalid(t, err, "bad", tt.wantErr)
			if after := env.keys(t); !maps.Equal(after, before) {
				t.Fatalf("a refused create changed the allocations:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

func TestRollbackReleasesEverythingTheCallAllocated(t *testing.T) {
	env := newTestEnv(t, Config{})
	svc := service("web", api.ServiceTypeNodePort, port("http", 80, 31500), port("https", 443, 0))
	rollback, err := env.hook.BeforeCreate(ctxT(t), svc)
	if err != nil {
		t.Fatal(err)
	}
	if got := env.keys(t); len(got) != 3 {
		t.Fatalf("keys = %v, want an IP and two ports", got)
	}
	rollback() // storing the Service failed
	if got := env.keys(t); len(got) != 0 {
		t.Fatalf("keys after rollback = %v, want none", got)
	}
}

func TestServicesWithoutClusterIP(t *testing.T) {
	env := newTestEnv(t, Config{})
	headless := service("headless", api.ServiceTypeClusterIP, port("", 80, 0))
	headless.Spec.ClusterIP = api.ClusterIPNone
	env.mustCreate(t, headless)
	if headless.Spec.ClusterIP != "None" || !slices.Equal(headless.Spec.ClusterIPs, []string{"None"}) {
		t.Errorf("headless: clusterIP %q, clusterIPs %v; want None, [None]", headless.Spec.ClusterIP, headless.Spec.ClusterIPs)
	}
	external := service("external", api.ServiceTypeExternalName)
	external.Spec.ExternalName = "example.com"
	env.mustCreate(t, external)
	if external.Spec.ClusterIP != "" || len(external.Spec.ClusterIPs) != 0 {
		t.Errorf("ExternalName: clusterIP %q, clusterIPs %v; want none", external.Spec.ClusterIP, external.Spec.ClusterIPs)
	}
	if got := env.keys(t); len(got) != 0 {
		t.Fatalf("keys = %v, want none", got)
	}
}

func TestServiceTypesAndNodePorts(t *testing.T) {
	env := newTestEnv(t, Config{})
	clusterIP := env.mustCreate(t, service("cip", "", port("", 80, 0)))
	if clusterIP.Spec.ClusterIP == "" || clusterIP.Spec.Ports[0].NodePort != 0 {
		t.Errorf("ClusterIP Service: clusterIP %q, nodePort %d; want an IP and no node port",
			clusterIP.Spec.ClusterIP, clusterIP.Spec.Ports[0].NodePort)
	}
	lb := env.mustCreate(t, service("lb", api.ServiceTypeLoadBalancer, port("", 80, 0)))
	if lb.Spec.Ports[0].NodePort == 0 {
		t.Error("LoadBalancer Service got no node port")
	}
	noNodePorts := service("lb-no-nodeports", api.ServiceTypeLoadBalancer, port("a", 80, 0), port("b", 81, 32000))
	noNodePorts.Spec.AllocateLoadBalancerNodePorts = api.Ptr(false)
	env.mustCreate(t, noNodePorts)
	if got := nodePorts(noNodePorts); !slices.Equal(got, []int32{0, 32000}) {
		t.Errorf("LoadBalancer with allocateLoadBalancerNodePorts=false: nodePorts %v, want [0 32000] (only the requested one)", got)
	}
	dns := service("dns", api.ServiceTypeNodePort,
		api.ServicePort{Name: "dns", Port: 53, Protocol: api.ProtocolUDP},
		api.ServicePort{Name: "dns-tcp", Port: 53, Protocol: api.ProtocolTCP})
	env.mustCreate(t, dns)
	if got := nodePorts(dns); got[0] == 0 || got[0] != got[1] {
		t.Errorf("UDP and TCP of port 53: nodePorts %v, want one shared node port", got)
	}
	env.hook.AfterDelete(ctxT(t), dns)
	if _, ok := env.keys(t)["servicenodeports/"+itoa(dns.Spec.Ports[0].NodePort)]; ok {
		t.Error("the shared node port was not released with its Service")
	}
}

func TestWellKnownServicesGetTheirReservedIPs(t *testing.T) {
	env := newTestEnv(t, Config{})
	kubernetes := service("kubernetes", "", port("https", 443, 0))
	kubernetes.Spec.ClusterIP = "10.96.0.1"
	env.mustCreate(t, kubernetes)

	dns := service("kube-dns", "", api.ServicePort{Name: "dns", Port: 53, Protocol: api.ProtocolUDP})
	dns.Namespace = "kube-system"
	env.mustCreate(t, dns) // asks for none: gets its reserved one
	if dns.Spec.ClusterIP != "10.96.0.10" {
		t.Fatalf("kube-system/kube-dns got %s, want 10.96.0.10", dns.Spec.ClusterIP)
	}
	want := map[string]string{"serviceips/10.96.0.1": "default/kubernetes", "serviceips/10.96.0.10": "kube-system/kube-dns"}
	if got := env.keys(t); !maps.Equal(got, want) {
		t.Fatalf("keys = %v, want %v", got, want)
	}
}

func TestUpdate(t *testing.T) {
	tests := []struct {
		name string
		// old is created first; edit turns a copy of it into the update.
		old  *api.Service
		edit func(svc *api.Service)
		// check looks at the updated Service (old is as created).
		check func(t *testing.T, old, updated *api.Service)
		// wantKeys lists the allocations after AfterUpdate; "IP" and "NP0",
		// "NP1" stand for old's cluster IP and node ports.
		wantKeys func(old, updated *api.Service) []string
	}{
		{
			name: "omitted clusterIP and nodePorts are kept",
			old:  service("web", api.ServiceTypeNodePort, port("http", 80, 0), port("https", 443, 0)),
			edit: func(svc *api.Service) {
				svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "", nil
				svc.Spec.Ports = []api.ServicePort{port("https", 443, 0), port("http", 80, 0)} // reordered
			},
			check: func(t *testing.T, old, updated *api.Service) {
				if updated.Spec.ClusterIP != old.Spec.ClusterIP || !slices.Equal(updated.Spec.ClusterIPs, old.Spec.ClusterIPs) {
					t.Errorf("clusterIP %s %v, want %s kept", updated.Spec.ClusterIP, updated.Spec.ClusterIPs, old.Spec.ClusterIP)
				}
				if want := []int32{old.Spec.Ports[1].NodePort, old.Spec.Ports[0].NodePort}; !slices.Equal(nodePorts(updated), want) {
					t.Errorf("nodePorts %v, want %v (matched by name)", nodePorts(updated), want)
				}
			},
			wantKeys: func(old, _ *api.Service) []string { return heldValues(old) },
		},
		{
			name: "a renamed port keeps its node port by number and protocol",
			old:  service("web", api.ServiceTypeNodePort, port("http", 80, 0)),
			edit: func(svc *api.Service) { svc.Spec.Ports = []api.ServicePort{port("web", 80, 0)} },
			check: func(t *testing.T, old, updated *api.Service) {
				if updated.Spec.Ports[0].NodePort != old.Spec.Ports[0].NodePort {
					t.Errorf("nodePort %d, want %d kept", updated.Spec.Ports[0].NodePort, old.Spec.Ports[0].NodePort)
				}
			},
			wantKeys: func(old, _ *api.Service) []string { return heldValues(old) },
		},
		{
			name: "ClusterIP to NodePort allocates node ports",
			old:  service("web", api.ServiceTypeClusterIP, port("http", 80, 0)),
			edit: func(svc *api.Service) { svc.Spec.Type = api.ServiceTypeNodePort },
			check: func(t *testing.T, old, updated *api.Service) {
				if updated.Spec.Ports[0].NodePort == 0 || updated.Spec.ClusterIP != old.Spec.ClusterIP {
					t.Errorf("got nodePort %d, clusterIP %s; want a node port and the old IP", updated.Spec.Ports[0].NodePort, updated.Spec.ClusterIP)
				}
			},
			wantKeys: func(_, updated *api.Service) []string { return heldValues(updated) },
		},
		{
			name: "NodePort to ClusterIP drops and releases the node ports",
			old:  service("web", api.ServiceTypeNodePort, port("http", 80, 0)),
			edit: func(svc *api.Service) { svc.Spec.Type = api.ServiceTypeClusterIP },
			check: func(t *testing.T, old, updated *api.Service) {
				if updated.Spec.Ports[0].NodePort != 0 {
					t.Errorf("nodePort %d, want it dropped", updated.Spec.Ports[0].NodePort)
				}
			},
			wantKeys: func(old, _ *api.Service) []string { return []string{"serviceips/" + old.Spec.ClusterIP} },
		},
		{
			name: "a changed nodePort allocates the new one and releases the old",
			old:  service("web", api.ServiceTypeNodePort, port("http", 80, 31000)),
			edit: func(svc *api.Service) { svc.Spec.Ports[0].NodePort = 31001 },
			check: func(t *testing.T, _, updated *api.Service) {
				if updated.Spec.Ports[0].NodePort != 31001 {
					t.Errorf("nodePort %d, want 31001", updated.Spec.Ports[0].NodePort)
				}
			},
			wantKeys: func(old, _ *api.Service) []string {
				return []string{"serviceips/" + old.Spec.ClusterIP, "servicenodeports/31001"}
			},
		},
		{
			name: "ExternalName releases the cluster IP and the node ports",
			old:  service("web", api.ServiceTypeNodePort, port("http", 80, 0)),
			edit: func(svc *api.Service) {
				svc.Spec.Type = api.ServiceTypeExternalName
				svc.Spec.ExternalName = "example.com"
			},
			check: func(t *testing.T, _, updated *api.Service) {
				if updated.Spec.ClusterIP != "" || updated.Spec.ClusterIPs != nil || updated.Spec.Ports[0].NodePort != 0 {
					t.Errorf("clusterIP %q %v, nodePort %d; want all dropped",
						updated.Spec.ClusterIP, updated.Spec.ClusterIPs, updated.Spec.Ports[0].NodePort)
				}
			},
			wantKeys: func(_, _ *api.Service) []string { return nil },
		},
		{
			name: "ExternalName to ClusterIP allocates a cluster IP",
			old: func() *api.Service {
				svc := service("web", api.ServiceTypeExternalName, port("http", 80, 0))
				svc.Spec.ExternalName = "example.com"
				return svc
			}(),
			edit: func(svc *api.Service) {
				svc.Spec.Type = api.ServiceTypeClusterIP
				svc.Spec.ExternalName = ""
			},
			check: func(t *testing.T, _, updated *api.Service) {
				if updated.Spec.ClusterIP == "" {
					t.Error("no cluster IP allocated")
				}
			},
			wantKeys: func(_, updated *api.Service) []string { return heldValues(updated) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, Config{})
			old := env.mustCreate(t, tt.old)
			updated, err := env.update(t, old, tt.edit)
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			tt.check(t, old, updated)
			want := map[string]string{}
			for _, key := range tt.wantKeys(old, updated) {
				want[key] = "default/web"
			}
			if got := env.keys(t); !maps.Equal(got, want) {
				t.Fatalf("keys = %v, want %v", got, want)
			}
		})
	}
}

func TestUpdateRollbackKeepsTheOldValues(t *testing.T) {
	env := newTestEnv(t, Config{})
	old := env.mustCreate(t, service("web", api.ServiceTypeNodePort, port("http", 80, 31000)))
	before := env.keys(t)

	next := api.DeepCopy(old)
	next.Spec.Ports[0].NodePort = 31001
	next.Spec.Ports = append(next.Spec.Ports, port("extra", 81, 0))
	rollback, err := env.hook.BeforeUpdate(ctxT(t), next, old)
	if err != nil {
		t.Fatal(err)
	}
	if got := env.keys(t); len(got) != 4 {
		t.Fatalf("keys during the update = %v, want the old ones and the two new node ports", got)
	}
	rollback() // storing the update failed
	if got := env.keys(t); !maps.Equal(got, before) {
		t.Fatalf("keys after rollback = %v, want %v", got, before)
	}
}

func TestUpdateRefusedLeavesEverythingAsItWas(t *testing.T) {
	env := newTestEnv(t, Config{})
	env.mustCreate(t, service("other", api.ServiceTypeNodePort, port("", 80, 31000)))
	old := env.mustCreate(t, service("web", api.ServiceTypeClusterIP, port("a", 80, 0), port("b", 81, 0)))
	before := env.keys(t)
	_, err := env.update(t, old, func(svc *api.Service) {
		svc.Spec.Type = api.ServiceTypeNodePort
		svc.Spec.Ports[1].NodePort = 31000
	})
	wantInvalid(t, err, "web", "spec.ports[1].nodePort: Invalid value: 31000: provided port is already allocated")
	if after := env.keys(t); !maps.Equal(after, before) {
		t.Fatalf("a refused update changed the allocations:\nbefore %v\nafter  %v", before, after)
	}
}

// TestTwoHooksNeverShareAValue runs two API servers' hooks over one etcd,
// creating more Services than the ranges hold, all at once.
func TestTwoHooksNeverShareAValue(t *testing.T) {
	cfg := Config{ServiceCIDR: "10.96.0.0/27", NodePortRange: "30000-30019"} // 28 free IPs, 20 ports
	env := newTestEnv(t, cfg)
	hooks := []*ServiceHook{env.hook, env.newHook(t, cfg)}

	const services = 60
	var (
		mu        sync.Mutex
		created   []*api.Service
		refusals  []error
		wg        sync.WaitGroup
		work      = make(chan int)
		ctx       = ctxT(t)
		goroutine = 0
	)
	for range 16 {
		hook := hooks[goroutine%len(hooks)]
		goroutine++
		wg.Go(func() {
			for i := range work {
				svc := service(fmt.Sprintf("svc-%d", i), api.ServiceTypeNodePort, port("", 80, 0))
				_, err := hook.BeforeCreate(ctx, svc)
				mu.Lock()
				if err != nil {
					refusals = append(refusals, err)
				} else {
					created = append(created, svc)
				}
				mu.Unlock()
			}
		})
	}
	for i := range services {
		work <- i
	}
	close(work)
	wg.Wait()

	if len(created) != 20 {
		t.Errorf("%d Services got a node port, want all 20 of the range", len(created))
	}
	want := map[string]string{}
	for _, svc := range created {
		for _, key := range heldValues(svc) {
			if owner, dup := want[key]; dup {
				t.Fatalf("%s handed out twice: to %s and to %s", key, owner, svc.Name)
			}
			want[key] = "default/" + svc.Name
		}
	}
	// While some creates hold an IP and wait for a node port, the small IP
	// range may run out too.
	for _, err := range refusals {
		if !strings.Contains(err.Error(), "serviceIP") {
			wantInternal(t, err, "failed to allocate a nodePort: range is full")
		} else {
			wantInternal(t, err, "failed to allocate a serviceIP: range is full")
		}
	}
	if got := env.keys(t); !maps.Equal(got, want) {
		t.Fatalf("keys = %v,\nwant exactly those of the created Services %v", got, want)
	}
}

// heldValues lists svc's allocations as keys under /registry/ranges/.
func heldValues(svc *api.Service) []string {
	var keys []string
	for _, ip := range heldClusterIPs(svc) {
		keys = append(keys, "serviceips/"+ip)
	}
	for _, np := range heldNodePorts(svc) {
		keys = append(keys, "servicenodeports/"+np)
	}
	return keys
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }
