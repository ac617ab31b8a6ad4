package nodeagent_test

// The end-to-end lab: a real API server (apiservertest, on 127.0.0.1 in
// the machine's namespace), and for each node a network namespace on a
// shared lab switch (a bridge in a namespace of its own), with a real
// agent whose pod network lives in that namespace (Config.NetNS), its own
// supervised containerd, real runc and Debian's CNI plugins.
//
// Traffic stays on loopback and inside the namespaces the lab creates; the
// machine's own routes, iptables and interfaces are never touched. The lab
// deletes what it created even when a test fails, and reports leftovers as
// failures. When a prerequisite is missing the tests FAIL with the reason:
// CI installs them (scripts/install-deps.sh); they are never skipped.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/apiserver/apiservertest"
	"kubelite/nodeagent"
	"kubelite/nodeagent/images"
	"kubelite/nodeagent/network"
)

var (
	imagesOnce sync.Once
	imagesDir  string
	imagesErr  error
	labSerial  atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if imagesDir != "" {
		os.RemoveAll(imagesDir)
	}
	os.Exit(code)
}

// requirePrerequisites fails the test when the machine cannot run the lab.
func requirePrerequisites(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Fatal("end-to-end tests need root (containers, network namespaces, iptables): run `sudo go test ./nodeagent/`")
	}
	var missing []string
	for _, tool := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if _, err := os.Stat(images.DefaultBusybox); err != nil {
		missing = append(missing, images.DefaultBusybox+" (busybox-static)")
	}
	for _, plugin := range []string{"bridge", "host-local", "portmap", "loopback"} {
		found := false
		for _, dir := range network.DefaultPluginDirs() {
			if _, err := os.Stat(filepath.Join(dir, plugin)); err == nil {
				found = true
			}
		}
		if !found {
			missing = append(missing, "CNI plugin "+plugin+" (containernetworking-plugins)")
		}
	}
	if len(missing) > 0 {
		tb.Fatalf("end-to-end prerequisites missing: %s; install them with scripts/install-deps.sh", strings.Join(missing, ", "))
	}
	imagesOnce.Do(func() {
		imagesDir, imagesErr = os.MkdirTemp("", "klt-images-")
		if imagesErr == nil {
			_, imagesErr = images.BuildAll(imagesDir, images.DefaultBusybox)
		}
	})
	if imagesErr != nil {
		tb.Fatalf("building the offline images: %v", imagesErr)
	}
}

// lab is one API server and the nodes' shared network.
type lab struct {
	tb       testing.TB
	id       string // unique per lab, short: it goes into interface and namespace names
	server   *apiservertest.Server
	admin    *client.Client
	switchNS string // the switch's namespace
}

func newLab(tb testing.TB) *lab {
	tb.Helper()
	requirePrerequisites(tb)
	l := &lab{tb: tb, id: fmt.Sprintf("k%d%d", os.Getpid()%10000, labSerial.Add(1))}
	l.server = apiservertest.Start(tb, apiservertest.Options{})
	l.admin = l.server.Admin
	l.switchNS = l.id + "-switch"
	run(tb, "ip", "netns", "add", l.switchNS)
	tb.Cleanup(func() { exec.Command("ip", "netns", "del", l.switchNS).Run() })
	run(tb, "ip", "-n", l.switchNS, "link", "add", "lab0", "type", "bridge")
	run(tb, "ip", "-n", l.switchNS, "link", "set", "lab0", "up")
	return l
}

// testNode is one node of the lab: a network namespace and an agent.
type testNode struct {
	lab     *lab
	name    string
	ip      string
	podCIDR string
	netns   string // the namespace's name; its path is /run/netns/<netns>
	dataDir string

	agent  *nodeagent.Agent
	cancel context.CancelFunc
	done   chan error
}

// addNode creates a node's namespace, plugs it into the switch with the
// address ip/24, and starts its agent. Its podCIDR is assigned as the node
// controller would; the call returns once the Node is Ready.
func (l *lab) addNode(shortName, ip, podCIDR string) *testNode {
	tb := l.tb
	tb.Helper()
	n := &testNode{lab: l, name: fmt.Sprintf("%s-%s", shortName, l.id), ip: ip, podCIDR: podCIDR, netns: l.id + "-" + shortName}
	run(tb, "ip", "netns", "add", n.netns)
	var err error
	// A short path: containerd's socket lives under it, and unix socket
	// paths are limited to 108 bytes.
	if n.dataDir, err = os.MkdirTemp("", "klt-"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(n.cleanup)
	port := l.id + shortName
	run(tb, "ip", "-n", n.netns, "link", "set", "lo", "up")
	run(tb, "ip", "-n", n.netns, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", l.switchNS)
	run(tb, "ip", "-n", n.netns, "addr", "add", ip+"/24", "dev", "eth0")
	run(tb, "ip", "-n", n.netns, "link", "set", "eth0", "up")
	run(tb, "ip", "-n", l.switchNS, "link", "set", port, "master", "lab0", "up")
	n.start()
	n.assignPodCIDR()
	n.waitStarted()
	n.waitReady(tb)
	return n
}

// waitStarted waits until the agent itself says the node is Ready (the
// Node object may still show what a previous agent reported).
func (n *testNode) waitStarted() {
	tb := n.lab.tb
	tb.Helper()
	select {
	case <-n.agent.Ready():
	case err := <-n.done:
		tb.Fatalf("agent %s stopped: %v", n.name, err)
	case <-time.After(60 * time.Second):
		tb.Fatalf("agent %s is not ready after a minute", n.name)
	}
}

func (n *testNode) netnsPath() string { return "/run/netns/" + n.netns }

// start runs the node's agent (again, after stop).
func (n *testNode) start() {
	tb := n.lab.tb
	tb.Helper()
	agent, err := nodeagent.New(nodeagent.Config{
		ServerURL:                 n.lab.server.URL,
		Token:                     n.lab.server.Tokens.Node,
		CAData:                    n.lab.server.CAPEM,
		NodeName:                  n.name,
		NodeIP:                    n.ip,
		NetNS:                     n.netnsPath(),
		DataDir:                   n.dataDir,
		ImagesDir:                 imagesDir,
		NodeStatusUpdateFrequency: time.Second,
		Logger:                    testLogger(tb, n.name),
	})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.agent, n.cancel, n.done = agent, cancel, make(chan error, 1)
	go func() { n.done <- agent.Run(ctx) }()
}

// stop stops the agent; its containers keep running.
func (n *testNode) stop() {
	tb := n.lab.tb
	tb.Helper()
	if n.cancel == nil {
		return
	}
	n.cancel()
	select {
	case err := <-n.done:
		if err != nil {
			tb.Errorf("agent %s: %v", n.name, err)
		}
	case <-time.After(60 * time.Second):
		tb.Errorf("agent %s did not stop within a minute", n.name)
	}
	n.cancel = nil
}

// assignPodCIDR does the node controller's part: once the agent has
// registered the Node, give it its podCIDR.
func (n *testNode) assignPodCIDR() {
	tb := n.lab.tb
	tb.Helper()
	nodes := client.For[api.Node](n.lab.admin, "")
	eventually(tb, 30*time.Second, "node "+n.name+" gets its podCIDR", func() error {
		node, err := nodes.Get(context.Background(), n.name)
		if err != nil {
			return err
		}
		node.Spec.PodCIDR, node.Spec.PodCIDRs = n.podCIDR, []string{n.podCIDR}
		_, err = nodes.Update(context.Background(), node)
		return err
	})
}

// waitReady waits for the Node's Ready condition.
func (n *testNode) waitReady(tb testing.TB) *api.Node {
	tb.Helper()
	var node *api.Node
	eventually(tb, 30*time.Second, "node "+n.name+" is Ready", func() error {
		var err error
		node, err = client.For[api.Node](n.lab.admin, "").Get(context.Background(), n.name)
		if err != nil {
			return err
		}
		if !node.IsReady() {
			return fmt.Errorf("conditions: %+v", node.Status.Conditions)
		}
		return nil
	})
	return node
}

// cleanup deletes the node's Pods through its agent, stops it, and then
// makes sure nothing is left on the machine: no containers, no pod
// namespaces, no mounts. What it has to remove by force is reported.
func (n *testNode) cleanup() {
	tb := n.lab.tb
	ctx := context.Background()
	if n.cancel != nil {
		pods := client.For[api.Pod](n.lab.admin, "")
		list, err := pods.List(ctx, client.ListOptions{FieldSelector: "spec.nodeName=" + n.name})
		if err == nil {
			for _, p := range list.Items {
				client.For[api.Pod](n.lab.admin, p.Namespace).Delete(ctx, p.Name, client.DeleteOptions{GracePeriodSeconds: api.Ptr[int64](0)})
			}
		}
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if rt := n.agent.Runtime(); rt != nil {
				if containers, err := rt.List(ctx); err == nil && len(containers) == 0 {
					break
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		n.stop()
	}
	if leftovers := n.leftoverNetNS(); len(leftovers) > 0 {
		tb.Errorf("node %s left pod network namespaces: %v", n.name, leftovers)
		for _, path := range leftovers {
			syscall.Unmount(path, syscall.MNT_DETACH)
			os.Remove(path)
		}
	}
	if killed := killShims(n.dataDir); len(killed) > 0 {
		tb.Errorf("node %s left containers running; killed shims %v", n.name, killed)
	}
	unmountUnder(n.dataDir)
	exec.Command("ip", "netns", "del", n.netns).Run()
	if err := os.RemoveAll(n.dataDir); err != nil {
		tb.Errorf("remove %s: %v", n.dataDir, err)
	}
}

// leftoverNetNS lists the pod namespaces of this node's agent.
func (n *testNode) leftoverNetNS() []string {
	entries, _ := os.ReadDir(network.DefaultPodNetNSDir)
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "kubelite-"+n.name+"-") {
			out = append(out, filepath.Join(network.DefaultPodNetNSDir, e.Name()))
		}
	}
	return out
}

// killShims kills the containerd shims (and so the containers) started
// by the containerd under dataDir, which only a failed test leaves.
func killShims(dataDir string) []int {
	procs, _ := os.ReadDir("/proc")
	var killed []int
	for _, p := range procs {
		var pid int
		if _, err := fmt.Sscan(p.Name(), &pid); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(cmdline), "containerd-shim") && strings.Contains(string(cmdline), dataDir) {
			syscall.Kill(pid, syscall.SIGKILL)
			killed = append(killed, pid)
		}
	}
	return killed
}

func unmountUnder(dir string) {
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if fields := strings.Fields(line); len(fields) > 1 && strings.HasPrefix(fields[1], dir) {
			syscall.Unmount(fields[1], syscall.MNT_DETACH)
		}
	}
}

// createPod creates a Pod bound to the node (the scheduler's part).
func (n *testNode) createPod(pod *api.Pod) *api.Pod {
	tb := n.lab.tb
	tb.Helper()
	if pod.Namespace == "" {
		pod.Namespace = "default"
	}
	pod.Spec.NodeName = n.name
	created, err := client.For[api.Pod](n.lab.admin, pod.Namespace).Create(context.Background(), pod)
	if err != nil {
		tb.Fatalf("create pod %s: %v", pod.Name, err)
	}
	return created
}

// waitPod polls a Pod until cond holds. tb is the (sub)test that waits.
func (l *lab) waitPod(tb testing.TB, namespace, name string, timeout time.Duration, what string, cond func(*api.Pod) error) *api.Pod {
	tb.Helper()
	var pod *api.Pod
	eventually(tb, timeout, fmt.Sprintf("pod %s/%s: %s", namespace, name, what), func() error {
		var err error
		pod, err = client.For[api.Pod](l.admin, namespace).Get(context.Background(), name)
		if err != nil {
			return err
		}
		return cond(pod)
	})
	return pod
}

func (l *lab) waitRunning(tb testing.TB, namespace, name string) *api.Pod {
	tb.Helper()
	return l.waitPod(tb, namespace, name, 60*time.Second, "Running", func(p *api.Pod) error {
		if p.Status.Phase != api.PodRunning {
			return fmt.Errorf("phase %s, containers %s", p.Status.Phase, describeContainers(p))
		}
		return nil
	})
}

func (l *lab) waitGone(tb testing.TB, namespace, name string, timeout time.Duration) {
	tb.Helper()
	eventually(tb, timeout, fmt.Sprintf("pod %s/%s is gone", namespace, name), func() error {
		_, err := client.For[api.Pod](l.admin, namespace).Get(context.Background(), name)
		if api.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return errors.New("still there")
	})
}

func describeContainers(p *api.Pod) string {
	var parts []string
	for _, cs := range p.Status.ContainerStatuses {
		state := "?"
		switch {
		case cs.State.Running != nil:
			state = "running"
		case cs.State.Waiting != nil:
			state = "waiting " + cs.State.Waiting.Reason + ": " + cs.State.Waiting.Message
		case cs.State.Terminated != nil:
			state = fmt.Sprintf("terminated %s (%d)", cs.State.Terminated.Reason, cs.State.Terminated.ExitCode)
		}
		parts = append(parts, fmt.Sprintf("%s=%s restarts=%d ready=%v", cs.Name, state, cs.RestartCount, cs.Ready))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// containerStatus returns the status of one container of the Pod.
func containerStatus(p *api.Pod, name string) api.ContainerStatus {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == name {
			return cs
		}
	}
	return api.ContainerStatus{}
}

// httpGet fetches url from inside the node's namespace, where pod IPs are
// routed.
func (n *testNode) httpGet(url string) (string, error) {
	ns := network.Namespace{Path: n.netnsPath()}
	httpClient := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{DialContext: ns.DialContext, DisableKeepAlives: true},
	}
	resp, err := httpClient.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// dial opens a TCP connection from the node's namespace.
func (n *testNode) dial(address string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return network.Namespace{Path: n.netnsPath()}.DialContext(ctx, "tcp", address)
}

func podSpec(name string, containers ...api.Container) *api.Pod {
	return &api.Pod{ObjectMeta: api.ObjectMeta{Name: name}, Spec: api.PodSpec{Containers: containers}}
}

func run(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// eventually polls cond until it holds or timeout passes. Only tests poll:
// they wait for what agents do in goroutines of their own.
func eventually(tb testing.TB, timeout time.Duration, what string, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testLogger sends an agent's log to the test's log (shown on failure, or
// with -v), at Info level.
func testLogger(tb testing.TB, node string) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("agent", node)
}

type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
