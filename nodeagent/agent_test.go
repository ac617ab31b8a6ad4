package nodeagent

// Unit and integration tests that need no root: configuration, the Node's
// status, readiness, routes, and the agent's conversations with a real API
// server (registration, Lease, status, events, deletion).

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/apiserver/apiservertest"
	"kubelite/nodeagent/kubeletserver"
	"kubelite/nodeagent/network"
)

// The logs, exec and attach server finds containers through the agent.
var (
	_ kubeletserver.ContainerLocator   = (*Agent)(nil)
	_ kubeletserver.PreviousLogLocator = (*Agent)(nil)
	_ kubeletserver.StdinOnceLocator   = (*Agent)(nil)
)

func TestConfigDefaults(t *testing.T) {
	cfg, err := Config{ServerURL: "https://127.0.0.1:6443", Token: "t", NodeName: "node1", DataDir: "/var/lib/kubelite/agent"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"ClusterCIDR":         "10.244.0.0/16",
		"ClusterDNS":          "10.96.0.10",
		"ClusterDomain":       "cluster.local",
		"ContainerdNamespace": "kubelite",
		"ImagesDir":           "/var/lib/kubelite/agent/images",
		"BridgeName":          "kl-node1",
		"MaxPods":             110,
		"LeaseRenewInterval":  10 * time.Second,
		"LeaseDuration":       40 * time.Second,
	}
	got := reflect.ValueOf(cfg)
	for field, value := range want {
		if v := got.FieldByName(field).Interface(); v != value {
			t.Errorf("%s = %v; want %v", field, v, value)
		}
	}
	if cfg.podNetNSPrefix() != "kubelite-node1-" {
		t.Errorf("pod netns prefix = %q", cfg.podNetNSPrefix())
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{DataDir: "/d", NodeName: "n"}, "no API server"},
		{Config{ServerURL: "https://s", NodeName: "n"}, "no data directory"},
		{Config{ServerURL: "https://s", DataDir: "/d", NodeName: "Node_1"}, `node name "Node_1"`},
		{Config{ServerURL: "https://s", DataDir: "/d", NodeName: "n", NodeIP: "eth0"}, `node IP "eth0"`},
		{Config{ServerURL: "https://s", DataDir: "/d", NodeName: "n", ClusterCIDR: "10.244.0.0"}, "cluster CIDR"},
		{Config{ServerURL: "https://s", DataDir: "/d", NodeName: "n", ClusterDNS: "kube-dns"}, "cluster DNS"},
		{Config{ServerURL: "https://s", DataDir: "/d", NodeName: "n", BridgeName: "a-bridge-name-too-long"}, "longer than 15"},
		{Config{ServerURL: "https://s", DataDir: "/d", NodeName: "n", Components: []Component{{Name: "proxy"}}}, "needs a name and a Run"},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) error = %v; want one containing %q", tt.cfg, err, tt.want)
		}
	}
	if _, err := New(Config{ServerURL: "https://s", DataDir: "/d", NodeName: "n"}); err == nil || !strings.Contains(err.Error(), "no token") {
		t.Errorf("New without a token: %v", err)
	}
}

func TestBridgeNameFor(t *testing.T) {
	tests := map[string]string{
		"node1":                               "kl-node1",
		"worker-2":                            "kl-worker-2",
		"a-long-node-name-indeed.example.com": "kl-",
	}
	for node, prefix := range tests {
		got := bridgeNameFor(node)
		if len(got) > 15 || !strings.HasPrefix(got, prefix) {
			t.Errorf("bridgeNameFor(%q) = %q", node, got)
		}
	}
	if bridgeNameFor("node-a.example.com") == bridgeNameFor("node-b.example.com") {
		t.Error("two long names share a bridge")
	}
}

func TestBuildNodeStatus(t *testing.T) {
	now := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	facts := nodeFacts{
		name: "node1", ip: "192.168.56.11", maxPods: 110, kubeletPort: 10250, now: now,
		machine: machine{cpus: 2, memoryKiB: 2048000, kernelVersion: "6.1.0", osImage: "Debian GNU/Linux 12 (bookworm)",
			architecture: "amd64", runtimeVersion: "containerd://1.6.20"},
		notReady: []string{"pod network (no podCIDR assigned yet)"},
	}
	first := buildNodeStatus(facts, api.NodeStatus{})
	if got := first.Capacity; got["cpu"] != "2" || got["memory"] != "2048000Ki" || got["pods"] != "110" || !reflect.DeepEqual(first.Allocatable, got) {
		t.Errorf("capacity = %v, allocatable = %v", got, first.Allocatable)
	}
	if first.Addresses[0] != (api.NodeAddress{Type: api.NodeInternalIP, Address: "192.168.56.11"}) ||
		first.Addresses[1] != (api.NodeAddress{Type: api.NodeHostName, Address: "node1"}) {
		t.Errorf("addresses = %v", first.Addresses)
	}
	if first.NodeInfo.KubeletVersion != Version || first.NodeInfo.ContainerRuntimeVersion != "containerd://1.6.20" ||
		first.DaemonEndpoints.KubeletEndpoint.Port != 10250 {
		t.Errorf("nodeInfo = %+v", first.NodeInfo)
	}
	ready := first.Conditions[len(first.Conditions)-1]
	if ready.Type != api.NodeReady || ready.Status != api.ConditionFalse || ready.Reason != "KubeletNotReady" ||
		ready.Message != "waiting for: pod network (no podCIDR assigned yet)" {
		t.Errorf("Ready = %+v", ready)
	}

	// Ten seconds later, still not ready: only heartbeats moved.
	facts.now = now.Add(10 * time.Second)
	second := buildNodeStatus(facts, first)
	if nodeStatusChanged(second, first) {
		t.Error("a heartbeat counts as a change")
	}
	if r := second.Conditions[3]; !r.LastTransitionTime.Equal(now) || !r.LastHeartbeatTime.Equal(facts.now) {
		t.Errorf("times = %+v; want the transition kept and the heartbeat new", r)
	}
	// Ready: a change, with a new transition time.
	facts.notReady, facts.now = nil, now.Add(20*time.Second)
	third := buildNodeStatus(facts, second)
	if !nodeStatusChanged(third, second) {
		t.Error("becoming ready is not a change")
	}
	if r := third.Conditions[3]; r.Status != api.ConditionTrue || r.Reason != "KubeletReady" || !r.LastTransitionTime.Equal(facts.now) {
		t.Errorf("Ready = %+v", r)
	}
}

func TestReadiness(t *testing.T) {
	r := newReadiness(partRuntime, partNetwork, "service proxy")
	if got := r.notReady(); len(got) != 3 {
		t.Errorf("notReady = %v", got)
	}
	r.set(partRuntime, true, "")
	r.set(partNetwork, false, "no podCIDR assigned yet")
	if got := strings.Join(r.notReady(), ", "); got != "pod network (no podCIDR assigned yet), service proxy" {
		t.Errorf("notReady = %q", got)
	}
	select {
	case <-r.ready:
		t.Fatal("ready too early")
	default:
	}
	r.set(partNetwork, true, "")
	r.set("service proxy", true, "")
	select {
	case <-r.ready:
	default:
		t.Fatal("not ready with every part up")
	}
	r.set("service proxy", false, "stopped") // going down later does not panic
	if got := r.notReady(); len(got) != 1 {
		t.Errorf("notReady = %v", got)
	}
}

func TestDesiredRoutes(t *testing.T) {
	node := func(name, podCIDR, ip string) *api.Node {
		n := &api.Node{ObjectMeta: api.ObjectMeta{Name: name}, Spec: api.NodeSpec{PodCIDR: podCIDR}}
		if ip != "" {
			n.Status.Addresses = []api.NodeAddress{{Type: api.NodeInternalIP, Address: ip}}
		}
		return n
	}
	got := desiredRoutes("node1", []*api.Node{
		node("node1", "10.244.1.0/24", "192.168.56.11"), // ourselves
		node("node2", "10.244.2.0/24", "192.168.56.12"),
		node("node3", "", "192.168.56.13"),              // no podCIDR yet
		node("node4", "10.244.4.0/24", ""),              // no address yet
		node("node5", "10.244.5.7/24", "192.168.56.15"), // not masked
	})
	want := []network.Route{
		{Dst: netip.MustParsePrefix("10.244.2.0/24"), Gateway: netip.MustParseAddr("192.168.56.12")},
		{Dst: netip.MustParsePrefix("10.244.5.0/24"), Gateway: netip.MustParseAddr("192.168.56.15")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("routes = %v; want %v", got, want)
	}
}

func TestMachineParsing(t *testing.T) {
	if got := memTotalKiB([]byte("MemTotal:       24568120 kB\nMemFree: 1 kB\n")); got != 24568120 {
		t.Errorf("memTotal = %d", got)
	}
	osRelease := []byte("NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n")
	if got := osReleaseField(osRelease, "PRETTY_NAME"); got != "Debian GNU/Linux 12 (bookworm)" {
		t.Errorf("PRETTY_NAME = %q", got)
	}
	if got := osReleaseField(osRelease, "ID"); got != "debian" {
		t.Errorf("ID = %q", got)
	}
	if m := readMachine(); m.cpus < 1 || m.kernelVersion == "" || m.architecture == "" {
		t.Errorf("machine = %+v", m)
	}
}

// testAgent is an agent that is not run, talking to a real API server with
// the node token.
func testAgent(t *testing.T) (*Agent, *apiservertest.Server) {
	t.Helper()
	s := apiservertest.Start(t, apiservertest.Options{})
	a, err := New(Config{
		ServerURL: s.URL, Token: s.Tokens.Node, CAData: s.CAPEM,
		NodeName: "node1", NodeIP: "192.168.56.11", DataDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	a.nodeIP = "192.168.56.11"
	a.machine.runtimeVersion = "containerd://1.6.20"
	return a, s
}

// Registration creates the Node, and on a second start takes it over:
// labels completed, status replaced, the control plane's spec kept.
func TestRegisterNode(t *testing.T) {
	a, s := testAgent(t)
	ctx := context.Background()
	node, err := a.registerNode(ctx, a.facts())
	if err != nil {
		t.Fatal(err)
	}
	if node.InternalIP() != "192.168.56.11" || node.Labels[LabelHostname] != "node1" || node.IsReady() {
		t.Errorf("registered node = %+v", node)
	}

	nodes := client.For[api.Node](s.Admin, "")
	stored, _ := nodes.Get(ctx, "node1")
	stored.Spec.PodCIDR = "10.244.1.0/24"
	stored.Labels = map[string]string{"team": "blue"}
	if _, err := nodes.Update(ctx, stored); err != nil {
		t.Fatal(err)
	}
	a.readiness.set(partRuntime, true, "")
	a.readiness.set(partNetwork, true, "")
	a.cfg.NodeLabels = map[string]string{"zone": "a"}
	a.cfg.NodeAnnotations = map[string]string{"example.com/cert": "PEM"}
	again, err := a.registerNode(ctx, a.facts())
	if err != nil {
		t.Fatal(err)
	}
	if again.Spec.PodCIDR != "10.244.1.0/24" || again.Labels["team"] != "blue" || again.Labels[LabelOS] != "linux" || !again.IsReady() ||
		again.Annotations["example.com/cert"] != "PEM" || again.Labels["zone"] != "a" {
		t.Errorf("node after a second registration = %+v", again)
	}
}

// The Lease is created, then renewed; a Lease someone else changed is
// read again, not fought over.
func TestLeaseRenewal(t *testing.T) {
	a, s := testAgent(t)
	ctx := context.Background()
	node, err := a.registerNode(ctx, a.facts())
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	l := &leaseRenewer{agent: a, node: node, now: func() time.Time { return clock }}
	if err := l.renew(ctx); err != nil {
		t.Fatal(err)
	}
	leases := client.For[api.Lease](s.Admin, api.NamespaceNodeLease)
	lease, err := leases.Get(ctx, "node1")
	if err != nil {
		t.Fatal(err)
	}
	if *lease.Spec.HolderIdentity != "node1" || *lease.Spec.LeaseDurationSeconds != 40 || !lease.Spec.RenewTime.Equal(clock) ||
		lease.OwnerReferences[0].Kind != "Node" || lease.OwnerReferences[0].UID != node.UID {
		t.Errorf("lease = %+v", lease)
	}

	clock = clock.Add(10 * time.Second)
	if err := l.renew(ctx); err != nil {
		t.Fatal(err)
	}
	// Someone else writes it: the next renewal reads it again.
	lease, _ = leases.Get(ctx, "node1")
	lease.Labels = map[string]string{"touched": "yes"}
	if _, err := leases.Update(ctx, lease); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(10 * time.Second)
	if err := l.renew(ctx); err != nil {
		t.Fatal(err)
	}
	lease, _ = leases.Get(ctx, "node1")
	if !lease.Spec.RenewTime.Equal(clock) || !lease.Spec.AcquireTime.Equal(time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("after renewals: renew %v, acquire %v", lease.Spec.RenewTime, lease.Spec.AcquireTime)
	}
}

// The status is written when it changes, and a heartbeat only at the
// report frequency.
func TestNodeStatusReporter(t *testing.T) {
	a, s := testAgent(t)
	ctx := context.Background()
	if _, err := a.registerNode(ctx, a.facts()); err != nil {
		t.Fatal(err)
	}
	nodes := client.For[api.Node](s.Admin, "")
	version := func() string {
		n, err := nodes.Get(ctx, "node1")
		if err != nil {
			t.Fatal(err)
		}
		return n.ResourceVersion
	}
	clock := time.Now()
	r := &nodeStatusReporter{agent: a, facts: func() nodeFacts { f := a.facts(); f.now = clock; return f }, lastReport: clock}
	before := version()
	if err := r.report(ctx); err != nil {
		t.Fatal(err)
	}
	if version() != before {
		t.Error("an unchanged status was written before the report frequency")
	}
	a.readiness.set(partRuntime, true, "")
	a.readiness.set(partNetwork, true, "")
	if err := r.report(ctx); err != nil {
		t.Fatal(err)
	}
	n, _ := nodes.Get(ctx, "node1")
	if !n.IsReady() {
		t.Errorf("readiness not reported: %+v", n.Status.Conditions)
	}
	before = n.ResourceVersion
	clock = clock.Add(2 * a.cfg.NodeStatusReportFrequency)
	if err := r.report(ctx); err != nil {
		t.Fatal(err)
	}
	if version() == before {
		t.Error("no heartbeat after the report frequency")
	}
}

// Events are written by the node, and repeats counted on one Event.
func TestEventRecorder(t *testing.T) {
	a, s := testAgent(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newEventRecorder(a.client, "node1", a.log)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	pod := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1"}}
	for range 3 {
		r.Event(pod, api.EventWarning, "BackOff", "Back-off restarting failed container httpd")
	}
	r.Event(pod, api.EventNormal, "Started", "Started container httpd")

	events := client.For[api.Event](s.Admin, "default")
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := events.List(ctx, client.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]int32{}
		for _, e := range list.Items {
			counts[e.Reason] += e.Count
			if e.Source.Component != "kubelet" || e.Source.Host != "node1" || e.InvolvedObject.UID != "uid-1" || e.InvolvedObject.Kind != "Pod" {
				t.Fatalf("event = %+v", e)
			}
		}
		if len(list.Items) == 2 && counts["BackOff"] == 3 && counts["Started"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events = %d, counts %v; want one BackOff counted 3 times and one Started", len(list.Items), counts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// The deletion is confirmed with the node's token; a Pod replaced by
// another of the same name is left alone.
func TestConfirmDeletion(t *testing.T) {
	a, s := testAgent(t)
	ctx := context.Background()
	pods := client.For[api.Pod](s.Admin, "default")
	create := func() *api.Pod {
		p, err := pods.Create(ctx, &api.Pod{ObjectMeta: api.ObjectMeta{Name: "web"},
			Spec: api.PodSpec{NodeName: "node1", Containers: []api.Container{{Name: "httpd", Image: "httpd"}}}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := create()
	if err := pods.Delete(ctx, "web", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deleting, err := pods.Get(ctx, "web")
	if err != nil || deleting.DeletionTimestamp == nil {
		t.Fatalf("a bound pod should wait for its node: %+v, %v", deleting, err)
	}
	// The agent knows an older version: the precondition fails, it reads
	// again and confirms.
	if err := (podAPI{client: a.client}).ConfirmDeletion(ctx, first); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "web"); !api.IsNotFound(err) {
		t.Fatalf("pod still there: %v", err)
	}
	if err := (podAPI{client: a.client}).ConfirmDeletion(ctx, first); err != nil {
		t.Errorf("confirming twice: %v", err)
	}
	create() // a new pod of the same name
	if err := (podAPI{client: a.client}).ConfirmDeletion(ctx, first); err != nil {
		t.Fatal(err)
	}
	if p, err := pods.Get(ctx, "web"); err != nil || p.UID == first.UID {
		t.Errorf("the new pod of the same name was deleted: %v", err)
	}
}

func TestContainerForBeforeRun(t *testing.T) {
	a, _ := testAgent(t)
	if _, _, err := a.ContainerFor("default", "web", "httpd"); err == nil || !strings.Contains(fmt.Sprint(err), "not found") {
		t.Errorf("ContainerFor before Run: %v", err)
	}
	if a.Runtime() != nil {
		t.Error("Runtime before Run is not nil")
	}
}
