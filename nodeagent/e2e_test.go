package nodeagent_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/nodeagent"
	"kubelite/nodeagent/runtime"
)

// One node, many Pods at once: the node registers and heartbeats, Pods
// run with IPs from the podCIDR and answer from the node, their files and
// environment are right, a killed container restarts, probes decide
// readiness and liveness, a missing image backs off, and a graceful delete
// of an httpd that ignores SIGTERM ends with SIGKILL after its grace
// period.
func TestE2ESingleNode(t *testing.T) {
	l := newLab(t)
	node := l.addNode("node1", "192.168.56.11", "10.244.1.0/24")
	ctx := context.Background()

	// The Pods start side by side; the subtests look at them in turn.
	fieldRef := func(path string) *api.EnvVarSource {
		return &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: path}}
	}
	httpGetProbe := func(path string) *api.Probe {
		return &api.Probe{ProbeHandler: api.ProbeHandler{HTTPGet: &api.HTTPGetAction{Path: path, Port: api.FromString("http")}},
			PeriodSeconds: 1, FailureThreshold: 1}
	}
	web := api.Container{Name: "httpd", Image: "httpd",
		Ports:          []api.ContainerPort{{Name: "http", ContainerPort: 80}},
		ReadinessProbe: httpGetProbe("/")}
	node.createPod(podSpec("web", web))
	// An init container leaves a note in an emptyDir volume for the main
	// container, which logs its environment and the note.
	workDir := []api.VolumeMount{{Name: "work", MountPath: "/work"}}
	env := podSpec("env", api.Container{Name: "main", Image: "busybox",
		Command: []string{"sh", "-c", "echo ip=$POD_IP name=$POD_NAME ns=$POD_NAMESPACE node=$NODE_NAME greeting=$(GREETING) note=$(cat /work/note); exec sleep 3600"},
		Env: []api.EnvVar{
			{Name: "POD_IP", ValueFrom: fieldRef("status.podIP")},
			{Name: "POD_NAME", ValueFrom: fieldRef("metadata.name")},
			{Name: "POD_NAMESPACE", ValueFrom: fieldRef("metadata.namespace")},
			{Name: "NODE_NAME", ValueFrom: fieldRef("spec.nodeName")},
			{Name: "GREETING", Value: "hello"},
		},
		WorkingDir:   "/tmp",
		VolumeMounts: workDir})
	env.Spec.InitContainers = []api.Container{{Name: "prepare", Image: "busybox",
		Command: []string{"sh", "-c", "echo prepared > /work/note"}, VolumeMounts: workDir}}
	env.Spec.Volumes = []api.Volume{{Name: "work", EmptyDir: &api.EmptyDirVolumeSource{}}}
	node.createPod(env)
	node.createPod(podSpec("victim", api.Container{Name: "main", Image: "busybox", Command: []string{"sleep", "3600"}}))
	notReady := web
	notReady.ReadinessProbe = httpGetProbe("/not-there")
	node.createPod(podSpec("not-ready", notReady))
	node.createPod(podSpec("ghost", api.Container{Name: "main", Image: "127.0.0.1:1/nosuch:latest"}))
	liveness := &api.Probe{ProbeHandler: api.ProbeHandler{Exec: &api.ExecAction{Command: []string{"cat", "/tmp/healthy"}}},
		PeriodSeconds: 1, FailureThreshold: 2}
	sickly := podSpec("sickly", api.Container{Name: "main", Image: "busybox", LivenessProbe: liveness,
		Command: []string{"sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; exec sleep 3600"}})
	sickly.Spec.TerminationGracePeriodSeconds = api.Ptr[int64](1) // sleep as PID 1 ignores SIGTERM
	node.createPod(sickly)

	t.Run("node registered", func(t *testing.T) {
		n := node.waitReady(t)
		if n.InternalIP() != "192.168.56.11" {
			t.Errorf("InternalIP = %q", n.InternalIP())
		}
		info := n.Status.NodeInfo
		if info.KubeletVersion != nodeagent.Version || !strings.HasPrefix(info.ContainerRuntimeVersion, "containerd://1.") ||
			info.KernelVersion == "" || info.OSImage == "" || info.OperatingSystem != "linux" {
			t.Errorf("nodeInfo = %+v", info)
		}
		if n.Status.Capacity["pods"] != "110" || n.Status.Capacity["cpu"] == "" || !strings.HasSuffix(n.Status.Capacity["memory"], "Ki") {
			t.Errorf("capacity = %v", n.Status.Capacity)
		}
		if n.Labels[nodeagent.LabelHostname] != node.name || n.Labels[nodeagent.LabelOS] != "linux" {
			t.Errorf("labels = %v", n.Labels)
		}
		lease, err := client.For[api.Lease](l.admin, api.NamespaceNodeLease).Get(ctx, node.name)
		if err != nil {
			t.Fatal(err)
		}
		if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != node.name || lease.Spec.RenewTime == nil ||
			len(lease.OwnerReferences) != 1 || lease.OwnerReferences[0].UID != n.UID {
			t.Errorf("lease = %+v", lease)
		}
	})

	t.Run("httpd answers on its pod IP", func(t *testing.T) {
		pod := l.waitPod(t, "default", "web", time.Minute, "ready", func(p *api.Pod) error {
			if !p.IsReady() {
				return fmt.Errorf("phase %s, %s", p.Status.Phase, describeContainers(p))
			}
			return nil
		})
		ip, err := netip.ParseAddr(pod.Status.PodIP)
		if err != nil || !netip.MustParsePrefix("10.244.1.0/24").Contains(ip) {
			t.Fatalf("pod IP %q is not from the node's podCIDR", pod.Status.PodIP)
		}
		if pod.Status.HostIP != "192.168.56.11" || pod.Status.StartTime == nil {
			t.Errorf("status = %+v", pod.Status)
		}
		cs := containerStatus(pod, "httpd")
		if !strings.HasPrefix(cs.ContainerID, "containerd://") || cs.Image != "docker.io/library/httpd:latest" ||
			!strings.HasPrefix(cs.ImageID, "docker.io/library/httpd@sha256:") || !cs.Ready {
			t.Errorf("container status = %+v", cs)
		}
		page, err := node.httpGet("http://" + pod.Status.PodIP + ":80/")
		if err != nil || !strings.Contains(page, "It works!") {
			t.Errorf("GET http://%s/ = %q, %v", pod.Status.PodIP, page, err)
		}
		id, logPath, err := node.agent.ContainerFor("default", "web", "httpd")
		if err != nil || "containerd://"+id != cs.ContainerID {
			t.Fatalf("ContainerFor = %q, %v; want the status' %s", id, err, cs.ContainerID)
		}
		eventually(t, 10*time.Second, "httpd logs requests", func() error {
			if data, _ := os.ReadFile(logPath); !bytes.Contains(data, []byte("url:/")) {
				return fmt.Errorf("log %s: %q", logPath, data)
			}
			return nil
		})
		for _, reason := range []string{"Pulled", "Created", "Started"} {
			if !hasEvent(t, l, "web", reason) {
				t.Errorf("no %s event for the pod", reason)
			}
		}
	})

	t.Run("files and environment", func(t *testing.T) {
		pod := l.waitRunning(t, "default", "env")
		id, logPath, err := node.agent.ContainerFor("default", "env", "main")
		if err != nil {
			t.Fatal(err)
		}
		if len(pod.Status.InitContainerStatuses) != 1 || pod.Status.InitContainerStatuses[0].State.Terminated == nil ||
			pod.Status.InitContainerStatuses[0].State.Terminated.Reason != "Completed" {
			t.Errorf("init container status = %+v", pod.Status.InitContainerStatuses)
		}
		want := fmt.Sprintf("ip=%s name=env ns=default node=%s greeting=hello note=prepared", pod.Status.PodIP, node.name)
		eventually(t, 10*time.Second, "the environment is logged", func() error {
			if lines := readLog(t, logPath); len(lines) == 0 || lines[0] != want {
				return fmt.Errorf("log = %q; want %q", lines, want)
			}
			return nil
		})
		rt := node.agent.Runtime()
		for file, want := range map[string]string{
			"/etc/resolv.conf": "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n",
			"/etc/hostname":    "env\n",
		} {
			if got := execIn(t, rt, id, "cat", file); got != want {
				t.Errorf("%s = %q; want %q", file, got, want)
			}
		}
		if hosts := execIn(t, rt, id, "cat", "/etc/hosts"); !strings.Contains(hosts, pod.Status.PodIP+"\tenv\n") || !strings.Contains(hosts, "localhost") {
			t.Errorf("/etc/hosts = %q", hosts)
		}
		if cwd := execIn(t, rt, id, "sh", "-c", "pwd"); cwd != "/tmp\n" {
			t.Errorf("working directory = %q", cwd)
		}
		if got := execIn(t, rt, id, "hostname"); got != "env\n" {
			t.Errorf("hostname = %q", got)
		}
	})

	t.Run("a killed container restarts", func(t *testing.T) {
		l.waitRunning(t, "default", "victim")
		id, _, err := node.agent.ContainerFor("default", "victim", "main")
		if err != nil {
			t.Fatal(err)
		}
		status, err := node.agent.Runtime().Status(ctx, id)
		if err != nil || status.Pid == 0 {
			t.Fatalf("status = %+v, %v", status, err)
		}
		if err := syscall.Kill(int(status.Pid), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		pod := l.waitPod(t, "default", "victim", 30*time.Second, "restarted once", func(p *api.Pod) error {
			cs := containerStatus(p, "main")
			if cs.RestartCount != 1 || cs.State.Running == nil {
				return fmt.Errorf("%s", describeContainers(p))
			}
			return nil
		})
		cs := containerStatus(pod, "main")
		if last := cs.LastState.Terminated; last == nil || last.ExitCode != 137 || last.ContainerID != "containerd://"+id {
			t.Errorf("lastState = %+v; want the killed container's exit 137", cs.LastState.Terminated)
		}
		if cs.ContainerID == "containerd://"+id {
			t.Error("the restarted container has the old ID")
		}
		if _, previousLog, err := node.agent.PreviousContainerFor("default", "victim", "main"); err != nil || !strings.HasSuffix(previousLog, "/main/0.log") {
			t.Errorf("PreviousContainerFor = %q, %v", previousLog, err)
		}
	})

	t.Run("a failing readiness probe keeps the pod not ready", func(t *testing.T) {
		l.waitRunning(t, "default", "not-ready")
		eventually(t, 20*time.Second, "Unhealthy event", func() error {
			if !hasEvent(t, l, "not-ready", "Unhealthy") {
				return fmt.Errorf("none yet")
			}
			return nil
		})
		pod, err := client.For[api.Pod](l.admin, "default").Get(ctx, "not-ready")
		if err != nil {
			t.Fatal(err)
		}
		cs := containerStatus(pod, "httpd")
		if pod.IsReady() || cs.Ready || cs.State.Running == nil || cs.RestartCount != 0 {
			t.Errorf("ready %v, %s", pod.IsReady(), describeContainers(pod))
		}
	})

	t.Run("a failing liveness probe restarts the container", func(t *testing.T) {
		l.waitPod(t, "default", "sickly", 60*time.Second, "restarted by its liveness probe", func(p *api.Pod) error {
			if cs := containerStatus(p, "main"); cs.RestartCount < 1 {
				return fmt.Errorf("%s", describeContainers(p))
			}
			return nil
		})
		if !hasEvent(t, l, "sickly", "Killing") {
			t.Error("no Killing event")
		}
	})

	t.Run("a missing image backs off", func(t *testing.T) {
		pod := l.waitPod(t, "default", "ghost", 30*time.Second, "ImagePullBackOff", func(p *api.Pod) error {
			if w := containerStatus(p, "main").State.Waiting; w == nil || w.Reason != "ImagePullBackOff" {
				return fmt.Errorf("%s", describeContainers(p))
			}
			return nil
		})
		if pod.Status.Phase != api.PodPending {
			t.Errorf("phase = %s", pod.Status.Phase)
		}
	})

	t.Run("graceful delete ends with SIGKILL after the grace period", func(t *testing.T) {
		pod := l.waitRunning(t, "default", "web")
		id, _, _ := node.agent.ContainerFor("default", "web", "httpd")
		netnsPath := filepath.Join("/run/netns", "kubelite-"+node.name+"-"+pod.UID)
		if _, err := os.Stat(netnsPath); err != nil {
			t.Fatalf("pod netns: %v", err)
		}
		start := time.Now()
		grace := int64(2)
		if err := client.For[api.Pod](l.admin, "default").Delete(ctx, "web", client.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
			t.Fatal(err)
		}
		l.waitGone(t, "default", "web", 30*time.Second)
		took := time.Since(start)
		// busybox httpd as PID 1 ignores SIGTERM: it takes the whole grace
		// period and then SIGKILL.
		if took < 2*time.Second || took > 15*time.Second {
			t.Errorf("deletion took %v; want the 2s grace period and a little", took)
		}
		if _, err := node.agent.Runtime().Status(ctx, id); err == nil {
			t.Error("the container is still in the runtime")
		}
		if _, err := os.Stat(netnsPath); !os.IsNotExist(err) {
			t.Errorf("pod netns left: %v", err)
		}
		ipam := filepath.Join(node.dataDir, "network", "cni", "ipam", "kubelite", pod.Status.PodIP)
		if _, err := os.Stat(ipam); !os.IsNotExist(err) {
			t.Errorf("pod IP %s still allocated: %v", pod.Status.PodIP, err)
		}
		if !hasEvent(t, l, "web", "Killing") {
			t.Error("no Killing event")
		}
	})
}

// Two nodes on one lab switch: a Pod on node1 reaches a Pod on node2
// through the host-gw route, with its own IP as the source.
func TestE2ETwoNodes(t *testing.T) {
	l := newLab(t)
	node1 := l.addNode("node1", "192.168.56.11", "10.244.1.0/24")
	node2 := l.addNode("node2", "192.168.56.12", "10.244.2.0/24")

	node2.createPod(podSpec("server", api.Container{Name: "httpd", Image: "httpd"}))
	node1.createPod(podSpec("client", api.Container{Name: "main", Image: "busybox", Command: []string{"sleep", "3600"}}))
	server := l.waitRunning(t, "default", "server")
	clientPod := l.waitRunning(t, "default", "client")
	if !strings.HasPrefix(server.Status.PodIP, "10.244.2.") || !strings.HasPrefix(clientPod.Status.PodIP, "10.244.1.") {
		t.Fatalf("pod IPs %s and %s are not from their nodes' podCIDRs", server.Status.PodIP, clientPod.Status.PodIP)
	}

	eventually(t, 10*time.Second, "route to node2's pods on node1", func() error {
		routes := run(t, "ip", "-n", node1.netns, "route", "show", "10.244.2.0/24")
		if !strings.Contains(routes, "via 192.168.56.12") {
			return fmt.Errorf("routes: %q", routes)
		}
		return nil
	})
	id, _, err := node1.agent.ContainerFor("default", "client", "main")
	if err != nil {
		t.Fatal(err)
	}
	var page string
	eventually(t, 15*time.Second, "the client pod fetches the server pod's page", func() error {
		page = execIn(t, node1.agent.Runtime(), id, "wget", "-q", "-O-", "http://"+server.Status.PodIP+"/")
		if !strings.Contains(page, "It works!") {
			return fmt.Errorf("page %q", page)
		}
		return nil
	})

	// No masquerade between pods: node2's httpd saw the client pod's IP.
	_, serverLog, err := node2.agent.ContainerFor("default", "server", "httpd")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the server logs the client pod's IP", func() error {
		if data, _ := os.ReadFile(serverLog); !bytes.Contains(data, []byte(clientPod.Status.PodIP)) {
			return fmt.Errorf("server log: %q", data)
		}
		return nil
	})

	// A node that leaves takes its route along.
	if err := client.For[api.Node](l.admin, "").Delete(context.Background(), node2.name, client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the route to a deleted node goes", func() error {
		if routes := run(t, "ip", "-n", node1.netns, "route", "show", "proto", "75"); strings.TrimSpace(routes) != "" {
			return fmt.Errorf("routes: %q", routes)
		}
		return nil
	})
}

// An agent restart: running Pods keep their containers, their IP and
// their open connections; a Pod deleted while the agent was away is
// cleaned up when it comes back.
func TestE2EAgentRestart(t *testing.T) {
	l := newLab(t)
	node := l.addNode("node1", "192.168.56.11", "10.244.1.0/24")
	ctx := context.Background()

	node.createPod(podSpec("keep",
		api.Container{Name: "httpd", Image: "httpd"},
		api.Container{Name: "echo", Image: "busybox", Command: []string{"nc", "-ll", "-p", "9000", "-e", "cat"}}))
	node.createPod(podSpec("gone", api.Container{Name: "httpd", Image: "httpd"}))
	keep := l.waitRunning(t, "default", "keep")
	gone := l.waitRunning(t, "default", "gone")

	conn, err := node.dial(keep.Status.PodIP + ":9000")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	echo := bufio.NewReader(conn)
	roundTrip := func(msg string) {
		t.Helper()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprintln(conn, msg); err != nil {
			t.Fatalf("write %q: %v", msg, err)
		}
		line, err := echo.ReadString('\n')
		if err != nil || line != msg+"\n" {
			t.Fatalf("echo of %q = %q, %v", msg, line, err)
		}
	}
	roundTrip("before the restart")

	node.stop()
	// Deleted while no agent runs: the API server removes it at once.
	if err := client.For[api.Pod](l.admin, "default").Delete(ctx, "gone", client.DeleteOptions{GracePeriodSeconds: api.Ptr[int64](0)}); err != nil {
		t.Fatal(err)
	}
	roundTrip("while the agent is away")
	node.start()
	node.waitStarted()

	goneNetNS := filepath.Join("/run/netns", "kubelite-"+node.name+"-"+gone.UID)
	goneIP := filepath.Join(node.dataDir, "network", "cni", "ipam", "kubelite", gone.Status.PodIP)
	eventually(t, 30*time.Second, "the deleted pod is cleaned up", func() error {
		containers, err := node.agent.Runtime().List(ctx)
		if err != nil {
			return err
		}
		for _, c := range containers {
			if c.PodUID == gone.UID {
				return fmt.Errorf("container %s of the deleted pod is left", c.ID)
			}
		}
		if _, err := os.Stat(goneNetNS); !os.IsNotExist(err) {
			return fmt.Errorf("its netns is left (%v)", err)
		}
		if _, err := os.Stat(goneIP); !os.IsNotExist(err) {
			return fmt.Errorf("its IP %s is still allocated (%v)", gone.Status.PodIP, err)
		}
		// Count links, not lines: ip also prints "Peer netns reference is
		// invalid" for unrelated namespaces that other tests removed.
		if veths := run(t, "ip", "-n", node.netns, "-o", "link", "show", "master", "kl-"+node.name); strings.Count(veths, "master kl-"+node.name) != 1 {
			return fmt.Errorf("veths on the pods' bridge: want only the kept pod's:\n%s", veths)
		}
		return nil
	})

	after := l.waitRunning(t, "default", "keep")
	if after.Status.PodIP != keep.Status.PodIP {
		t.Errorf("pod IP changed across the restart: %s → %s", keep.Status.PodIP, after.Status.PodIP)
	}
	for _, name := range []string{"httpd", "echo"} {
		before, now := containerStatus(keep, name), containerStatus(after, name)
		if now.ContainerID != before.ContainerID || now.RestartCount != 0 {
			t.Errorf("container %s: %s (restarts %d) after the restart; was %s", name, now.ContainerID, now.RestartCount, before.ContainerID)
		}
	}
	containers, err := node.agent.Runtime().List(ctx)
	if err != nil || len(containers) != 2 {
		t.Errorf("runtime has %d containers (%v); want the kept pod's 2", len(containers), err)
	}
	roundTrip("after the restart")
	if page, err := node.httpGet("http://" + after.Status.PodIP + "/"); err != nil || !strings.Contains(page, "It works!") {
		t.Errorf("GET after the restart = %q, %v", page, err)
	}
}

// execIn runs a command in a container and returns its standard output.
func execIn(t *testing.T, rt runtime.Interface, id string, cmd ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer // one writer per stream: they are copied concurrently
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, err := rt.Exec(ctx, id, runtime.ExecConfig{Cmd: cmd, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatalf("exec %q: %v", cmd, err)
	}
	if code != 0 {
		t.Logf("exec %q exited with %d: %s", cmd, code, stderr.String())
	}
	return stdout.String()
}

// readLog returns a CRI log file's whole lines.
func readLog(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	lines, err := runtime.ReadLog(f)
	if err != nil {
		t.Fatalf("%s is not a CRI log: %v", path, err)
	}
	var out []string
	for _, line := range lines {
		out = append(out, string(line.Content))
	}
	return out
}

// hasEvent reports whether an Event with reason was recorded for the Pod.
func hasEvent(t *testing.T, l *lab, pod, reason string) bool {
	t.Helper()
	events, err := client.For[api.Event](l.admin, "default").List(context.Background(), client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if e.InvolvedObject.Name == pod && e.Reason == reason {
			return true
		}
	}
	return false
}
