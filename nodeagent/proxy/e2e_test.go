package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"kubelite/api"
	"kubelite/nodeagent/proxy/iptables"
)

// e2eProxier is a real Proxier programming the lab's node namespace, fed
// from in-memory caches.
type e2eProxier struct {
	services  *fakeSource[*api.Service]
	endpoints *fakeSource[*api.Endpoints]
	nodes     *fakeSource[*api.Node]
	host      *Host
	cfg       Config
	syncs     chan syncResult
}

type syncResult struct {
	started time.Time
	err     error
}

func startE2EProxier(t *testing.T, l *lab, mode Mode, services []*api.Service, endpoints []*api.Endpoints) *e2eProxier {
	t.Helper()
	host, err := NewHost(HostConfig{NetNS: nsPath(l.node), LoadBalancerInterface: labNodeIface, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(host.Close)
	e := &e2eProxier{
		services:  newFakeSource(true, services...),
		endpoints: newFakeSource(true, endpoints...),
		nodes:     newFakeSource(true, readyNode("node1", true)),
		host:      host,
		syncs:     make(chan syncResult, 1000),
		cfg: Config{
			Mode:            mode,
			NodeName:        "node1",
			ClusterCIDR:     netip.MustParsePrefix(labPodCIDR),
			LocalDNS:        netip.MustParseAddrPort(labBridgeIP + ":5353"),
			MinSyncInterval: 50 * time.Millisecond,
			CanaryInterval:  200 * time.Millisecond,
			Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		},
	}
	p, err := New(e.cfg, Sources{Services: e.services, Endpoints: e.endpoints, Nodes: e.nodes}, host)
	if err != nil {
		t.Fatal(err)
	}
	p.afterSync = func(started time.Time, err error) {
		select {
		case e.syncs <- syncResult{started, err}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := p.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return e
}

// waitSyncSince waits for a successful sync that started after since, and
// so saw every change made before it.
func (e *e2eProxier) waitSyncSince(t *testing.T, since time.Time) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case result := <-e.syncs:
			if result.err != nil {
				t.Logf("sync failed (will be retried): %v", result.err)
			} else if !result.started.Before(since) {
				return
			}
		case <-deadline:
			t.Fatal("no successful sync within 10s")
		}
	}
}

// input is what the proxier should implement now.
func (e *e2eProxier) input() RuleInput {
	return RuleInput{
		Services: e.services.List(""), Endpoints: e.endpoints.List(""),
		NodeName: e.cfg.NodeName, ClusterCIDR: e.cfg.ClusterCIDR, LocalDNS: e.cfg.LocalDNS,
	}
}

// expected renders what the proxier should have written for the current
// state, in iptables mode.
func (e *e2eProxier) expected() *RuleSet {
	return BuildRules(e.input())
}

// listNFT is `nft list table ip kubelite` on the node.
func (e *e2eProxier) listNFT(t *testing.T) string {
	t.Helper()
	out, err := e.host.NFTables.List(context.Background(), "table", nftFamily, nftTable)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// rulesText is everything the proxier wrote, as the node shows it: the nat
// table in iptables mode, the kubelite table in nftables mode.
func (e *e2eProxier) rulesText(t *testing.T) string {
	t.Helper()
	if e.cfg.Mode == ModeNFTables {
		return e.listNFT(t)
	}
	return e.save(t, iptables.TableNAT)
}

func (e *e2eProxier) save(t *testing.T, table iptables.Table) string {
	t.Helper()
	out, err := e.host.IPTables.Save(context.Background(), table)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// The tutorial's Services on one node, in each proxy mode: cluster IP from
// the node and from a pod, load spread, node ports from outside, rejection
// without endpoints, a load-balancer IP, DNS to the node's own server, and
// what happens when an endpoint goes away or someone flushes the rules.
func TestEndToEnd(t *testing.T) {
	for _, mode := range []Mode{ModeIPTables, ModeNFTables} {
		t.Run(string(mode), func(t *testing.T) {
			testEndToEnd(t, mode)
		})
	}
}

func testEndToEnd(t *testing.T, mode Mode) {
	rootForwarding := readRootSysctl(t, "net/ipv4/ip_forward")
	l := newLab(t, true)

	podIPs := func(pods ...*labPod) []string {
		var ips []string
		for _, p := range pods {
			ips = append(ips, p.ip)
		}
		return ips
	}
	all := podIPs(l.pods...)
	pod1, pod2, pod3 := l.pods[0], l.pods[1], l.pods[2]

	httpd := nodePortService("default", "httpd-svc", "10.102.120.255", 8080, 80, 31000)
	httpdRandom := nodePortService("default", "httpd-random", "10.96.10.11", 80, 80, 30617)
	empty := nodePortService("default", "empty-svc", "10.96.200.1", 80, 80, 31001)
	lb := nodePortService("default", "httpd-lb", "10.96.100.7", 8080, 80, 30080)
	lb.Spec.Type = api.ServiceTypeLoadBalancer
	lb.Status.LoadBalancer.Ingress = []api.LoadBalancerIngress{{IP: "192.168.56.200"}}
	dns := clusterIPService("kube-system", "kube-dns", "10.96.0.10",
		api.ServicePort{Name: "dns", Protocol: api.ProtocolUDP, Port: 53, TargetPort: api.FromInt(53)},
		api.ServicePort{Name: "dns-tcp", Protocol: api.ProtocolTCP, Port: 53, TargetPort: api.FromInt(53)})
	udpEcho := clusterIPService("default", "udp-echo", "10.96.50.1", udpPort(9000, 9000))

	e := startE2EProxier(t, l, mode,
		[]*api.Service{httpd, httpdRandom, empty, lb, dns, udpEcho},
		[]*api.Endpoints{
			endpointsOf("default", "httpd-svc", api.ProtocolTCP, 80, all...),
			endpointsOf("default", "httpd-random", api.ProtocolTCP, 80, all...),
			endpointsOf("default", "httpd-lb", api.ProtocolTCP, 80, all...),
			endpointsOf("default", "udp-echo", api.ProtocolUDP, 9000, pod1.ip),
		})
	e.waitSyncSince(t, time.Time{})

	t.Run("the node shows exactly the rules the builder renders", func(t *testing.T) {
		if mode == ModeNFTables {
			checkNFTablesRules(t, e)
		} else {
			checkIPTablesRules(t, e)
		}
		if got := readRootSysctl(t, "net/ipv4/ip_forward"); got != rootForwarding {
			t.Errorf("the machine's own ip_forward changed from %s to %s", rootForwarding, got)
		}
		if got, err := l.inNS(l.node, "cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv4/conf/all/route_localnet"); err != nil || strings.Fields(got)[0] != "1" || strings.Fields(got)[1] != "1" {
			t.Errorf("node sysctls ip_forward, route_localnet = %q (%v), want 1 1", got, err)
		}
	})

	t.Run("cluster IP from the node", func(t *testing.T) {
		body, err := httpGet(l.node, "http://10.102.120.255:8080/")
		if err != nil || !strings.HasPrefix(body, "pod") {
			t.Fatalf("curl 10.102.120.255:8080 = %q, %v", body, err)
		}
	})

	t.Run("cluster IP from a pod, with busybox wget", func(t *testing.T) {
		out, err := l.inNS(pod2.ns, "/bin/busybox", "wget", "-q", "-O-", "http://10.102.120.255:8080/")
		if err != nil || !strings.HasPrefix(out, "pod") {
			t.Fatalf("wget from %s = %q, %v", pod2.name, out, err)
		}
		// A pod that lands on itself goes through the hairpin masquerade.
		for range 10 {
			if body, err := httpGet(pod1.ns, "http://10.102.120.255:8080/"); err != nil || !strings.HasPrefix(body, "pod") {
				t.Fatalf("GET from %s = %q, %v", pod1.name, body, err)
			}
		}
	})

	t.Run("60 requests reach all three pods", func(t *testing.T) {
		hits := map[string]int{}
		for range 60 {
			body, err := httpGet(l.node, "http://10.102.120.255:8080/")
			if err != nil {
				t.Fatal(err)
			}
			hits[body]++
		}
		t.Logf("spread over pods: %v", hits)
		for _, pod := range l.pods {
			if hits[pod.name] == 0 {
				t.Errorf("%s got none of 60 requests: %v", pod.name, hits)
			}
		}
	})

	t.Run("node ports from outside the cluster", func(t *testing.T) {
		for _, url := range []string{"http://" + labNodeIP + ":31000/", "http://" + labNodeIP + ":30617/"} {
			if body, err := httpGet(l.client, url); err != nil || !strings.HasPrefix(body, "pod") {
				t.Errorf("client GET %s = %q, %v", url, body, err)
			}
		}
	})

	t.Run("a Service without endpoints is refused at once", func(t *testing.T) {
		for _, target := range []struct{ ns, addr string }{
			{l.node, "10.96.200.1:80"},       // cluster IP, from the node
			{pod1.ns, "10.96.200.1:80"},      // cluster IP, from a pod (forwarded)
			{l.client, labNodeIP + ":31001"}, // node port, from outside
		} {
			conn, err := dial(context.Background(), target.ns, "tcp", target.addr)
			if err == nil {
				conn.Close()
				t.Errorf("%s from %s: connected", target.addr, target.ns)
			} else if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("%s from %s: %v, want connection refused (not a timeout)", target.addr, target.ns, err)
			}
		}
	})

	t.Run("load-balancer IP from outside the cluster", func(t *testing.T) {
		if addrs := l.run("ip", "-n", l.node, "-4", "addr", "show", "dev", labNodeIface); !strings.Contains(addrs, "192.168.56.200/32") {
			t.Fatalf("192.168.56.200 not on the node's %s:\n%s", labNodeIface, addrs)
		}
		body, err := httpGet(l.client, "http://192.168.56.200:8080/")
		if err != nil || !strings.HasPrefix(body, "pod") {
			t.Fatalf("client GET 192.168.56.200:8080 = %q, %v", body, err)
		}
	})

	t.Run("kube-dns reaches the node's own DNS server", func(t *testing.T) {
		l.serveUDP(l.node, labBridgeIP+":5353", "dns over udp")
		l.serveTCP(l.node, labBridgeIP+":5353", "dns over tcp")
		for _, network := range []string{"udp", "tcp"} {
			conn, err := dial(context.Background(), pod1.ns, network, "10.96.0.10:53")
			if err != nil {
				t.Fatalf("%s 10.96.0.10:53 from a pod: %v", network, err)
			}
			_ = conn.SetDeadline(time.Now().Add(labDialTimeout))
			if network == "udp" {
				_, _ = conn.Write([]byte("query"))
			}
			buf := make([]byte, 64)
			n, err := conn.Read(buf)
			conn.Close()
			if want := "dns over " + network; err != nil || string(buf[:n]) != want {
				t.Errorf("%s 10.96.0.10:53 answered %q, %v; want %q", network, buf[:n], err, want)
			}
		}
	})

	t.Run("a UDP flow follows its Service to a new endpoint", func(t *testing.T) {
		l.serveUDP(pod1.ns, pod1.ip+":9000", pod1.name)
		l.serveUDP(pod2.ns, pod2.ip+":9000", pod2.name)
		conn, err := dial(context.Background(), l.node, "udp", "10.96.50.1:9000")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ask := func() string {
			_ = conn.SetDeadline(time.Now().Add(labDialTimeout))
			if _, err := conn.Write([]byte("who")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			return string(buf[:n])
		}
		if got := ask(); got != pod1.name {
			t.Fatalf("answered by %q, want %s", got, pod1.name)
		}
		// Same socket, same 5-tuple: conntrack would keep sending it to
		// pod1, which still answers, unless the proxier deletes the entry.
		changed := time.Now()
		e.endpoints.Set(endpointsOf("default", "udp-echo", api.ProtocolUDP, 9000, pod2.ip))
		e.waitSyncSince(t, changed)
		if got := ask(); got != pod2.name {
			t.Errorf("after moving the endpoint, answered by %q, want %s", got, pod2.name)
		}
	})

	t.Run("removing an endpoint removes its rule and no request fails", func(t *testing.T) {
		l.stopHTTPD(pod3) // the pod is deleted...
		start := time.Now()
		remaining := podIPs(pod1, pod2) // ...and the Endpoints controller drops it
		for _, name := range []string{"httpd-svc", "httpd-random", "httpd-lb"} {
			e.endpoints.Set(endpointsOf("default", name, api.ProtocolTCP, 80, remaining...))
		}
		sep := EndpointChainName(ServicePortName{"default", "httpd-svc", ""}, "tcp", pod3.ip+":80")
		used := sep
		if mode == ModeNFTables {
			// The chain goes a second later (tidy); the rule that leads
			// to it goes at once.
			sep = nftEndpointChainPrefix + nftEndpointName(ServicePortName{"default", "httpd-svc", ""}, "tcp", netip.MustParseAddrPort(pod3.ip+":80"))
			used = "goto " + sep
		}
		for strings.Contains(e.rulesText(t), used) {
			if time.Since(start) > time.Second {
				t.Fatalf("%s (%s) still used after 1s", sep, pod3.ip)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("endpoint rule gone after %v", time.Since(start).Round(time.Millisecond))
		for strings.Contains(e.rulesText(t), sep) {
			if time.Since(start) > 5*time.Second {
				t.Fatalf("chain %s (%s) still present after 5s", sep, pod3.ip)
			}
			time.Sleep(50 * time.Millisecond)
		}
		for i := range 30 {
			body, err := httpGet(l.node, "http://10.102.120.255:8080/")
			if err != nil {
				t.Fatalf("request %d failed after the endpoint was removed: %v", i, err)
			}
			if body == pod3.name {
				t.Fatalf("request %d reached the removed pod", i)
			}
		}
	})

	t.Run("rules come back after an external flush", func(t *testing.T) {
		flushed := time.Now()
		commands := [][]string{{"iptables", "-t", "nat", "-F"}, {"iptables", "-t", "nat", "-X"}}
		if mode == ModeNFTables {
			commands = [][]string{{"nft", "delete", "table", nftFamily, nftTable}}
		}
		for _, command := range commands {
			if out, err := l.inNS(l.node, command...); err != nil {
				t.Fatalf("%v: %v: %s", command, err, out)
			}
		}
		e.waitSyncSince(t, flushed) // the canary check notices within CanaryInterval
		if body, err := httpGet(l.node, "http://10.102.120.255:8080/"); err != nil || !strings.HasPrefix(body, "pod") {
			t.Fatalf("after the resync: %q, %v", body, err)
		}
	})

	t.Run("the load-balancer IP goes with its Service", func(t *testing.T) {
		deleted := time.Now()
		e.services.Delete("default/httpd-lb")
		e.waitSyncSince(t, deleted)
		if addrs := l.run("ip", "-n", l.node, "-4", "addr", "show", "dev", labNodeIface); strings.Contains(addrs, "192.168.56.200") {
			t.Errorf("192.168.56.200 still on the node:\n%s", addrs)
		}
		if !strings.Contains(l.run("ip", "-n", l.node, "-4", "addr", "show", "dev", labNodeIface), labNodeIP+"/24") {
			t.Error("the node's own address was removed")
		}
	})

	t.Run("the learning view shows one Service's chains", func(t *testing.T) {
		var view string
		var want []string
		if mode == ModeNFTables {
			view = NFTServiceRules([]byte(e.listNFT(t)), "default", "httpd-svc")
			base := nftPortName(ServicePortName{"default", "httpd-svc", ""}, "tcp")
			want = []string{`10.102.120.255 . tcp . 8080 comment "default/httpd-svc:"`, "chain " + nftServiceChainPrefix + base + " {",
				"dnat to " + pod1.ip + ":80", `tcp . 31000 comment "default/httpd-svc:" : goto ` + nftExternalChainPrefix + base}
		} else {
			saved := e.save(t, iptables.TableNAT) + e.save(t, iptables.TableFilter)
			view = ServiceRules([]byte(saved), "default", "httpd-svc")
			want = []string{`"default/httpd-svc: cluster IP"`, "-A " + ServiceChainName(ServicePortName{"default", "httpd-svc", ""}, "tcp"),
				"--to-destination " + pod1.ip + ":80", "--dport 31000"}
		}
		for _, w := range want {
			if !strings.Contains(view, w) {
				t.Errorf("view lacks %q:\n%s", w, view)
			}
		}
		if strings.Contains(view, "httpd-random") || strings.Contains(view, "empty-svc") {
			t.Errorf("view shows other Services:\n%s", view)
		}
	})
}

// checkIPTablesRules compares iptables-save, chain by chain, with what
// BuildRules renders, and checks the jumps from the built-in chains.
func checkIPTablesRules(t *testing.T, e *e2eProxier) {
	want := e.expected()
	for _, table := range []iptables.Table{iptables.TableFilter, iptables.TableNAT} {
		saved := parseSave([]byte(e.save(t, table)))
		if len(saved) != 1 {
			t.Fatalf("iptables-save -t %s: %d tables", table, len(saved))
		}
		for _, chain := range want.Chains(table) {
			if got := saved[0].rules[chain]; !slices.Equal(got, want.Rules(table, chain)) {
				t.Errorf("%s %s:\n got %s\nwant %s", table, chain, strings.Join(got, "\n     "), strings.Join(want.Rules(table, chain), "\n     "))
			}
		}
	}
	nat := e.save(t, iptables.TableNAT)
	for _, jump := range []string{
		`-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
		`-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
		`-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING`,
		`:KUBE-PROXY-CANARY - [0:0]`,
	} {
		if !strings.Contains(nat, jump) {
			t.Errorf("nat table lacks %q", jump)
		}
	}
}

// checkNFTablesRules compares `nft list table ip kubelite` with what
// BuildNFTRules renders (blocks and elements sorted: the kernel lists map
// elements in hash order), and checks that the iptables mode left nothing.
func checkNFTablesRules(t *testing.T, e *e2eProxier) {
	listed := e.listNFT(t)
	if got, want := canonicalNFT([]byte(listed)), canonicalNFT(BuildNFTRules(e.input()).Bytes()); got != want {
		t.Errorf("nft list table ip kubelite differs from BuildNFTRules:\n%s", lineDiff(want, got))
	}
	for _, hook := range []string{
		"type nat hook prerouting priority dstnat; policy accept;",
		"type nat hook output priority -100; policy accept;",
		"type nat hook postrouting priority srcnat; policy accept;",
		"type filter hook forward priority -110; policy accept;",
	} {
		if !strings.Contains(listed, hook) {
			t.Errorf("table lacks the base chain %q", hook)
		}
	}
	if e.host.IPTables == nil {
		return
	}
	if nat := e.save(t, iptables.TableNAT); strings.Contains(nat, "KUBE-") {
		t.Errorf("nftables mode, yet iptables has kube chains:\n%s", nat)
	}
}

func nodePortService(namespace, name, clusterIP string, port, target, nodePort int32) *api.Service {
	svc := clusterIPService(namespace, name, clusterIP, api.ServicePort{Protocol: api.ProtocolTCP, Port: port, TargetPort: api.FromInt(target), NodePort: nodePort})
	svc.Spec.Type = api.ServiceTypeNodePort
	api.Default(svc)
	return svc
}

func readRootSysctl(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
