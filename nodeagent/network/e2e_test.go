package network

// End-to-end tests with the real CNI plugins, netlink and iptables, inside
// a "node" network namespace the test creates and deletes: nothing touches
// the machine's own network. They need root and Debian's
// containernetworking-plugins, iproute2 and iptables, and FAIL (never skip)
// when those are missing.

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("end-to-end test needs root (network namespaces, iptables): run `sudo go test ./nodeagent/...`")
	}
	for _, tool := range []string{"ip", "iptables", "iptables-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("end-to-end test needs %s: install iproute2 and iptables (scripts/install-deps.sh)", tool)
		}
	}
	for _, plugin := range []string{"bridge", "host-local", "portmap", "loopback"} {
		found := false
		for _, dir := range DefaultPluginDirs() {
			if _, err := os.Stat(filepath.Join(dir, plugin)); err == nil {
				found = true
			}
		}
		if !found {
			t.Fatalf("end-to-end test needs the CNI plugin %s: install containernetworking-plugins", plugin)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// testNodeNS creates a network namespace standing for a node, with lo up
// and eth0 on a veth whose other end stays in a second, "switch" namespace.
func testNodeNS(t *testing.T, nodeIP string) (name string) {
	t.Helper()
	name = fmt.Sprintf("kltnet-%d", os.Getpid())
	sw := name + "-sw"
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "netns", "add", sw)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", sw).Run() })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	run(t, "ip", "-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "port", "netns", sw)
	run(t, "ip", "-n", name, "addr", "add", nodeIP+"/24", "dev", "eth0")
	run(t, "ip", "-n", name, "link", "set", "eth0", "up")
	run(t, "ip", "-n", sw, "link", "set", "port", "up")
	return name
}

func TestE2EPodNetwork(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	node := testNodeNS(t, "192.168.56.11")
	stateDir := t.TempDir()
	prefix := fmt.Sprintf("kltnet-%d-pod-", os.Getpid())
	n, err := New(Config{
		NetNS:          "/run/netns/" + node,
		StateDir:       stateDir,
		PodNetNSPrefix: prefix,
		BridgeName:     "kl-test",
		ClusterCIDR:    netip.MustParsePrefix("10.244.0.0/16"),
		Logger:         slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	podCIDR := netip.MustParsePrefix("10.244.1.0/24")
	if _, err := n.SetupPod(ctx, Pod{UID: "early"}); err == nil {
		t.Error("SetupPod before Start succeeded")
	}
	if err := n.Start(ctx, podCIDR); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx, podCIDR); err != nil { // at every agent start
		t.Fatalf("second Start: %v", err)
	}

	pod := Pod{UID: "0b7c6a52-uid", Namespace: "default", Name: "web"}
	t.Cleanup(func() { n.TeardownPod(context.Background(), pod.UID) })
	first, err := n.SetupPod(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	if !podCIDR.Contains(first.IP) || first.IP == netip.MustParseAddr("10.244.1.1") {
		t.Errorf("pod IP %v; want one from %v other than the gateway", first.IP, podCIDR)
	}
	if first.NetNSPath != "/run/netns/"+prefix+pod.UID || !isPinnedNetNS(first.NetNSPath) {
		t.Errorf("pod netns %q is not pinned where expected", first.NetNSPath)
	}
	podNS := filepath.Base(first.NetNSPath)
	if out := run(t, "ip", "-n", podNS, "-4", "addr", "show", "eth0"); !strings.Contains(out, first.IP.String()+"/24") {
		t.Errorf("eth0 in the pod:\n%s", out)
	}
	if out := run(t, "ip", "-n", podNS, "link", "show", "lo"); !strings.Contains(out, "UP") {
		t.Errorf("lo in the pod is not up:\n%s", out)
	}
	// The pod reaches its gateway, the bridge in the node's namespace.
	run(t, "ip", "netns", "exec", podNS, "/bin/busybox", "ping", "-c1", "-W2", "10.244.1.1")
	if out := run(t, "ip", "netns", "exec", node, "cat", "/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(out) != "1" {
		t.Errorf("ip_forward in the node = %q", out)
	}
	nat := run(t, "ip", "netns", "exec", node, "iptables-save", "-t", "nat")
	for _, want := range []string{
		"-A POSTROUTING -m comment --comment \"kubelite pod masquerade\" -j KUBELITE-POSTROUTING",
		"-A KUBELITE-POSTROUTING -s 10.244.1.0/24 ! -d 10.244.0.0/16",
	} {
		if !strings.Contains(nat, want) {
			t.Errorf("nat table lacks %q:\n%s", want, nat)
		}
	}

	// Again, as after an agent restart: the same namespace and IP, and no
	// second CNI ADD (which would have given another address).
	again, err := n.SetupPod(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, first) {
		t.Errorf("second SetupPod = %+v; want %+v", again, first)
	}
	if uids, err := n.Pods(); err != nil || len(uids) != 1 || uids[0] != pod.UID {
		t.Errorf("Pods = %v, %v", uids, err)
	}

	// Routes to other nodes' pods, kept in sync.
	if err := n.SyncRoutes([]Route{route("10.244.2.0/24", "192.168.56.12"), route("10.244.3.0/24", "192.168.56.13")}); err != nil {
		t.Fatal(err)
	}
	if err := n.SyncRoutes([]Route{route("10.244.3.0/24", "192.168.56.23")}); err != nil {
		t.Fatal(err)
	}
	routes := run(t, "ip", "-n", node, "route", "show", "proto", "75")
	if strings.TrimSpace(routes) != "10.244.3.0/24 via 192.168.56.23 dev eth0" {
		t.Errorf("routes of ours:\n%s", routes)
	}
	if err := n.SyncRoutes([]Route{route("10.244.4.0/24", "10.9.9.9")}); err == nil {
		t.Error("a route through an unreachable gateway was accepted")
	}

	if err := n.TeardownPod(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(first.NetNSPath); !os.IsNotExist(err) {
		t.Errorf("pod netns still there: %v", err)
	}
	if out := run(t, "ip", "-n", node, "link", "show", "type", "veth"); strings.Contains(out, "veth") {
		t.Errorf("veth left in the node:\n%s", out)
	}
	ipam, _ := os.ReadDir(filepath.Join(stateDir, "cni", "ipam", NetworkName))
	for _, e := range ipam {
		if strings.HasPrefix(e.Name(), "10.") {
			t.Errorf("address %s still allocated", e.Name())
		}
	}
	if uids, _ := n.Pods(); len(uids) != 0 {
		t.Errorf("Pods after teardown = %v", uids)
	}
	if err := n.TeardownPod(ctx, pod.UID); err != nil {
		t.Errorf("second TeardownPod: %v", err)
	}

	// A pod whose namespace vanished (a reboot) gets a new one.
	lost, err := n.SetupPod(ctx, Pod{UID: "lost-uid", Namespace: "default", Name: "lost"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.TeardownPod(context.Background(), "lost-uid") })
	if err := deletePinnedNetNS(lost.NetNSPath); err != nil {
		t.Fatal(err)
	}
	renewed, err := n.SetupPod(ctx, Pod{UID: "lost-uid", Namespace: "default", Name: "lost"})
	if err != nil {
		t.Fatal(err)
	}
	if renewed.SandboxID == lost.SandboxID || !isPinnedNetNS(renewed.NetNSPath) {
		t.Errorf("after losing its namespace: %+v (was %+v)", renewed, lost)
	}
}

// testWriter sends log output to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
