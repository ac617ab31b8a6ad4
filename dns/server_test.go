package dns

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"testing"
	"time"

	miekg "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/api/client/cache"
	"kubelite/apiserver/apiservertest"
)

// watchDeadline bounds how long a test waits for a change to travel from
// the API server through a watch into the DNS answers. It is generous on
// purpose: it only stops a broken test, it measures nothing.
const watchDeadline = 30 * time.Second

// startServer runs a Server over store on a free loopback port until the
// test ends, and returns its address.
func startServer(t *testing.T, cfg Config, store Store) (*Server, string) {
	t.Helper()
	cfg.ListenAddrs = []string{"127.0.0.1:0"}
	srv, err := NewServer(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("Run ended before it served: %v", err)
	}
	return srv, srv.Addrs()[0].String()
}

// exchange asks addr one question over network ("udp" or "tcp").
func exchange(t *testing.T, network, addr, name string, qtype uint16) *miekg.Msg {
	t.Helper()
	c := &miekg.Client{Net: network, Timeout: 5 * time.Second}
	reply, _, err := c.Exchange(new(miekg.Msg).SetQuestion(name, qtype), addr)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, miekg.TypeToString[qtype], network, err)
	}
	return reply
}

// eventually polls check until it reports success or the deadline passes;
// check describes what it saw, for the failure message.
func eventually(t *testing.T, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(watchDeadline)
	for {
		ok, saw := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after %v; last saw %s", what, watchDeadline, saw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answersOf renders the answer section's data: IPs, targets, texts.
func answersOf(m *miekg.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *miekg.A:
			out = append(out, rr.A.String())
		case *miekg.AAAA:
			out = append(out, rr.AAAA.String())
		case *miekg.PTR:
			out = append(out, rr.Ptr)
		case *miekg.SRV:
			out = append(out, fmt.Sprintf("%d %s", rr.Port, rr.Target))
		case *miekg.CNAME:
			out = append(out, rr.Target)
		default:
			out = append(out, rr.String())
		}
	}
	sort.Strings(out)
	return out
}

// resolvesTo waits until name/qtype answers with rcode and exactly want,
// over both UDP and TCP.
func resolvesTo(t *testing.T, addr, name string, qtype uint16, rcode int, want ...string) {
	t.Helper()
	sort.Strings(want)
	for _, network := range []string{"udp", "tcp"} {
		eventually(t, fmt.Sprintf("%s %s over %s answers %s %v", name, miekg.TypeToString[qtype], network, miekg.RcodeToString[rcode], want), func() (bool, string) {
			reply := exchange(t, network, addr, name, qtype)
			got := answersOf(reply)
			return reply.Rcode == rcode && slices.Equal(got, want), fmt.Sprintf("%s %v", miekg.RcodeToString[reply.Rcode], got)
		})
	}
}

// The whole path: objects created through a real API server reach the
// answers over real UDP and TCP sockets through real list+watch caches.
func TestServerWithAPIServer(t *testing.T) {
	ctx := t.Context()
	apiServer := apiservertest.Start(t, apiservertest.Options{})
	services := cache.NewInformer(client.For[api.Service](apiServer.Admin, ""), client.ListOptions{}, 0, cache.WithLogger(testLogger(t)))
	endpointsCache := cache.NewInformer(client.For[api.Endpoints](apiServer.Admin, ""), client.ListOptions{}, 0, cache.WithLogger(testLogger(t)))
	store := NewInformerStore(services, endpointsCache)

	upstream := startFakeUpstream(t)
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, upstream.addr)
	cfg.Registerer = reg
	_, addr := startServer(t, cfg, store)

	// The caches are not running yet: no false NXDOMAIN, only SERVFAIL.
	if reply := exchange(t, "udp", addr, "httpd-svc.default.svc.cluster.local.", miekg.TypeA); reply.Rcode != miekg.RcodeServerFailure {
		t.Fatalf("before the caches synced: %s, want SERVFAIL", miekg.RcodeToString[reply.Rcode])
	}

	informerCtx, stopInformers := context.WithCancel(ctx)
	informersDone := make(chan struct{}, 2)
	t.Cleanup(func() {
		stopInformers()
		<-informersDone
		<-informersDone
	})
	for _, run := range []func(context.Context){services.Run, endpointsCache.Run} {
		go func() {
			defer func() { informersDone <- struct{}{} }()
			run(informerCtx)
		}()
	}

	serviceClient := func(ns string) *client.Typed[api.Service, *api.Service] {
		return client.For[api.Service](apiServer.Admin, ns)
	}
	create := func(svc *api.Service) {
		t.Helper()
		if _, err := serviceClient(svc.Namespace).Create(ctx, svc); err != nil {
			t.Fatalf("creating Service %s/%s: %v", svc.Namespace, svc.Name, err)
		}
	}
	// The tutorial's Services: httpd-svc in default, httpd2-svc in kube-public.
	create(newService("default", "httpd-svc", "10.96.0.20", api.ServicePort{Name: "http", Port: 8080, Protocol: "TCP", TargetPort: api.FromInt(80)}))
	create(newService("kube-public", "httpd2-svc", "10.96.0.30", api.ServicePort{Port: 8080, Protocol: "TCP", TargetPort: api.FromInt(80)}))
	create(newService("default", "web", api.ClusterIPNone, api.ServicePort{Name: "http", Port: 80, Protocol: "TCP"}))
	ext := newService("default", "mail", "", api.ServicePort{})
	ext.Spec = api.ServiceSpec{Type: api.ServiceTypeExternalName, ExternalName: "mail.example.com"}
	create(ext)
	endpointsClient := client.For[api.Endpoints](apiServer.Admin, "default")
	webEndpoints := &api.Endpoints{Subsets: []api.EndpointSubset{{
		Addresses: []api.EndpointAddress{{IP: "10.244.1.2"}, {IP: "10.244.2.2"}, {IP: "10.244.3.2", Hostname: "web-2"}},
		Ports:     []api.EndpointPort{{Name: "http", Port: 80, Protocol: "TCP"}},
	}}}
	webEndpoints.Namespace, webEndpoints.Name = "default", "web"
	created, err := endpointsClient.Create(ctx, webEndpoints)
	if err != nil {
		t.Fatalf("creating Endpoints: %v", err)
	}

	resolvesTo(t, addr, "httpd-svc.default.svc.cluster.local.", miekg.TypeA, miekg.RcodeSuccess, "10.96.0.20")
	resolvesTo(t, addr, "httpd2-svc.kube-public.svc.cluster.local.", miekg.TypeA, miekg.RcodeSuccess, "10.96.0.30")
	resolvesTo(t, addr, "HTTPD-SVC.Default.SVC.cluster.local.", miekg.TypeA, miekg.RcodeSuccess, "10.96.0.20")
	resolvesTo(t, addr, "httpd-svc.default.svc.cluster.local.", miekg.TypeAAAA, miekg.RcodeSuccess)
	resolvesTo(t, addr, "_http._tcp.httpd-svc.default.svc.cluster.local.", miekg.TypeSRV, miekg.RcodeSuccess, "8080 httpd-svc.default.svc.cluster.local.")
	resolvesTo(t, addr, "20.0.96.10.in-addr.arpa.", miekg.TypePTR, miekg.RcodeSuccess, "httpd-svc.default.svc.cluster.local.")
	resolvesTo(t, addr, "web.default.svc.cluster.local.", miekg.TypeA, miekg.RcodeSuccess, "10.244.1.2", "10.244.2.2", "10.244.3.2")
	resolvesTo(t, addr, "web-2.web.default.svc.cluster.local.", miekg.TypeA, miekg.RcodeSuccess, "10.244.3.2")
	resolvesTo(t, addr, "_http._tcp.web.default.svc.cluster.local.", miekg.TypeSRV, miekg.RcodeSuccess,
		"80 10-244-1-2.web.default.svc.cluster.local.", "80 10-244-2-2.web.default.svc.cluster.local.", "80 web-2.web.default.svc.cluster.local.")
	resolvesTo(t, addr, "2.2.244.10.in-addr.arpa.", miekg.TypePTR, miekg.RcodeSuccess, "10-244-2-2.web.default.svc.cluster.local.")
	resolvesTo(t, addr, "mail.default.svc.cluster.local.", miekg.TypeA, miekg.RcodeSuccess, "192.0.2.25", "mail.example.com.")
	resolvesTo(t, addr, "dns-version.cluster.local.", miekg.TypeTXT, miekg.RcodeSuccess, "dns-version.cluster.local.\t5\tIN\tTXT\t\"1.0.1\"")
	resolvesTo(t, addr, "10-244-1-2.default.pod.cluster.local.", miekg.TypeA, miekg.RcodeSuccess, "10.244.1.2")
	resolvesTo(t, addr, "nosuch.default.svc.cluster.local.", miekg.TypeA, miekg.RcodeNameError)
	resolvesTo(t, addr, "httpd-svc.default.svc.cluster.local.default.svc.cluster.local.", miekg.TypeA, miekg.RcodeNameError)

	// Changes arrive through the watch: an endpoint goes...
	webEndpoints = api.DeepCopy(created)
	webEndpoints.Subsets[0].Addresses = webEndpoints.Subsets[0].Addresses[1:]
	if _, err := endpointsClient.Update(ctx, webEndpoints); err != nil {
		t.Fatalf("updating Endpoints: %v", err)
	}
	resolvesTo(t, addr, "web.default.svc.cluster.local.", miekg.TypeA, miekg.RcodeSuccess, "10.244.2.2", "10.244.3.2")
	resolvesTo(t, addr, "2.1.244.10.in-addr.arpa.", miekg.TypePTR, miekg.RcodeNameError) // forwarded; unknown upstream
	// ...and a Service is deleted.
	if err := serviceClient("kube-public").Delete(ctx, "httpd2-svc", client.DeleteOptions{}); err != nil {
		t.Fatalf("deleting Service: %v", err)
	}
	resolvesTo(t, addr, "httpd2-svc.kube-public.svc.cluster.local.", miekg.TypeA, miekg.RcodeNameError)
	resolvesTo(t, addr, "kube-public.svc.cluster.local.", miekg.TypeA, miekg.RcodeNameError)

	// Names outside the zone go to the upstream, and are cached.
	resolvesTo(t, addr, "www.example.com.", miekg.TypeA, miekg.RcodeSuccess, "192.0.2.80")
	asked := upstream.queries("www.example.com.")
	resolvesTo(t, addr, "www.example.com.", miekg.TypeA, miekg.RcodeSuccess, "192.0.2.80")
	if now := upstream.queries("www.example.com."); now != asked {
		t.Errorf("upstream asked %d more times for a cached name", now-asked)
	}
	if hits := counterValue(t, reg, "kubelite_dns_cache_hits_total", nil); hits == 0 {
		t.Error("no cache hits counted")
	}
}

// A resolver's view of a large answer: UDP gives a truncated answer with
// the TC bit, and the retry over TCP gets it whole.
func TestServerTruncationAndTCPRetry(t *testing.T) {
	upstream := startFakeUpstream(t)
	svc := service("big", "many", api.ClusterIPNone)
	var addrs []api.EndpointAddress
	for i := range 100 {
		addrs = append(addrs, api.EndpointAddress{IP: fmt.Sprintf("10.244.7.%d", i+1)})
	}
	store := &fakeStore{synced: true, services: []*api.Service{svc}, endpoints: []*api.Endpoints{endpoints("big", "many", api.EndpointSubset{Addresses: addrs})}}
	_, addr := startServer(t, testConfig(t, upstream.addr), store)

	for _, name := range []string{"many.big.svc.cluster.local.", "big.example.com."} {
		udp := exchange(t, "udp", addr, name, miekg.TypeA)
		if !udp.Truncated || len(udp.Answer) == 0 || len(udp.Answer) >= 100 {
			t.Errorf("%s over UDP: truncated=%v with %d records; want TC and as many records as fit in 512 bytes", name, udp.Truncated, len(udp.Answer))
		}
		tcp := exchange(t, "tcp", addr, name, miekg.TypeA)
		if tcp.Truncated || len(tcp.Answer) != 100 {
			t.Errorf("%s over TCP: truncated=%v with %d records, want all 100", name, tcp.Truncated, len(tcp.Answer))
		}
	}
}

// A listen address that cannot be bound makes Run fail at once, cleanly.
func TestServerRunFailsOnBusyPort(t *testing.T) {
	_, addr := startServer(t, testConfig(t), &fakeStore{synced: true})
	cfg := testConfig(t)
	cfg.ListenAddrs = []string{addr}
	srv, err := NewServer(cfg, &fakeStore{synced: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Run(t.Context()); err == nil {
		t.Fatal("Run on a busy port succeeded")
	}
}

// Every listen address serves both UDP and TCP, on the same port.
func TestServerListensOnEveryAddress(t *testing.T) {
	cfg := testConfig(t)
	cfg.ListenAddrs = []string{"127.0.0.1:0", "127.0.0.2:0"}
	srv, err := NewServer(cfg, &fakeStore{synced: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	<-srv.Ready()
	for _, a := range srv.Addrs() {
		if !slices.Contains([]netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")}, a.Addr()) {
			t.Errorf("bound %v, not a configured address", a)
		}
		for _, network := range []string{"udp", "tcp"} {
			if reply := exchange(t, network, a.String(), "dns-version.cluster.local.", miekg.TypeTXT); len(reply.Answer) != 1 {
				t.Errorf("%v over %s: %v", a, network, reply)
			}
		}
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v", err)
	}
}

// newService is a Service as a user would create it, with the explicit
// cluster IP these tests need (no IP allocator runs here).
func newService(namespace, name, clusterIP string, ports ...api.ServicePort) *api.Service {
	svc := &api.Service{Spec: api.ServiceSpec{ClusterIP: clusterIP, Ports: ports}}
	svc.Namespace, svc.Name = namespace, name
	return svc
}
