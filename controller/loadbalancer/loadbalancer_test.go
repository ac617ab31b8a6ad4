package loadbalancer

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/apiserver/apiservertest"
	"kubelite/controller"
	"kubelite/controller/controllertest"
)

func TestParsePool(t *testing.T) {
	tests := []struct {
		pool      string
		in, notIn []string
		first     string
	}{
		{pool: "192.168.56.240/28", in: []string{"192.168.56.240", "192.168.56.255"}, notIn: []string{"192.168.56.239", "192.168.57.0"}, first: "192.168.56.240"},
		{pool: "10.0.0.5-10.0.0.7", in: []string{"10.0.0.5", "10.0.0.7"}, notIn: []string{"10.0.0.4", "10.0.0.8"}, first: "10.0.0.5"},
		{pool: "10.0.0.9, 10.0.1.0/31", in: []string{"10.0.0.9", "10.0.1.1"}, notIn: []string{"10.0.0.10", "10.0.1.2"}, first: "10.0.0.9"},
	}
	for _, tt := range tests {
		p, err := ParsePool(tt.pool)
		if err != nil {
			t.Errorf("ParsePool(%q): %v", tt.pool, err)
			continue
		}
		for _, ip := range tt.in {
			if !p.Contains(netip.MustParseAddr(ip)) {
				t.Errorf("pool %q does not contain %s", tt.pool, ip)
			}
		}
		for _, ip := range tt.notIn {
			if p.Contains(netip.MustParseAddr(ip)) {
				t.Errorf("pool %q contains %s", tt.pool, ip)
			}
		}
		if first, ok := p.First(func(netip.Addr) bool { return true }); !ok || first.String() != tt.first {
			t.Errorf("pool %q: first = %v, want %s", tt.pool, first, tt.first)
		}
	}
	for _, bad := range []string{"", "nonsense", "10.0.0.9-10.0.0.1", "fd00::/120", "10.0.0.1-fd00::1", " , "} {
		if _, err := ParsePool(bad); err == nil {
			t.Errorf("ParsePool(%q) succeeded", bad)
		}
	}
}

func TestPoolFirstSkipsTakenAddressesAndEnds(t *testing.T) {
	p, err := ParsePool("10.0.0.254-10.0.1.1")
	if err != nil {
		t.Fatal(err)
	}
	taken := map[string]bool{"10.0.0.254": true, "10.0.0.255": true}
	ip, ok := p.First(func(ip netip.Addr) bool { return !taken[ip.String()] })
	if !ok || ip.String() != "10.0.1.0" {
		t.Errorf("First = %v %v, want 10.0.1.0", ip, ok)
	}
	if _, ok := p.First(func(netip.Addr) bool { return false }); ok {
		t.Error("a full pool gave an address")
	}
}

func startController(t *testing.T, c *client.Client, pool string, rec controller.EventRecorder) {
	t.Helper()
	inf := controller.NewInformers(c, 0)
	ctrl := New(c, inf, rec, Config{Pool: pool})
	controllertest.Go(t, inf.Run)
	controllertest.Go(t, func(ctx context.Context) { ctrl.Run(ctx, 2) })
}

func createLoadBalancer(t *testing.T, c *client.Client, name, requested string) {
	t.Helper()
	_, err := client.For[api.Service](c, "default").Create(context.Background(), &api.Service{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"},
		Spec: api.ServiceSpec{
			Type:           api.ServiceTypeLoadBalancer,
			Selector:       map[string]string{"app": name},
			Ports:          []api.ServicePort{{Port: 80}},
			LoadBalancerIP: requested,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// ingressOf returns the service's ingress IPs, as a string for messages.
func ingressOf(t *testing.T, c *client.Client, name string) string {
	t.Helper()
	svc, err := client.For[api.Service](c, "default").Get(context.Background(), name)
	if err != nil {
		return err.Error()
	}
	var ips []string
	for _, in := range svc.Status.LoadBalancer.Ingress {
		ips = append(ips, in.IP+"/"+in.IPMode)
	}
	return fmt.Sprint(ips)
}

func waitForIngress(t *testing.T, c *client.Client, name, want string) {
	t.Helper()
	controllertest.Eventually(t, fmt.Sprintf("service %s to have ingress %s", name, want), func() (bool, string) {
		got := ingressOf(t, c, name)
		return got == want, got
	})
}

func TestAddressesFromThePool(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	c := srv.Admin
	ctx := context.Background()
	rec := controllertest.NewRecorder()
	const pool = "192.168.56.240-192.168.56.241"
	startController(t, c, pool, rec)

	createLoadBalancer(t, c, "a", "")
	waitForIngress(t, c, "a", "[192.168.56.240/VIP]")
	createLoadBalancer(t, c, "b", "192.168.56.241")
	waitForIngress(t, c, "b", "[192.168.56.241/VIP]")

	// The pool is exhausted: c waits, with an event saying why.
	createLoadBalancer(t, c, "c", "")
	controllertest.Eventually(t, "an AllocationFailed event for c", func() (bool, string) {
		return len(rec.Find("AllocationFailed", "no available IPs")) > 0, fmt.Sprint(rec.Events())
	})
	if got := ingressOf(t, c, "c"); got != "[]" {
		t.Errorf("c got %s from an exhausted pool", got)
	}
	// Asking for an address outside the pool fails too.
	createLoadBalancer(t, c, "outside", "10.1.2.3")
	controllertest.Eventually(t, "an AllocationFailed event for outside", func() (bool, string) {
		return len(rec.Find("AllocationFailed", "not in the pool")) > 0, fmt.Sprint(rec.Events())
	})

	// a goes: c gets its address.
	if err := client.For[api.Service](c, "default").Delete(ctx, "a", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForIngress(t, c, "c", "[192.168.56.240/VIP]")

	// b stops being a LoadBalancer: its address is released and its status cleared.
	services := client.For[api.Service](c, "default")
	controllertest.Eventually(t, "b to become a ClusterIP service", func() (bool, string) {
		svc, err := services.Get(ctx, "b")
		if err != nil {
			return false, err.Error()
		}
		svc.Spec.Type = api.ServiceTypeClusterIP
		svc.Spec.LoadBalancerIP = ""
		svc.Spec.AllocateLoadBalancerNodePorts = nil
		svc.Spec.ExternalTrafficPolicy = ""
		for i := range svc.Spec.Ports {
			svc.Spec.Ports[i].NodePort = 0
		}
		_, err = services.Update(ctx, svc)
		return err == nil, fmt.Sprint(err)
	})
	waitForIngress(t, c, "b", "[]")
	createLoadBalancer(t, c, "d", "")
	waitForIngress(t, c, "d", "[192.168.56.241/VIP]")
	// Events are recorded asynchronously: the status can be seen first.
	controllertest.Eventually(t, "4 IPAllocated events", func() (bool, string) {
		return len(rec.Find("IPAllocated", "")) >= 4, fmt.Sprint(rec.Events())
	})
}

func TestAllocationsSurviveARestart(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	c := srv.Admin
	const pool = "192.168.56.240/30"

	first := controllertest.NewRecorder()
	ctx, stop := context.WithCancel(context.Background())
	inf := controller.NewInformers(c, 0)
	ctrl := New(c, inf, first, Config{Pool: pool})
	done := make(chan struct{}, 2)
	go func() { inf.Run(ctx); done <- struct{}{} }()
	go func() { ctrl.Run(ctx, 2); done <- struct{}{} }()
	createLoadBalancer(t, c, "a", "")
	createLoadBalancer(t, c, "b", "192.168.56.242")
	waitForIngress(t, c, "a", "[192.168.56.240/VIP]")
	waitForIngress(t, c, "b", "[192.168.56.242/VIP]")
	stop()
	<-done
	<-done

	// A new controller (a restart, or another leader) hands out only what is free.
	second := controllertest.NewRecorder()
	startController(t, c, pool, second)
	createLoadBalancer(t, c, "c", "")
	createLoadBalancer(t, c, "d", "")
	waitForIngress(t, c, "c", "[192.168.56.241/VIP]")
	waitForIngress(t, c, "d", "[192.168.56.243/VIP]")
	waitForIngress(t, c, "a", "[192.168.56.240/VIP]")
	waitForIngress(t, c, "b", "[192.168.56.242/VIP]")
	for _, e := range second.Find("IPAllocated", "") {
		if e.Name == "a" || e.Name == "b" {
			t.Errorf("after the restart, %s was given an address again: %v", e.Name, e)
		}
	}
}

func TestWithoutAPoolNothingIsWritten(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	c := srv.Admin
	inf := controller.NewInformers(c, 0)
	ctrl := New(c, inf, controllertest.NewRecorder(), Config{})
	// Run returns at once: there is nothing to do.
	ctrl.Run(context.Background(), 2)
	createLoadBalancer(t, c, "pending", "")
	if got := ingressOf(t, c, "pending"); got != "[]" {
		t.Errorf("ingress = %s, want none (<pending>)", got)
	}
}
