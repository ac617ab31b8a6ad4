package builtin

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

func TestNthIP(t *testing.T) {
	tests := []struct {
		cidr string
		n    int
		want string
	}{
		{"10.96.0.0/12", 1, "10.96.0.1"},
		{"10.96.0.0/12", 10, "10.96.0.10"},
		{"10.96.5.7/12", 1, "10.96.0.1"}, // host bits are ignored
		{"172.20.0.0/16", 256, "172.20.1.0"},
		{"10.0.0.0/28", 14, "10.0.0.14"},
	}
	for _, tt := range tests {
		got, err := NthIP(netip.MustParsePrefix(tt.cidr), tt.n)
		if err != nil || got.String() != tt.want {
			t.Errorf("NthIP(%s, %d) = %v, %v; want %s", tt.cidr, tt.n, got, err, tt.want)
		}
	}
	for _, bad := range []struct {
		cidr string
		n    int
	}{{"10.0.0.0/29", 10}, {"10.0.0.0/28", 15}, {"fd00::/108", 1}} {
		if got, err := NthIP(netip.MustParsePrefix(bad.cidr), bad.n); err == nil {
			t.Errorf("NthIP(%s, %d) = %v, want an error", bad.cidr, bad.n, got)
		}
	}
}

func TestDesiredObjects(t *testing.T) {
	services, endpoints, err := desiredObjects(Config{APIServerAddresses: []string{"192.0.2.2", "192.0.2.10", "192.0.2.2"}, APIServerPort: 6443})
	if err != nil {
		t.Fatal(err)
	}
	kubernetes, dns := services[KubernetesKey], services[KubeDNSKey]
	if kubernetes.Spec.ClusterIP != "10.96.0.1" || len(kubernetes.Spec.Ports) != 1 ||
		kubernetes.Spec.Ports[0] != (api.ServicePort{Name: "https", Protocol: "TCP", Port: 443, TargetPort: api.FromInt(6443)}) ||
		kubernetes.Spec.Selector != nil || kubernetes.Labels["component"] != "apiserver" || kubernetes.Labels["provider"] != "kubernetes" {
		t.Errorf("kubernetes service: %+v", kubernetes)
	}
	if dns.Spec.ClusterIP != "10.96.0.10" || dns.Spec.Selector["k8s-app"] != "kube-dns" ||
		dns.Labels["kubernetes.io/name"] != "KubeDNS" || fmt.Sprint(portSummary(dns.Spec.Ports)) != "[dns 53/UDP dns-tcp 53/TCP metrics 9153/TCP]" {
		t.Errorf("kube-dns service: %+v", dns)
	}
	if got := fmt.Sprint(endpoints.Subsets); endpoints.Subsets[0].Addresses[0].IP != "192.0.2.2" ||
		endpoints.Subsets[0].Addresses[1].IP != "192.0.2.10" || len(endpoints.Subsets[0].Addresses) != 2 ||
		endpoints.Subsets[0].Ports[0].Port != 6443 {
		t.Errorf("kubernetes endpoints: %s", got)
	}
	if _, _, err := desiredObjects(Config{ServiceCIDR: "bogus"}); err == nil {
		t.Error("a bad service CIDR was accepted")
	}
	if _, _, err := desiredObjects(Config{APIServerAddresses: []string{"not-an-ip"}}); err == nil {
		t.Error("a bad API server address was accepted")
	}
}

func portSummary(ports []api.ServicePort) []string {
	var out []string
	for _, p := range ports {
		out = append(out, fmt.Sprintf("%s %d/%s", p.Name, p.Port, p.Protocol))
	}
	return out
}

func TestRepairService(t *testing.T) {
	services, _, err := desiredObjects(Config{})
	if err != nil {
		t.Fatal(err)
	}
	desired := services[KubeDNSKey]
	current := api.DeepCopy(desired)
	current.UID = "uid-1"
	current.Labels["team"] = "dns" // someone's extra label stays
	current.Spec.SessionAffinity = api.SessionAffinityNone
	if _, changed := repairService(current, desired); changed {
		t.Error("an intact service needs repair")
	}

	broken := api.DeepCopy(current)
	broken.Spec.Type = api.ServiceTypeNodePort
	broken.Spec.Ports[0].NodePort = 31053
	broken.Spec.Selector = map[string]string{"app": "other"}
	delete(broken.Labels, "k8s-app")
	fixed, changed := repairService(broken, desired)
	if !changed {
		t.Fatal("a broken service needs no repair")
	}
	if _, again := repairService(fixed, desired); again {
		t.Errorf("the repaired service still needs repair: %+v", fixed)
	}
	if fixed.Labels["team"] != "dns" || fixed.UID != "uid-1" || fixed.Spec.SessionAffinity != api.SessionAffinityNone {
		t.Errorf("repair touched fields it does not own: %+v", fixed)
	}
	if broken.Spec.Type != api.ServiceTypeNodePort {
		t.Error("the input was modified")
	}
}

func startController(t *testing.T, c *client.Client, cfg Config) {
	t.Helper()
	inf := controller.NewInformers(c, 0)
	ctrl := New(c, inf, controllertest.NewRecorder(), cfg)
	controllertest.Go(t, inf.Run)
	controllertest.Go(t, func(ctx context.Context) { ctrl.Run(ctx, 2) })
}

func waitForService(t *testing.T, c *client.Client, ns, name string, check func(*api.Service) bool) *api.Service {
	t.Helper()
	var svc *api.Service
	controllertest.Eventually(t, "service "+ns+"/"+name, func() (bool, string) {
		var err error
		svc, err = client.For[api.Service](c, ns).Get(context.Background(), name)
		if err != nil {
			return false, err.Error()
		}
		return check(svc), fmt.Sprintf("%+v", svc.Spec)
	})
	return svc
}

func TestBuiltInServicesAreKept(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	c := srv.Admin
	startController(t, c, Config{APIServerAddresses: []string{"192.0.2.1"}, APIServerPort: 6443})
	ctx := context.Background()

	kubernetes := waitForService(t, c, "default", "kubernetes", func(s *api.Service) bool { return s.Spec.ClusterIP == "10.96.0.1" })
	dns := waitForService(t, c, "kube-system", "kube-dns", func(s *api.Service) bool { return s.Spec.ClusterIP == "10.96.0.10" })
	if len(dns.Spec.Ports) != 3 || len(kubernetes.Spec.Ports) != 1 || kubernetes.Spec.Ports[0].TargetPort != api.FromInt(6443) {
		t.Errorf("ports: kubernetes %+v kube-dns %+v", kubernetes.Spec.Ports, dns.Spec.Ports)
	}
	endpoints := client.For[api.Endpoints](c, "default")
	controllertest.Eventually(t, "the kubernetes endpoints", func() (bool, string) {
		ep, err := endpoints.Get(ctx, "kubernetes")
		if err != nil {
			return false, err.Error()
		}
		return len(ep.Subsets) == 1 && len(ep.Subsets[0].Addresses) == 1 && ep.Subsets[0].Addresses[0].IP == "192.0.2.1" &&
			ep.Subsets[0].Ports[0].Port == 6443, fmt.Sprint(ep.Subsets)
	})

	// Deleted: created again, at the same address.
	if err := client.For[api.Service](c, "kube-system").Delete(ctx, "kube-dns", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForService(t, c, "kube-system", "kube-dns", func(s *api.Service) bool {
		return s.UID != dns.UID && s.Spec.ClusterIP == "10.96.0.10"
	})

	// Changed: put back.
	services := client.For[api.Service](c, "default")
	controllertest.Eventually(t, "tampering with the kubernetes service", func() (bool, string) {
		svc, err := services.Get(ctx, "kubernetes")
		if err != nil {
			return false, err.Error()
		}
		svc.Spec.Ports[0].Port = 8443
		_, err = services.Update(ctx, svc)
		return err == nil, fmt.Sprint(err)
	})
	waitForService(t, c, "default", "kubernetes", func(s *api.Service) bool { return s.Spec.Ports[0].Port == 443 })

	// The endpoints too.
	if err := endpoints.Delete(ctx, "kubernetes", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, "the kubernetes endpoints to come back", func() (bool, string) {
		ep, err := endpoints.Get(ctx, "kubernetes")
		return err == nil && len(ep.Subsets) == 1, fmt.Sprint(err)
	})
}
