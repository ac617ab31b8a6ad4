package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"kubelite/nodeagent/proxy/netns"
)

// Cluster DNS from every node: a pod on each of the three nodes resolves a
// headless Service to the IPs of its three pods (answered by its own node's
// embedded DNS server, through 10.96.0.10), and the `kubernetes` Service to
// its cluster IP. It works in a namespace of its own and removes it after.
func TestDNSFromEveryNode(t *testing.T) {
	l := theLab
	const ns = "dnstest"
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: %[1]s
spec:
  replicas: 3
  selector:
    matchLabels:
      app: dnsweb
  template:
    metadata:
      labels:
        app: dnsweb
    spec:
      containers:
      - name: httpd
        image: httpd
---
apiVersion: v1
kind: Service
metadata:
  name: web-headless
  namespace: %[1]s
spec:
  clusterIP: None
  selector:
    app: dnsweb
  ports:
  - port: 80
`, ns)
	for _, node := range []string{"node1", "node2", "node3"} {
		manifest += fmt.Sprintf(`---
apiVersion: v1
kind: Pod
metadata:
  name: probe-%[2]s
  namespace: %[1]s
  labels:
    app: dnsprobe
spec:
  nodeName: %[2]s
  containers:
  - name: busybox
    image: busybox
    command: ["sleep", "3600"]
`, ns, node)
	}
	path := filepath.Join(t.TempDir(), "dns.yml")
	if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	mustKubectl(t, l, "apply", "-f", path)
	t.Cleanup(func() { _, _ = l.kubectl("delete", "namespace", ns, "--wait=false") })

	web := waitForRunningPods(t, l, ns, "app=dnsweb", 3)
	waitForRunningPods(t, l, ns, "app=dnsprobe", 3)

	headless := "web-headless." + ns + ".svc.cluster.local"
	for _, node := range []string{"node1", "node2", "node3"} {
		probe := "probe-" + node
		eventually(t, trafficDeadline, headless+" to resolve to the 3 pod IPs from "+node, func() (bool, string) {
			out, err := l.kubectl("exec", "-n", ns, probe, "--", "nslookup", headless)
			if err != nil {
				return false, fmt.Sprintf("%v\n%s", err, out)
			}
			for _, p := range web {
				if !strings.Contains(out, p.ip) {
					return false, out
				}
			}
			return true, out
		})
		eventually(t, trafficDeadline, "kubernetes.default to resolve to 10.96.0.1 from "+node, func() (bool, string) {
			out, err := l.kubectl("exec", "-n", ns, probe, "--", "nslookup", "kubernetes.default.svc.cluster.local")
			return err == nil && strings.Contains(out, "10.96.0.1"), fmt.Sprintf("%v\n%s", err, out)
		})
	}

	// A name outside the cluster goes to the upstream resolver: the lab
	// forwards to the outside client's address, where this test runs a fake
	// one (the answer is a documentation address, never contacted).
	startFakeUpstream(t, "/run/netns/kl-client", "192.168.56.100:53", "outside.example.", "192.0.2.80")
	eventually(t, trafficDeadline, "outside.example to be answered by the upstream", func() (bool, string) {
		out, err := l.kubectl("exec", "-n", ns, "probe-node2", "--", "nslookup", "outside.example")
		return err == nil && strings.Contains(out, "192.0.2.80"), fmt.Sprintf("%v\n%s", err, out)
	})
}

// startFakeUpstream serves one A record over UDP at addr inside the network
// namespace netnsPath, until the test ends.
func startFakeUpstream(t *testing.T, netnsPath, addr, name, ip string) {
	t.Helper()
	var pc net.PacketConn
	err := netns.Do(netnsPath, func() error {
		var err error
		pc, err = net.ListenPacket("udp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("fake upstream in %s: %v", netnsPath, err)
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if q := r.Question[0]; strings.EqualFold(q.Name, name) && q.Qtype == dns.TypeA {
			rr, _ := dns.NewRR(name + " 30 IN A " + ip)
			m.Answer = append(m.Answer, rr)
		} else if !strings.EqualFold(q.Name, name) {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	srv := &dns.Server{PacketConn: pc, Handler: handler}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
}
