package controllertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/apiserver/apiservertest"
)

func TestSimulatedNodesRegisterReadyNodes(t *testing.T) {
	server := apiservertest.Start(t, apiservertest.Options{})
	nodes := StartNodes(t, server.Admin, 3)

	if got, want := fmt.Sprint(nodes.Names()), "[node1 node2 node3]"; got != want {
		t.Fatalf("Names() = %s, want %s", got, want)
	}
	list, err := client.For[api.Node](server.Admin, "").List(t.Context(), client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 3 {
		t.Fatalf("registered %d nodes, want 3", len(list.Items))
	}
	for i, node := range list.Items {
		wantCIDR := fmt.Sprintf("10.244.%d.0/24", i+1)
		if node.Spec.PodCIDR != wantCIDR || !node.IsReady() || node.InternalIP() == "" {
			t.Errorf("node %s: podCIDR %q ready %v internalIP %q; want %s, ready, an InternalIP",
				node.Name, node.Spec.PodCIDR, node.IsReady(), node.InternalIP(), wantCIDR)
		}
	}
	// The heartbeat renews a Lease per node, as a node agent does.
	Eventually(t, "node leases", func() (bool, string) {
		leases, err := client.For[api.Lease](server.Admin, api.NamespaceNodeLease).List(t.Context(), client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(leases.Items) == 3, fmt.Sprintf("%d leases", len(leases.Items))
	})
}

func TestSimulatedNodesRunBoundPods(t *testing.T) {
	server := apiservertest.Start(t, apiservertest.Options{})
	nodes := StartNodes(t, server.Admin, 2)
	ctx := t.Context()
	pods := client.For[api.Pod](server.Admin, "default")

	first := createBoundPod(t, server.Admin, "first", "node2")
	running := waitForPod(t, pods, "first", isRunningReady)
	cidr := netip.MustParsePrefix(nodes.PodCIDR("node2"))
	if ip, err := netip.ParseAddr(running.Status.PodIP); err != nil || !cidr.Contains(ip) {
		t.Fatalf("pod IP %q is not in node2's pod CIDR %s", running.Status.PodIP, cidr)
	}
	if running.Status.HostIP != "192.168.100.2" {
		t.Errorf("hostIP = %q, want node2's InternalIP 192.168.100.2", running.Status.HostIP)
	}

	// A graceful delete is completed by the node.
	if err := pods.Delete(ctx, first.Name, client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	Eventually(t, "the deleted pod to be gone", func() (bool, string) {
		_, err := pods.Get(ctx, first.Name)
		return api.IsNotFound(err), fmt.Sprintf("get: %v", err)
	})

	// A replacement gets another IP.
	createBoundPod(t, server.Admin, "second", "node2")
	second := waitForPod(t, pods, "second", isRunningReady)
	if second.Status.PodIP == running.Status.PodIP {
		t.Errorf("the second pod reuses the first pod's IP %s", second.Status.PodIP)
	}

	// The test can fail a pod or make it unready; the node leaves that alone.
	if err := nodes.SetPodReady(ctx, "default", "second", false); err != nil {
		t.Fatal(err)
	}
	waitForPod(t, pods, "second", func(p *api.Pod) bool { return p.Status.Phase == api.PodRunning && !p.IsReady() })
	if err := nodes.FailPod(ctx, "default", "second"); err != nil {
		t.Fatal(err)
	}
	waitForPod(t, pods, "second", func(p *api.Pod) bool { return p.Status.Phase == api.PodFailed })
}

func TestSimulatedNodeMadeNotReadyStopsWorking(t *testing.T) {
	server := apiservertest.Start(t, apiservertest.Options{})
	nodes := StartNodes(t, server.Admin, 1, WithHeartbeatInterval(100*time.Millisecond))
	ctx := t.Context()
	if err := nodes.MakeNotReady(ctx, "node1"); err != nil {
		t.Fatal(err)
	}
	node, err := client.For[api.Node](server.Admin, "").Get(ctx, "node1")
	if err != nil {
		t.Fatal(err)
	}
	if node.IsReady() {
		t.Fatal("node1 is still Ready after MakeNotReady")
	}

	// A dead node does not start Pods.
	createBoundPod(t, server.Admin, "stuck", "node1")
	if err := nodes.MakeReady(ctx, "node1"); err != nil {
		t.Fatal(err)
	}
	waitForPod(t, client.For[api.Pod](server.Admin, "default"), "stuck", isRunningReady)
}

func TestRecorder(t *testing.T) {
	r := NewRecorder()
	pod := &api.Pod{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "p"}}
	r.Event(pod, api.EventNormal, "Scheduled", "Successfully assigned default/p to node1")
	r.Event(pod, api.EventWarning, "FailedScheduling", "0/1 nodes are available")
	if got := r.Find("Scheduled", "to node1"); len(got) != 1 || got[0].Kind != "Pod" || got[0].Name != "p" {
		t.Errorf("Find(Scheduled) = %v", got)
	}
	if got := len(r.Events()); got != 2 {
		t.Errorf("%d events recorded, want 2", got)
	}
}

// createBoundPod creates a Pod and binds it to node, as a scheduler would.
func createBoundPod(t *testing.T, c *client.Client, name, node string) *api.Pod {
	t.Helper()
	ctx := t.Context()
	pods := client.For[api.Pod](c, "default")
	pod, err := pods.Create(ctx, &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       api.PodSpec{Containers: []api.Container{{Name: "httpd", Image: "httpd"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	binding, _ := json.Marshal(api.Binding{
		TypeMeta:   api.TypeMeta{APIVersion: "v1", Kind: "Binding"},
		ObjectMeta: api.ObjectMeta{Name: name},
		Target:     api.ObjectReference{Kind: "Node", Name: node},
	})
	if _, err := c.Resource(pods.Resource(), "default").Subresource(ctx, http.MethodPost, name, "binding", nil, binding); err != nil {
		t.Fatal(err)
	}
	return pod
}

func isRunningReady(p *api.Pod) bool { return p.Status.Phase == api.PodRunning && p.IsReady() }

// waitForPod waits until the named Pod satisfies cond and returns it.
func waitForPod(t *testing.T, pods *client.Typed[api.Pod, *api.Pod], name string, cond func(*api.Pod) bool) *api.Pod {
	t.Helper()
	var pod *api.Pod
	Eventually(t, "pod "+name, func() (bool, string) {
		var err error
		pod, err = pods.Get(context.Background(), name)
		if err != nil {
			return false, err.Error()
		}
		return cond(pod), fmt.Sprintf("phase %s ready %v", pod.Status.Phase, pod.IsReady())
	})
	return pod
}
