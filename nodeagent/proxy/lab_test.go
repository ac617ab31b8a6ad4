package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kubelite/nodeagent/proxy/netns"
)

// The lab is a one-node cluster made of network namespaces, all created by
// the test and deleted after it, so that nothing touches the machine's own
// network:
//
//	 client ns                node ns                         pod ns ×3
//	192.168.56.1 ─ eth0 ═ eth0 192.168.56.10      br0 10.244.1.1 ═ veth ─ eth0 10.244.1.2-4
//	 (outside the cluster)    (iptables, the proxier's rules)        busybox httpd :80
//
// The node's default route points at the client, as a node's would point
// at its gateway.

const (
	labNodeIP      = "192.168.56.10"
	labClientIP    = "192.168.56.1"
	labBridgeIP    = "10.244.1.1"
	labPodCIDR     = "10.244.0.0/16"
	labNodeIface   = "eth0"
	labPodsInLab   = 3
	labHTTPPort    = 80
	labDialTimeout = 3 * time.Second
)

var labCounter atomic.Int32

type lab struct {
	t      testing.TB
	prefix string
	node   string // namespace names
	client string
	pods   []*labPod
}

type labPod struct {
	name  string // "pod1": also the page it serves
	ns    string
	ip    string
	httpd *exec.Cmd
}

// requireLabPrerequisites fails (never skips) when the lab cannot run.
func requireLabPrerequisites(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test builds network namespaces and must run as root")
	}
	for _, tool := range []string{"ip", "bridge", "iptables", "iptables-save", "iptables-restore",
		"iptables-legacy-save", "iptables-legacy-restore", "nft", "/bin/busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required: %v (Debian: iproute2, iptables, nftables, busybox-static)", tool, err)
		}
	}
}

// newLab builds the namespaces. withPods starts the three httpd pods.
func newLab(t testing.TB, withPods bool) *lab {
	t.Helper()
	requireLabPrerequisites(t)
	prefix := fmt.Sprintf("kpx%d-%d", os.Getpid(), labCounter.Add(1))
	l := &lab{t: t, prefix: prefix, node: prefix + "-node", client: prefix + "-client"}
	t.Cleanup(l.destroy)

	l.addNamespace(l.node)
	l.addNamespace(l.client)
	l.ip(l.node, "link", "set", "lo", "up")
	l.ip(l.client, "link", "set", "lo", "up")

	// The node's link to the outside world, shared with the client.
	l.ip(l.node, "link", "add", labNodeIface, "type", "veth", "peer", "name", "eth0", "netns", l.client)
	l.ip(l.node, "addr", "add", labNodeIP+"/24", "dev", labNodeIface)
	l.ip(l.node, "link", "set", labNodeIface, "up")
	l.ip(l.client, "addr", "add", labClientIP+"/24", "dev", "eth0")
	l.ip(l.client, "link", "set", "eth0", "up")
	l.ip(l.node, "route", "add", "default", "via", labClientIP)

	// The pod bridge, as the CNI bridge plugin would make it.
	l.ip(l.node, "link", "add", "br0", "type", "bridge")
	l.ip(l.node, "addr", "add", labBridgeIP+"/24", "dev", "br0")
	l.ip(l.node, "link", "set", "br0", "up")

	if withPods {
		for i := 1; i <= labPodsInLab; i++ {
			l.addPod(i)
		}
		for _, pod := range l.pods {
			l.waitListening(l.node, net.JoinHostPort(pod.ip, fmt.Sprint(labHTTPPort)))
		}
	}
	return l
}

func (l *lab) addNamespace(name string) {
	l.t.Helper()
	l.run("ip", "netns", "add", name)
}

func (l *lab) addPod(i int) {
	l.t.Helper()
	pod := &labPod{name: fmt.Sprintf("pod%d", i), ns: fmt.Sprintf("%s-pod%d", l.prefix, i), ip: fmt.Sprintf("10.244.1.%d", i+1)}
	l.pods = append(l.pods, pod)
	l.addNamespace(pod.ns)
	veth := fmt.Sprintf("veth%d", i)
	l.ip(l.node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pod.ns)
	l.ip(l.node, "link", "set", veth, "master", "br0", "up")
	// A pod that reaches itself through a Service gets its packet back
	// through the port it came in by: the CNI bridge plugin's hairpinMode.
	l.run("bridge", "-n", l.node, "link", "set", "dev", veth, "hairpin", "on")
	l.ip(pod.ns, "link", "set", "lo", "up")
	l.ip(pod.ns, "addr", "add", pod.ip+"/24", "dev", "eth0")
	l.ip(pod.ns, "link", "set", "eth0", "up")
	l.ip(pod.ns, "route", "add", "default", "via", labBridgeIP)

	dir := filepath.Join(l.t.TempDir(), pod.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(pod.name+"\n"), 0o644); err != nil {
		l.t.Fatal(err)
	}
	pod.httpd = exec.Command("ip", "netns", "exec", pod.ns, "/bin/busybox", "httpd", "-f", "-p", fmt.Sprint(labHTTPPort), "-h", dir)
	if err := pod.httpd.Start(); err != nil {
		l.t.Fatalf("starting httpd in %s: %v", pod.ns, err)
	}
}

// stopHTTPD ends a pod's web server, as deleting the pod would.
func (l *lab) stopHTTPD(pod *labPod) {
	if pod.httpd == nil || pod.httpd.Process == nil {
		return
	}
	_ = pod.httpd.Process.Kill()
	_ = pod.httpd.Wait()
	pod.httpd = nil
}

// destroy stops the processes it started and deletes the namespaces,
// which deletes their interfaces, routes and iptables with them.
func (l *lab) destroy() {
	for _, pod := range l.pods {
		l.stopHTTPD(pod)
	}
	names := []string{l.node, l.client}
	for _, pod := range l.pods {
		names = append(names, pod.ns)
	}
	for _, name := range names {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil && !strings.Contains(string(out), "No such file") {
			l.t.Errorf("deleting namespace %s: %v: %s", name, err, out)
		}
	}
}

func nsPath(name string) string { return "/run/netns/" + name }

// ip runs `ip -n ns args...`.
func (l *lab) ip(ns string, args ...string) {
	l.t.Helper()
	l.run("ip", append([]string{"-n", ns}, args...)...)
}

func (l *lab) run(name string, args ...string) string {
	l.t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inNS runs a command inside namespace ns, for at most 10 seconds.
func (l *lab) inNS(ns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

// dial connects from inside namespace ns.
func dial(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := netns.Do(nsPath(ns), func() error {
		var err error
		d := net.Dialer{Timeout: labDialTimeout}
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// httpGet fetches url from inside namespace ns, on a new connection, and
// returns the body.
func httpGet(ns, url string) (string, error) {
	client := &http.Client{
		Timeout: labDialTimeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return dial(ctx, ns, network, addr)
			},
		},
	}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}

// waitListening waits until addr accepts TCP connections from ns.
func (l *lab) waitListening(ns, addr string) {
	l.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := dial(context.Background(), ns, "tcp", addr)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s does not answer from %s: %v", addr, ns, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serveUDP answers every datagram to addr, in namespace ns, with reply.
func (l *lab) serveUDP(ns, addr, reply string) {
	l.t.Helper()
	var conn net.PacketConn
	err := netns.Do(nsPath(ns), func() error {
		var err error
		conn, err = net.ListenPacket("udp4", addr)
		return err
	})
	if err != nil {
		l.t.Fatalf("listening on udp %s in %s: %v", addr, ns, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 512)
		for {
			_, from, err := conn.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			_, _ = conn.WriteTo([]byte(reply), from)
		}
	})
	l.t.Cleanup(func() {
		conn.Close()
		wg.Wait()
	})
}

// serveTCP answers every connection to addr, in namespace ns, with reply.
func (l *lab) serveTCP(ns, addr, reply string) {
	l.t.Helper()
	var listener net.Listener
	err := netns.Do(nsPath(ns), func() error {
		var err error
		listener, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		l.t.Fatalf("listening on tcp %s in %s: %v", addr, ns, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return // closed
			}
			_, _ = conn.Write([]byte(reply))
			conn.Close()
		}
	})
	l.t.Cleanup(func() {
		listener.Close()
		wg.Wait()
	})
}
