package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/apiserver/apiservertest"
	"kubelite/controller"
	"kubelite/controller/all"
	"kubelite/controller/controllertest"
	"kubelite/controller/loadbalancer"
)

// allControllers is every controller of kubelite, as `kubelite server`
// runs them.
// startManager runs RunManager until the test ends (or until stop is called).
func startManager(t *testing.T, cfg controller.ManagerConfig) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- controller.RunManager(ctx, cfg) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("RunManager: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("RunManager did not return after its context ended")
		}
	}
	t.Cleanup(stop)
	return stop
}

func TestManagerRunsEveryController(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	c := srv.Admin
	controllertest.StartNodes(t, c, 2)
	stop := startManager(t, controller.ManagerConfig{
		Client:            c,
		Etcd:              srv.Etcd,
		Identity:          "server-1",
		LeaderElectionTTL: 2 * time.Second,
		ServiceCIDR:       "10.96.0.0/12",
		ClusterCIDR:       "10.244.0.0/16",
		APIServerAddress:  "192.0.2.1",
		APIServerPort:     6443,
		LoadBalancerPool:  "192.168.56.240/28",
		Controllers:       all.Controllers(),
	})
	ctx := context.Background()

	// The built-in Services appear.
	controllertest.Eventually(t, "the built-in services", func() (bool, string) {
		k, errK := client.For[api.Service](c, "default").Get(ctx, "kubernetes")
		d, errD := client.For[api.Service](c, "kube-system").Get(ctx, "kube-dns")
		return errK == nil && errD == nil && k.Spec.ClusterIP == "10.96.0.1" && d.Spec.ClusterIP == "10.96.0.10",
			fmt.Sprint(errK, errD)
	})

	// The tutorial: a Deployment of 3 httpd Pods behind a Service.
	labels := map[string]string{"run": "httpd"}
	_, err := client.For[api.Deployment](c, "default").Create(ctx, &api.Deployment{
		ObjectMeta: api.ObjectMeta{Name: "httpd", Namespace: "default"},
		Spec: api.DeploymentSpec{
			Replicas: api.Ptr(int32(3)),
			Selector: &api.LabelSelector{MatchLabels: labels},
			Template: api.PodTemplateSpec{
				ObjectMeta: api.ObjectMeta{Labels: labels},
				Spec: api.PodSpec{Containers: []api.Container{{Name: "httpd", Image: "httpd",
					Ports: []api.ContainerPort{{ContainerPort: 80}}}}},
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.For[api.Service](c, "default").Create(ctx, &api.Service{
		ObjectMeta: api.ObjectMeta{Name: "httpd-svc", Namespace: "default"},
		Spec: api.ServiceSpec{Type: api.ServiceTypeLoadBalancer, Selector: labels,
			Ports: []api.ServicePort{{Port: 8080, TargetPort: api.FromInt(80)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, "3 ready endpoints on port 80", func() (bool, string) {
		ep, err := client.For[api.Endpoints](c, "default").Get(ctx, "httpd-svc")
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, s := range ep.Subsets {
			if len(s.Ports) == 1 && s.Ports[0].Port == 80 {
				ready += len(s.Addresses)
			}
		}
		return ready == 3, fmt.Sprint(ep.Subsets)
	})
	controllertest.Eventually(t, "a load balancer address", func() (bool, string) {
		svc, err := client.For[api.Service](c, "default").Get(ctx, "httpd-svc")
		if err != nil {
			return false, err.Error()
		}
		ingress := svc.Status.LoadBalancer.Ingress
		return len(ingress) == 1 && ingress[0].IP == "192.168.56.240", fmt.Sprint(ingress)
	})
	// Events reach the API, and the leader shows in its Lease.
	controllertest.Eventually(t, "events from the controllers", func() (bool, string) {
		list, err := client.For[api.Event](c, "default").List(ctx, client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		components := map[string]bool{}
		for _, e := range list.Items {
			components[e.Source.Component] = true
		}
		return components["default-scheduler"] && components["replicaset-controller"] && components[loadbalancer.ControllerName],
			fmt.Sprint(components)
	})
	if holder := leaseHolder(t, c); holder != "server-1" {
		t.Errorf("lease holder = %q, want server-1", holder)
	}

	// kubectl-lite delete deploy httpd: its ReplicaSet and Pods go too.
	if err := client.For[api.Deployment](c, "default").Delete(ctx, "httpd", client.DeleteOptions{PropagationPolicy: "Background"}); err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, "the replica sets and pods to go", func() (bool, string) {
		rs, err1 := client.For[api.ReplicaSet](c, "default").List(ctx, client.ListOptions{})
		pods, err2 := client.For[api.Pod](c, "default").List(ctx, client.ListOptions{})
		if err1 != nil || err2 != nil {
			return false, fmt.Sprint(err1, err2)
		}
		return len(rs.Items) == 0 && len(pods.Items) == 0, fmt.Sprintf("%d replica sets, %d pods", len(rs.Items), len(pods.Items))
	})
	stop()
}

func leaseHolder(t *testing.T, c *client.Client) string {
	t.Helper()
	lease, err := client.For[api.Lease](c, api.NamespaceSystem).Get(context.Background(), controller.LeaderElectionName)
	if err != nil || lease.Spec.HolderIdentity == nil {
		return fmt.Sprint(err)
	}
	return *lease.Spec.HolderIdentity
}

func TestManagerFailover(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	c := srv.Admin
	etcdFor := map[string]*clientv3.Client{}
	for _, identity := range []string{"server-a", "server-b"} {
		cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Etcd.Endpoints(), DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		etcdFor[identity] = cli
		startManager(t, controller.ManagerConfig{
			Client:            c,
			Etcd:              cli,
			Identity:          identity,
			LeaderElectionTTL: 2 * time.Second,
			APIServerAddress:  "192.0.2.1",
			Controllers:       all.Controllers(),
		})
	}
	var first string
	controllertest.Eventually(t, "a leader", func() (bool, string) {
		first = leaseHolder(t, c)
		return first == "server-a" || first == "server-b", first
	})
	other := map[string]string{"server-a": "server-b", "server-b": "server-a"}[first]

	// The leader dies: its etcd connection goes; the other takes over.
	etcdFor[first].Close()
	controllertest.Eventually(t, other+" to lead", func() (bool, string) {
		holder := leaseHolder(t, c)
		return holder == other, holder
	})
	// And the new leader's controllers work: a deleted built-in Service returns.
	ctx := context.Background()
	controllertest.Eventually(t, "the kubernetes service", func() (bool, string) {
		_, err := client.For[api.Service](c, "default").Get(ctx, "kubernetes")
		return err == nil, fmt.Sprint(err)
	})
	if err := client.For[api.Service](c, "default").Delete(ctx, "kubernetes", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, "the kubernetes service to be recreated by "+other, func() (bool, string) {
		_, err := client.For[api.Service](c, "default").Get(ctx, "kubernetes")
		return err == nil, fmt.Sprint(err)
	})
}

func TestManagerWithoutElection(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	stop := startManager(t, controller.ManagerConfig{Client: srv.Admin, Controllers: all.Controllers()})
	controllertest.Eventually(t, "the kube-dns service", func() (bool, string) {
		_, err := client.For[api.Service](srv.Admin, "kube-system").Get(context.Background(), "kube-dns")
		return err == nil, fmt.Sprint(err)
	})
	stop()
}

func TestManagerRejectsABadConfig(t *testing.T) {
	if err := controller.RunManager(context.Background(), controller.ManagerConfig{}); err == nil {
		t.Error("no client: no error")
	}
	srv := apiservertest.Start(t, apiservertest.Options{})
	if err := controller.RunManager(context.Background(), controller.ManagerConfig{Client: srv.Admin, Etcd: srv.Etcd}); err == nil {
		t.Error("election without identity: no error")
	}
}
