package nodelifecycle

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/apiserver/apiservertest"
	"kubelite/controller"
	"kubelite/controller/controllertest"
)

// fakeClock is a Clock the test moves forward by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// startController runs the informers and a controller until the test
// ends; it looks at every node every 20 ms of real time, and measures
// timeouts on clock.
func startController(t *testing.T, c *client.Client, etcd *clientv3.Client, clock Clock, rec controller.EventRecorder) *Controller {
	t.Helper()
	inf := controller.NewInformers(c, 0)
	ctrl := New(c, inf, rec, Config{
		Etcd:              etcd,
		Clock:             clock,
		NodeMonitorPeriod: 20 * time.Millisecond,
	})
	controllertest.Go(t, inf.Run)
	controllertest.Go(t, func(ctx context.Context) { ctrl.Run(ctx, 4) })
	return ctrl
}

// lastHeartbeat is when the controller last saw the node alive, on its clock.
func (c *Controller) lastHeartbeat(name string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.health[name]; ok {
		return h.lastHeartbeat
	}
	return time.Time{}
}

// agent plays a node agent: it registers its node Ready and renews its Lease.
type agent struct {
	t      *testing.T
	client *client.Client
	name   string
}

func registerNode(t *testing.T, c *client.Client, name, podCIDR string) *agent {
	t.Helper()
	ctx := context.Background()
	nodes := client.For[api.Node](c, "")
	spec := api.NodeSpec{PodCIDR: podCIDR}
	if podCIDR != "" {
		spec.PodCIDRs = []string{podCIDR}
	}
	node, err := nodes.Create(ctx, &api.Node{ObjectMeta: api.ObjectMeta{Name: name}, Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	now := api.Now()
	node.Status.Conditions = []api.NodeCondition{{Type: api.NodeReady, Status: api.ConditionTrue,
		Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now}}
	if _, err := nodes.UpdateStatus(ctx, node); err != nil {
		t.Fatal(err)
	}
	a := &agent{t: t, client: c, name: name}
	a.renew()
	return a
}

// renew renews the node's Lease with a new renew time.
func (a *agent) renew() {
	a.t.Helper()
	ctx := context.Background()
	leases := client.For[api.Lease](a.client, api.NamespaceNodeLease)
	now := &api.MicroTime{Time: time.Now()}
	lease, err := leases.Get(ctx, a.name)
	if api.IsNotFound(err) {
		_, err = leases.Create(ctx, &api.Lease{
			ObjectMeta: api.ObjectMeta{Name: a.name, Namespace: api.NamespaceNodeLease},
			Spec:       api.LeaseSpec{HolderIdentity: api.Ptr(a.name), LeaseDurationSeconds: api.Ptr(int32(40)), RenewTime: now},
		})
	} else if err == nil {
		lease.Spec.RenewTime = now
		_, err = leases.Update(ctx, lease)
	}
	if err != nil {
		a.t.Fatal(err)
	}
}

// createRunningPod creates a Pod bound to node and reports it Running and Ready.
func createRunningPod(t *testing.T, c *client.Client, name, node, ip string, tolerations ...api.Toleration) {
	t.Helper()
	ctx := context.Background()
	pods := client.For[api.Pod](c, "default")
	pod, err := pods.Create(ctx, &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       api.PodSpec{NodeName: node, Containers: []api.Container{{Name: "c", Image: "busybox"}}, Tolerations: tolerations},
	})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = api.PodRunning
	pod.Status.PodIP = ip
	pod.Status.Conditions = []api.PodCondition{{Type: api.PodReady, Status: api.ConditionTrue}}
	if _, err := pods.UpdateStatus(ctx, pod); err != nil {
		t.Fatal(err)
	}
}

func getNode(t *testing.T, c *client.Client, name string) *api.Node {
	t.Helper()
	node, err := client.For[api.Node](c, "").Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return node
}

func hasTaint(node *api.Node, key string) bool {
	return slices.ContainsFunc(node.Spec.Taints, func(t api.Taint) bool { return t.Key == key && t.Effect == "NoExecute" })
}

func TestSilentNodeIsMarkedUnknownThenItsPodsEvicted(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	c := srv.Admin
	clock := &fakeClock{now: time.Now()}
	rec := controllertest.NewRecorder()
	healthy := registerNode(t, c, "healthy", "")
	registerNode(t, c, "silent", "")
	createRunningPod(t, c, "web-1", "silent", "10.244.1.2")
	createRunningPod(t, c, "web-2", "healthy", "10.244.0.2")
	createRunningPod(t, c, "pinned", "silent", "10.244.1.3",
		api.Toleration{Key: TaintUnreachable, Operator: "Exists", Effect: "NoExecute"})
	ctrl := startController(t, c, srv.Etcd, clock, rec)
	controllertest.Eventually(t, "the controller to see both nodes", func() (bool, string) {
		return !ctrl.lastHeartbeat("healthy").IsZero() && !ctrl.lastHeartbeat("silent").IsZero(), ""
	})

	// Time passes in steps shorter than the grace period; only "healthy"
	// heartbeats, and each step waits until the controller has seen it.
	step := func() {
		clock.Advance(5 * time.Second)
		healthy.renew()
		controllertest.Eventually(t, "the healthy node's heartbeat to be seen", func() (bool, string) {
			seen := ctrl.lastHeartbeat("healthy")
			return seen.Equal(clock.Now()), fmt.Sprintf("last seen %v, now %v", seen, clock.Now())
		})
	}
	for range 7 { // 35 s: within the grace period
		step()
	}
	if node := getNode(t, c, "silent"); readyStatus(node) != api.ConditionTrue {
		t.Fatalf("silent node after 35 s: Ready=%s, want still True", readyStatus(node))
	}

	step() // 40 s
	step() // 45 s: past the grace period
	controllertest.Eventually(t, "the silent node to be Unknown and tainted unreachable", func() (bool, string) {
		node := getNode(t, c, "silent")
		return readyStatus(node) == api.ConditionUnknown && hasTaint(node, TaintUnreachable),
			fmt.Sprintf("Ready=%s taints=%v", readyStatus(node), node.Spec.Taints)
	})
	if cond := readyCondition(getNode(t, c, "silent")); cond.Reason != ReasonNodeStatusUnknown || cond.Message != MessageNodeStatusUnknown {
		t.Errorf("Ready condition %+v", cond)
	}
	if node := getNode(t, c, "healthy"); readyStatus(node) != api.ConditionTrue || len(node.Spec.Taints) != 0 {
		t.Errorf("healthy node: Ready=%s taints=%v", readyStatus(node), node.Spec.Taints)
	}
	pods := client.For[api.Pod](c, "default")
	controllertest.Eventually(t, "the silent node's pods to be not ready", func() (bool, string) {
		pod, err := pods.Get(context.Background(), "web-1")
		return err == nil && !pod.IsReady(), fmt.Sprint(err)
	})
	controllertest.Eventually(t, "a NodeNotReady event", func() (bool, string) {
		return len(rec.Find("NodeNotReady", "silent")) > 0, fmt.Sprint(rec.Events())
	})

	for range 11 { // 55 s after it went Unknown: not yet
		step()
	}
	if _, err := pods.Get(context.Background(), "web-1"); err != nil {
		t.Fatalf("pod evicted before the eviction timeout: %v", err)
	}
	step()
	step() // 65 s
	controllertest.Eventually(t, "the silent node's pod to be evicted", func() (bool, string) {
		_, err := pods.Get(context.Background(), "web-1")
		return api.IsNotFound(err), fmt.Sprint(err)
	})
	for _, kept := range []string{"web-2", "pinned"} {
		if _, err := pods.Get(context.Background(), kept); err != nil {
			t.Errorf("pod %s: %v", kept, err)
		}
	}
	controllertest.Eventually(t, "an eviction event", func() (bool, string) {
		return len(rec.Find("TaintManagerEviction", "default/web-1")) > 0, fmt.Sprint(rec.Events())
	})
}

func TestNodeComingBackLosesItsTaint(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	c := srv.Admin
	registerNode(t, c, "node-1", "")
	startController(t, c, srv.Etcd, &fakeClock{now: time.Now()}, controllertest.NewRecorder())
	nodes := client.For[api.Node](c, "")
	setReady := func(status string) {
		node := getNode(t, c, "node-1")
		node.Status.Conditions[0].Status = status
		node.Status.Conditions[0].LastHeartbeatTime = api.NewTime(time.Now().Add(time.Second))
		if _, err := nodes.UpdateStatus(context.Background(), node); err != nil {
			t.Fatal(err)
		}
	}

	setReady(api.ConditionFalse) // the agent says it is not ready
	controllertest.Eventually(t, "the not-ready taint", func() (bool, string) {
		node := getNode(t, c, "node-1")
		return hasTaint(node, TaintNotReady), fmt.Sprint(node.Spec.Taints)
	})
	setReady(api.ConditionTrue)
	controllertest.Eventually(t, "the taint to go", func() (bool, string) {
		node := getNode(t, c, "node-1")
		return len(node.Spec.Taints) == 0, fmt.Sprint(node.Spec.Taints)
	})
}

func TestPodCIDRsAreDistinctAndStable(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	c := srv.Admin
	ctx := context.Background()
	nodes := client.For[api.Node](c, "")

	// A node that registers with a CIDR keeps it; the others get the lowest free ones.
	registerNode(t, c, "preset", "10.244.1.0/24")
	startController(t, c, srv.Etcd, realClock{}, controllertest.NewRecorder())
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := nodes.Create(ctx, &api.Node{ObjectMeta: api.ObjectMeta{Name: fmt.Sprintf("node-%02d", i)}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	cidrs := waitForCIDRs(t, c, 21)
	if cidrs["preset"] != "10.244.1.0/24" {
		t.Errorf("the preset node's CIDR changed to %s", cidrs["preset"])
	}
	assertDistinctFromFirst(t, cidrs, 21)

	// A second controller (a new leader) changes nothing, and gives the next node the next CIDR.
	startController(t, c, srv.Etcd, realClock{}, controllertest.NewRecorder())
	if _, err := nodes.Create(ctx, &api.Node{ObjectMeta: api.ObjectMeta{Name: "late"}}); err != nil {
		t.Fatal(err)
	}
	after := waitForCIDRs(t, c, 22)
	for name, cidr := range cidrs {
		if after[name] != cidr {
			t.Errorf("node %s: CIDR %s became %s", name, cidr, after[name])
		}
	}
	if after["late"] != "10.244.21.0/24" {
		t.Errorf("the late node got %s, want the next free 10.244.21.0/24", after["late"])
	}

	// A deleted node's CIDR is freed for the next one.
	freed := after["node-05"]
	if err := nodes.Delete(ctx, "node-05", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, "the claim of node-05 to go", func() (bool, string) {
		resp, err := srv.Etcd.Get(ctx, claimKey(freed))
		return err == nil && len(resp.Kvs) == 0, fmt.Sprint(err)
	})
	if _, err := nodes.Create(ctx, &api.Node{ObjectMeta: api.ObjectMeta{Name: "newcomer"}}); err != nil {
		t.Fatal(err)
	}
	final := waitForCIDRs(t, c, 22)
	if final["newcomer"] != freed {
		t.Errorf("the newcomer got %s, want the freed %s", final["newcomer"], freed)
	}
}

// waitForCIDRs waits until count nodes all have a pod CIDR and returns them by node.
func waitForCIDRs(t *testing.T, c *client.Client, count int) map[string]string {
	t.Helper()
	var cidrs map[string]string
	controllertest.Eventually(t, fmt.Sprintf("%d nodes with pod CIDRs", count), func() (bool, string) {
		list, err := client.For[api.Node](c, "").List(context.Background(), client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		cidrs = map[string]string{}
		for _, n := range list.Items {
			if n.Spec.PodCIDR == "" || !slices.Equal(n.Spec.PodCIDRs, []string{n.Spec.PodCIDR}) {
				return false, "node " + n.Name + " has none"
			}
			cidrs[n.Name] = n.Spec.PodCIDR
		}
		return len(cidrs) == count, fmt.Sprint(cidrs)
	})
	return cidrs
}

// assertDistinctFromFirst checks that the count CIDRs are distinct and are
// exactly the lowest count subnets (allocation fills the range from its start).
func assertDistinctFromFirst(t *testing.T, cidrs map[string]string, count int) {
	t.Helper()
	seen := map[string]string{}
	for node, cidr := range cidrs {
		if other, dup := seen[cidr]; dup {
			t.Errorf("nodes %s and %s share %s", node, other, cidr)
		}
		seen[cidr] = node
	}
	for i := range count {
		if want := fmt.Sprintf("10.244.%d.0/24", i); seen[want] == "" {
			t.Errorf("%s was skipped", want)
		}
	}
}
