package podworker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kubelite/api"
)

// harness runs a Manager over the fakes.
type harness struct {
	t   *testing.T
	rt  *fakeRuntime
	net *fakeNetwork
	api *fakeAPI
	rec *fakeRecorder
	m   *Manager
	dir string
}

func newHarness(t *testing.T, rt *fakeRuntime, configure ...func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, rt: rt, net: newFakeNetwork(), api: &fakeAPI{pods: map[string]*api.Pod{}}, rec: &fakeRecorder{}, dir: t.TempDir()}
	cfg := Config{
		NodeName:           "node1",
		NodeIP:             "192.168.56.11",
		HostNetNSPath:      "/proc/1/ns/net",
		DNS:                DNSSettings{ClusterDNS: []string{"10.96.0.10"}, ClusterDomain: "cluster.local"},
		PodsDir:            filepath.Join(h.dir, "pods"),
		LogsDir:            filepath.Join(h.dir, "logs"),
		Runtime:            rt,
		Network:            h.net,
		API:                h.api,
		Recorder:           h.rec,
		ResyncPeriod:       time.Minute, // the tests rely on wake-ups, not on resyncs
		BackOffInitial:     100 * time.Millisecond,
		BackOffMax:         400 * time.Millisecond,
		MinimumGracePeriod: 10 * time.Millisecond,
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, c := range configure {
		c(&cfg)
	}
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	h.api.feed = m.UpdatePod
	h.api.remove = m.RemovePod
	return h
}

// start runs the Manager until the test ends.
func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.m.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("Run: %v", err)
		}
	})
}

func (h *harness) waitStatus(uid, what string, cond func(api.PodStatus) error) api.PodStatus {
	h.t.Helper()
	var status api.PodStatus
	eventually(h.t, 5*time.Second, what, func() error {
		pod := h.api.get(uid)
		if pod == nil {
			return errors.New("pod is gone")
		}
		status = pod.Status
		return cond(status)
	})
	return status
}

func testPod(name string, containers ...api.Container) *api.Pod {
	pod := &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default", UID: "uid-" + name},
		Spec:       api.PodSpec{NodeName: "node1", Containers: containers, RestartPolicy: api.RestartAlways},
	}
	api.DefaultPodSpec(&pod.Spec)
	return pod
}

func httpd() api.Container { return api.Container{Name: "httpd", Image: "httpd"} }

// containerState sums up a container status: "running", "waiting:Reason",
// "terminated:Reason:code".
func containerState(cs api.ContainerStatus) string {
	switch {
	case cs.State.Running != nil:
		return "running"
	case cs.State.Waiting != nil:
		return "waiting:" + cs.State.Waiting.Reason
	case cs.State.Terminated != nil:
		return fmt.Sprintf("terminated:%s:%d", cs.State.Terminated.Reason, cs.State.Terminated.ExitCode)
	}
	return "none"
}

func firstContainer(s api.PodStatus) api.ContainerStatus {
	if len(s.ContainerStatuses) == 0 {
		return api.ContainerStatus{}
	}
	return s.ContainerStatuses[0]
}

func TestPodRuns(t *testing.T) {
	h := newHarness(t, newFakeRuntime("httpd", "busybox"))
	h.start()
	sidecar := api.Container{Name: "sidecar", Image: "busybox", Command: []string{"sh", "-c", "echo $(POD_IP) $(MISSING)"},
		Env: []api.EnvVar{{Name: "POD_IP", ValueFrom: &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: "status.podIP"}}}}}
	pod := h.api.create(testPod("web", httpd(), sidecar))

	status := h.waitStatus(pod.UID, "pod running and ready", func(s api.PodStatus) error {
		if s.Phase != api.PodRunning || !(&api.Pod{Status: s}).IsReady() {
			return fmt.Errorf("phase %s, conditions %+v", s.Phase, s.Conditions)
		}
		return nil
	})
	if status.PodIP != "10.244.1.2" || status.HostIP != "192.168.56.11" || len(status.PodIPs) != 1 || status.StartTime == nil {
		t.Errorf("status = %+v", status)
	}
	for i, name := range []string{"httpd", "sidecar"} {
		cs := status.ContainerStatuses[i]
		if cs.Name != name || !cs.Ready || cs.RestartCount != 0 || !strings.HasPrefix(cs.ContainerID, "containerd://c") ||
			cs.Started == nil || !*cs.Started || cs.ImageID == "" {
			t.Errorf("container status %d = %+v", i, cs)
		}
	}
	if got := status.ContainerStatuses[0].Image; got != "docker.io/library/httpd:latest" {
		t.Errorf("image = %q", got)
	}
	for _, reason := range []string{"Pulled", "Created", "Started"} {
		if !h.rec.has(reason, "") {
			t.Errorf("no %s event", reason)
		}
	}

	c := h.rt.running()["web/sidecar"]
	if c == nil {
		t.Fatal("sidecar is not running")
	}
	if got := strings.Join(c.spec.Command, " "); got != "sh -c echo 10.244.1.2 $(MISSING)" {
		t.Errorf("command = %q", got)
	}
	if c.spec.NetNSPath != "/run/netns/test-uid-web" || c.spec.Hostname != "web" || c.spec.Attempt != 0 {
		t.Errorf("spec = %+v", c.spec)
	}
	resolv, _ := os.ReadFile(c.spec.ResolvConfPath)
	if string(resolv) != "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n" {
		t.Errorf("resolv.conf = %q", resolv)
	}
	if hosts, _ := os.ReadFile(c.spec.HostsPath); !strings.Contains(string(hosts), "10.244.1.2\tweb\n") {
		t.Errorf("hosts = %q", hosts)
	}
	wantLog := filepath.Join(h.dir, "logs", "default_web_uid-web", "sidecar", "0.log")
	id, logPath := mustContainerFor(t, h.m, "default", "web", "sidecar")
	if id != c.id || logPath != wantLog {
		t.Errorf("ContainerFor = %q, %q; want %q, %q", id, logPath, c.id, wantLog)
	}
	if _, _, err := h.m.ContainerFor("default", "web", "nope"); !errors.Is(err, ErrContainerNotFound) {
		t.Errorf("ContainerFor a missing container: %v", err)
	}
	if _, _, err := h.m.ContainerFor("default", "nope", "httpd"); !errors.Is(err, ErrPodNotFound) {
		t.Errorf("ContainerFor a missing pod: %v", err)
	}

	// Nothing changes: no more status writes.
	rv := h.api.get(pod.UID).ResourceVersion
	h.m.UpdatePod(h.api.get(pod.UID))
	time.Sleep(50 * time.Millisecond)
	if got := h.api.get(pod.UID).ResourceVersion; got != rv {
		t.Errorf("status written again without a change (resourceVersion %s → %s)", rv, got)
	}
}

func mustContainerFor(t *testing.T, m *Manager, ns, pod, container string) (string, string) {
	t.Helper()
	current, _, err := m.ContainerFor(ns, pod, container)
	if err != nil {
		t.Fatal(err)
	}
	return current.ID, current.LogPath
}

// A crashing container restarts at once the first time, then only after
// a growing back-off, shown as CrashLoopBackOff with the last exit.
func TestCrashLoopBackOff(t *testing.T) {
	h := newHarness(t, newFakeRuntime("busybox"))
	h.start()
	pod := h.api.create(testPod("crasher", api.Container{Name: "main", Image: "busybox"}))
	eventually(t, 5*time.Second, "started", func() error {
		if h.rt.running()["crasher/main"] == nil {
			return errors.New("not running")
		}
		return nil
	})

	h.rt.exit(h.rt.running()["crasher/main"].id, 1)
	status := h.waitStatus(pod.UID, "restarted at once", func(s api.PodStatus) error {
		cs := firstContainer(s)
		if cs.RestartCount != 1 || containerState(cs) != "running" {
			return fmt.Errorf("%s, restarts %d", containerState(cs), cs.RestartCount)
		}
		return nil
	})
	last := firstContainer(status).LastState.Terminated
	if last == nil || last.ExitCode != 1 || last.Reason != ReasonError {
		t.Errorf("lastState = %+v; want exit 1 (Error)", last)
	}

	exitedAt := time.Now()
	h.rt.exit(h.rt.running()["crasher/main"].id, 2)
	status = h.waitStatus(pod.UID, "backing off", func(s api.PodStatus) error {
		if got := containerState(firstContainer(s)); got != "waiting:CrashLoopBackOff" {
			return errors.New(got)
		}
		return nil
	})
	cs := firstContainer(status)
	if cs.LastState.Terminated == nil || cs.LastState.Terminated.ExitCode != 2 || cs.RestartCount != 1 {
		t.Errorf("during back-off: %+v", cs)
	}
	if status.Phase != api.PodRunning || (&api.Pod{Status: status}).IsReady() {
		t.Errorf("phase %s, ready %v; want Running and not ready", status.Phase, (&api.Pod{Status: status}).IsReady())
	}
	if !h.rec.has("BackOff", "Back-off restarting failed container main") {
		t.Error("no BackOff event")
	}
	h.waitStatus(pod.UID, "restarted after the back-off", func(s api.PodStatus) error {
		if cs := firstContainer(s); cs.RestartCount != 2 || containerState(cs) != "running" {
			return fmt.Errorf("%s, restarts %d", containerState(cs), cs.RestartCount)
		}
		return nil
	})
	if waited := time.Since(exitedAt); waited < 100*time.Millisecond {
		t.Errorf("restarted %v after the exit; want at least the 100ms back-off", waited)
	}
	// Only the current attempt and the previous one are kept.
	if n := h.rt.count(); n != 2 {
		t.Errorf("%d containers in the runtime; want 2", n)
	}
}

func TestRestartPolicies(t *testing.T) {
	tests := []struct {
		policy    string
		exitCode  int
		wantPhase string
		wantState string
	}{
		{api.RestartNever, 0, api.PodSucceeded, "terminated:Completed:0"},
		{api.RestartNever, 3, api.PodFailed, "terminated:Error:3"},
		{api.RestartOnFailure, 0, api.PodSucceeded, "terminated:Completed:0"},
		{api.RestartOnFailure, 3, api.PodRunning, "running"},
		{api.RestartAlways, 0, api.PodRunning, "running"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s exit %d", tt.policy, tt.exitCode), func(t *testing.T) {
			h := newHarness(t, newFakeRuntime("busybox"))
			h.start()
			pod := testPod("job", api.Container{Name: "main", Image: "busybox"})
			pod.Spec.RestartPolicy = tt.policy
			h.api.create(pod)
			eventually(t, 5*time.Second, "started", func() error {
				if h.rt.running()["job/main"] == nil {
					return errors.New("not running")
				}
				return nil
			})
			h.rt.exit(h.rt.running()["job/main"].id, tt.exitCode)
			h.waitStatus(pod.UID, "final state", func(s api.PodStatus) error {
				if got := containerState(firstContainer(s)); s.Phase != tt.wantPhase || got != tt.wantState {
					return fmt.Errorf("phase %s, %s", s.Phase, got)
				}
				return nil
			})
			finished := tt.wantPhase == api.PodSucceeded || tt.wantPhase == api.PodFailed
			if finished {
				eventually(t, 5*time.Second, "network released", func() error {
					if h.net.has(pod.UID) {
						return errors.New("still has its network")
					}
					return nil
				})
				ready := findCondition(h.api.get(pod.UID).Status.Conditions, api.PodReady)
				if ready.Status != api.ConditionFalse || ready.Reason != "PodCompleted" {
					t.Errorf("Ready condition = %+v", ready)
				}
				if h.api.get(pod.UID).Status.PodIP == "" {
					t.Error("a finished pod's status lost its IP")
				}
			}
		})
	}
}

// A missing image gives ErrImagePull, then ImagePullBackOff; the pull is
// tried again after the back-off, and the Pod runs once the image is there.
func TestImagePullBackOff(t *testing.T) {
	rt := newFakeRuntime()
	h := newHarness(t, rt)
	h.start()
	pod := h.api.create(testPod("ghost", api.Container{Name: "main", Image: "127.0.0.1:1/nosuch:1"}))
	h.waitStatus(pod.UID, "ErrImagePull", func(s api.PodStatus) error {
		if got := containerState(firstContainer(s)); got != "waiting:ErrImagePull" {
			return errors.New(got)
		}
		return nil
	})
	status := h.waitStatus(pod.UID, "ImagePullBackOff", func(s api.PodStatus) error {
		if got := containerState(firstContainer(s)); got != "waiting:ImagePullBackOff" {
			return errors.New(got)
		}
		return nil
	})
	if status.Phase != api.PodPending {
		t.Errorf("phase = %s; want Pending", status.Phase)
	}
	if !h.rec.has("Failed", `Failed to pull image "127.0.0.1:1/nosuch:1"`) || !h.rec.has("BackOff", "Back-off pulling image") {
		t.Errorf("events = %+v", h.rec.events)
	}
	pulls := rt.countCalls("EnsureImage")
	rt.addImage("127.0.0.1:1/nosuch:1")
	h.waitStatus(pod.UID, "running once the image is there", func(s api.PodStatus) error {
		if got := containerState(firstContainer(s)); got != "running" {
			return errors.New(got)
		}
		return nil
	})
	if rt.countCalls("EnsureImage") <= pulls {
		t.Error("the pull was not tried again")
	}
}

// A readiness probe decides the Ready condition; a failing liveness probe
// restarts the container.
func TestProbes(t *testing.T) {
	rt := newFakeRuntime("busybox")
	var mu = make(chan struct{}, 1)
	healthy, ready := true, false
	mu <- struct{}{}
	setHealth := func(h, r bool) { <-mu; healthy, ready = h, r; mu <- struct{}{} }
	rt.exec = func(id string, cmd []string) int {
		<-mu
		defer func() { mu <- struct{}{} }()
		ok := ready
		if cmd[0] == "alive" {
			ok = healthy
		}
		if ok {
			return 0
		}
		return 1
	}
	h := newHarness(t, rt)
	h.start()
	fast := func(cmd string) *api.Probe {
		return &api.Probe{ProbeHandler: api.ProbeHandler{Exec: &api.ExecAction{Command: []string{cmd}}},
			PeriodSeconds: 1, FailureThreshold: 1, SuccessThreshold: 1, TimeoutSeconds: 1}
	}
	c := api.Container{Name: "main", Image: "busybox", ReadinessProbe: fast("ready"), LivenessProbe: fast("alive")}
	pod := h.api.create(testPod("probed", c))

	h.waitStatus(pod.UID, "running but not ready", func(s api.PodStatus) error {
		cs := firstContainer(s)
		if containerState(cs) != "running" || cs.Ready || (&api.Pod{Status: s}).IsReady() {
			return fmt.Errorf("%s ready=%v", containerState(cs), cs.Ready)
		}
		return nil
	})
	eventually(t, 5*time.Second, "Unhealthy event", func() error {
		if !h.rec.has("Unhealthy", "Readiness probe failed") {
			return errors.New("none yet")
		}
		return nil
	})
	setHealth(true, true)
	h.waitStatus(pod.UID, "ready", func(s api.PodStatus) error {
		if !(&api.Pod{Status: s}).IsReady() || !firstContainer(s).Ready {
			return errors.New("not ready")
		}
		return nil
	})
	setHealth(false, true)
	h.waitStatus(pod.UID, "restarted by the liveness probe", func(s api.PodStatus) error {
		if cs := firstContainer(s); cs.RestartCount < 1 {
			return fmt.Errorf("restarts %d", cs.RestartCount)
		}
		return nil
	})
	if !h.rec.has("Killing", "failed liveness probe, will be restarted") {
		t.Error("no Killing event")
	}
	setHealth(true, true)
}

// A deleted Pod is stopped within its grace period, its network and
// containers removed, and its deletion confirmed.
func TestGracefulDeletion(t *testing.T) {
	rt := newFakeRuntime("httpd")
	rt.ignoreTERM = true
	h := newHarness(t, rt)
	h.start()
	pod := h.api.create(testPod("web", httpd()))
	h.waitStatus(pod.UID, "running", func(s api.PodStatus) error {
		if s.Phase != api.PodRunning {
			return errors.New(s.Phase)
		}
		return nil
	})
	podDir := filepath.Join(h.dir, "pods", pod.UID)
	if _, err := os.Stat(podDir); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	h.api.modify(pod.UID, func(p *api.Pod) {
		now := api.Now()
		p.DeletionTimestamp = &now
		p.DeletionGracePeriodSeconds = api.Ptr[int64](0) // the minimum (10ms here) applies
		p.Spec.TerminationGracePeriodSeconds = api.Ptr[int64](0)
	})
	eventually(t, 5*time.Second, "deletion confirmed", func() error {
		if !h.api.wasDeleted("web") {
			return errors.New("not yet")
		}
		return nil
	})
	if rt.countCalls("Stop c1 10ms") != 1 {
		t.Errorf("calls = %q; want a Stop with the 10ms minimum grace", rt.calls)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("termination took %v", took)
	}
	if rt.count() != 0 || h.net.has(pod.UID) {
		t.Errorf("left behind: %d containers, network %v", rt.count(), h.net.has(pod.UID))
	}
	if _, err := os.Stat(podDir); !os.IsNotExist(err) {
		t.Errorf("pod folder left: %v", err)
	}
	if !h.rec.has("Killing", "Stopping container httpd") {
		t.Error("no Killing event")
	}
	eventually(t, time.Second, "worker gone", func() error {
		if n := h.m.PodCount(); n != 0 {
			return fmt.Errorf("%d workers", n)
		}
		return nil
	})
	// A late update of the deleted Pod starts nothing again.
	h.m.UpdatePod(pod)
	time.Sleep(20 * time.Millisecond)
	if h.m.PodCount() != 0 || rt.count() != 0 {
		t.Error("a late update revived the pod")
	}
}

func TestPodGracePeriod(t *testing.T) {
	spec30 := testPod("p")
	spec5 := testPod("p")
	spec5.Spec.TerminationGracePeriodSeconds = api.Ptr[int64](5)
	deleting := testPod("p")
	deleting.DeletionGracePeriodSeconds = api.Ptr[int64](3)
	tests := []struct {
		name    string
		pod     *api.Pod
		removed bool
		want    time.Duration
	}{
		{"spec default", spec30, false, 30 * time.Second},
		{"spec", spec5, false, 5 * time.Second},
		{"deletion's grace wins", deleting, false, 3 * time.Second},
		{"force-deleted gets the minimum", deleting, true, 2 * time.Second},
	}
	for _, tt := range tests {
		if got := podGracePeriod(tt.pod, tt.removed, 2*time.Second); got != tt.want {
			t.Errorf("%s: %v; want %v", tt.name, got, tt.want)
		}
	}
}

// An agent restart: the containers and network of running Pods are
// adopted (nothing created again), and what belongs to Pods deleted
// meanwhile is cleaned up without a word to the API.
func TestAdoptionAfterRestart(t *testing.T) {
	rt := newFakeRuntime("httpd")
	first := newHarness(t, rt)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.m.Run(ctx) }()
	keep := first.api.create(testPod("keep", httpd()))
	gone := first.api.create(testPod("gone", httpd()))
	for _, uid := range []string{keep.UID, gone.UID} {
		first.waitStatus(uid, "running", func(s api.PodStatus) error {
			if s.Phase != api.PodRunning {
				return errors.New(s.Phase)
			}
			return nil
		})
	}
	// A crash before the restart, so that there is a previous attempt.
	rt.exit(rt.running()["keep/httpd"].id, 1)
	first.waitStatus(keep.UID, "restarted", func(s api.PodStatus) error {
		if firstContainer(s).RestartCount != 1 || containerState(firstContainer(s)) != "running" {
			return errors.New("not yet")
		}
		return nil
	})
	beforeID := rt.running()["keep/httpd"].id
	beforeStatus := first.api.get(keep.UID).Status
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(rt.running()) != 2 {
		t.Fatalf("the agent's stop stopped containers: %v", rt.running())
	}

	// The second agent: same runtime, network and folders; "gone" was
	// deleted while no agent ran.
	second := newHarness(t, rt, func(c *Config) {
		c.PodsDir, c.LogsDir = first.m.cfg.PodsDir, first.m.cfg.LogsDir
	})
	second.net = first.net
	second.m.cfg.Network = first.net
	second.api.feed, second.api.remove = nil, nil
	second.api.create(first.api.get(keep.UID))
	second.api.feed, second.api.remove = second.m.UpdatePod, second.m.RemovePod
	second.m.UpdatePod(second.api.get(keep.UID))
	creates, adds := rt.countCalls("CreateContainer"), first.net.adds
	second.start()

	eventually(t, 5*time.Second, "the gone pod cleaned up", func() error {
		if rt.running()["gone/httpd"] != nil || first.net.has(gone.UID) {
			return errors.New("still there")
		}
		if _, err := os.Stat(filepath.Join(first.m.cfg.PodsDir, gone.UID)); !os.IsNotExist(err) {
			return errors.New("pod folder still there")
		}
		return nil
	})
	time.Sleep(50 * time.Millisecond) // let the kept pod's worker sync
	if got := rt.running()["keep/httpd"]; got == nil || got.id != beforeID {
		t.Errorf("kept pod's container = %v; want the adopted %s", got, beforeID)
	}
	if rt.countCalls("CreateContainer") != creates || first.net.adds != adds {
		t.Errorf("the restart created containers or networks: %q", rt.calls)
	}
	if second.api.wasDeleted("gone") {
		t.Error("the gone pod's deletion was confirmed to the API")
	}
	after := second.api.get(keep.UID).Status
	if !sameStatus(after, beforeStatus) {
		t.Errorf("status changed across the restart:\n%+v\nwas\n%+v", after, beforeStatus)
	}
	// The adopted container is watched: its exit is seen.
	rt.exit(beforeID, 1)
	second.waitStatus(keep.UID, "restart of an adopted container", func(s api.PodStatus) error {
		if firstContainer(s).RestartCount != 2 {
			return fmt.Errorf("restarts %d", firstContainer(s).RestartCount)
		}
		return nil
	})
}

// A network that cannot be set up is reported and retried.
func TestSandboxFailure(t *testing.T) {
	h := newHarness(t, newFakeRuntime("httpd"))
	h.net.setupErr = errors.New("no IP addresses available in range set")
	h.start()
	pod := h.api.create(testPod("web", httpd()))
	status := h.waitStatus(pod.UID, "waiting", func(s api.PodStatus) error {
		if got := containerState(firstContainer(s)); got != "waiting:ContainerCreating" {
			return errors.New(got)
		}
		return nil
	})
	if status.Phase != api.PodPending || status.PodIP != "" {
		t.Errorf("status = %+v", status)
	}
	eventually(t, time.Second, "event", func() error {
		if !h.rec.has("FailedCreatePodSandBox", "no IP addresses available") {
			return errors.New("none")
		}
		return nil
	})
	h.net.mu.Lock()
	h.net.setupErr = nil
	h.net.mu.Unlock()
	h.waitStatus(pod.UID, "running after a retry", func(s api.PodStatus) error {
		if s.Phase != api.PodRunning {
			return errors.New(s.Phase)
		}
		return nil
	})
}

// A container the runtime cannot start counts as exited with 128
// (StartError) and is retried with the back-off.
func TestStartError(t *testing.T) {
	rt := newFakeRuntime("busybox")
	rt.startErr = errors.New("exec: \"nosuch\": executable file not found in $PATH")
	h := newHarness(t, rt)
	h.start()
	pod := testPod("bad", api.Container{Name: "main", Image: "busybox", Command: []string{"nosuch"}})
	pod.Spec.RestartPolicy = api.RestartNever
	h.api.create(pod)
	status := h.waitStatus(pod.UID, "failed", func(s api.PodStatus) error {
		if s.Phase != api.PodFailed {
			return errors.New(s.Phase)
		}
		return nil
	})
	term := firstContainer(status).State.Terminated
	if term == nil || term.ExitCode != 128 || term.Reason != ReasonStartError || !strings.Contains(term.Message, "nosuch") {
		t.Errorf("terminated = %+v", term)
	}
}

// hostNetwork Pods use the node's namespace and IP; no CNI.
func TestHostNetworkPod(t *testing.T) {
	h := newHarness(t, newFakeRuntime("busybox"))
	h.start()
	pod := testPod("hostnet", api.Container{Name: "main", Image: "busybox"})
	pod.Spec.HostNetwork = true
	h.api.create(pod)
	status := h.waitStatus(pod.UID, "running", func(s api.PodStatus) error {
		if s.Phase != api.PodRunning {
			return errors.New(s.Phase)
		}
		return nil
	})
	c := h.rt.running()["hostnet/main"]
	if status.PodIP != "192.168.56.11" || c.spec.NetNSPath != "/proc/1/ns/net" || c.spec.Hostname != "node1" || h.net.adds != 0 {
		t.Errorf("status %+v, spec %+v, CNI adds %d", status, c.spec, h.net.adds)
	}
}

func TestNewManagerChecksConfig(t *testing.T) {
	_, err := NewManager(Config{})
	for _, want := range []string{"runtime, network, API and recorder", "no pods or logs directory", "no node name"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v; want it to say %q", err, want)
		}
	}
}

// A container that cannot be created is shown as CreateContainerError and
// tried again after a back-off, not at every wake-up.
func TestCreateContainerError(t *testing.T) {
	rt := newFakeRuntime("busybox")
	h := newHarness(t, rt, func(c *Config) { c.BackOffInitial, c.BackOffMax = 10*time.Second, time.Minute })
	h.start()
	bad := api.Container{Name: "main", Image: "busybox",
		Env: []api.EnvVar{{Name: "X", ValueFrom: &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: "spec.secret"}}}}}
	pod := h.api.create(testPod("bad", bad))
	status := h.waitStatus(pod.UID, "CreateContainerError", func(s api.PodStatus) error {
		if got := containerState(firstContainer(s)); got != "waiting:CreateContainerError" {
			return errors.New(got)
		}
		return nil
	})
	if msg := firstContainer(status).State.Waiting.Message; !strings.Contains(msg, "spec.secret") {
		t.Errorf("message = %q", msg)
	}
	pulls := rt.countCalls("EnsureImage")
	for range 5 {
		h.m.UpdatePod(h.api.get(pod.UID)) // wake-ups within the back-off
	}
	time.Sleep(30 * time.Millisecond)
	if got := rt.countCalls("EnsureImage"); got != pulls {
		t.Errorf("%d more attempts within the back-off", got-pulls)
	}
}

// Init containers run one after the other, each to a successful exit,
// before the app containers; a failed one restarts, and with
// restartPolicy Never fails the Pod.
func TestInitContainers(t *testing.T) {
	rt := newFakeRuntime("busybox", "httpd")
	h := newHarness(t, rt)
	h.start()
	pod := testPod("app", httpd())
	pod.Spec.InitContainers = []api.Container{{Name: "migrate", Image: "busybox"}, {Name: "warm", Image: "busybox"}}
	h.api.create(pod)

	runningInit := func(name string) *fakeContainer {
		var c *fakeContainer
		eventually(t, 5*time.Second, name+" runs", func() error {
			if c = rt.running()["app/"+name]; c == nil {
				return errors.New("not running")
			}
			return nil
		})
		return c
	}
	status := h.waitStatus(pod.UID, "initializing", func(s api.PodStatus) error {
		if len(s.InitContainerStatuses) != 2 || containerState(s.InitContainerStatuses[0]) != "running" {
			return fmt.Errorf("init statuses %+v", s.InitContainerStatuses)
		}
		return nil
	})
	if status.Phase != api.PodPending || findCondition(status.Conditions, api.PodInitialized).Status != api.ConditionFalse ||
		containerState(firstContainer(status)) != "waiting:ContainerCreating" {
		t.Errorf("while initializing: phase %s, conditions %+v, app %s", status.Phase, status.Conditions, containerState(firstContainer(status)))
	}
	if rt.running()["app/warm"] != nil || rt.running()["app/httpd"] != nil {
		t.Fatal("later containers started before the first init container completed")
	}

	rt.exit(runningInit("migrate").id, 1) // fails once: restarted
	rt.exit(runningInit("migrate").id, 0)
	rt.exit(runningInit("warm").id, 0)
	status = h.waitStatus(pod.UID, "initialized and running", func(s api.PodStatus) error {
		if s.Phase != api.PodRunning {
			return errors.New(s.Phase)
		}
		return nil
	})
	if c := findCondition(status.Conditions, api.PodInitialized); c.Status != api.ConditionTrue {
		t.Errorf("Initialized = %+v", c)
	}
	if cs := status.InitContainerStatuses[0]; !cs.Ready || cs.RestartCount != 1 || containerState(cs) != "terminated:Completed:0" {
		t.Errorf("first init container = %+v", cs)
	}

	never := testPod("job", api.Container{Name: "main", Image: "busybox"})
	never.Spec.RestartPolicy = api.RestartNever
	never.Spec.InitContainers = []api.Container{{Name: "check", Image: "busybox"}}
	h.api.create(never)
	eventually(t, 5*time.Second, "check runs", func() error {
		if rt.running()["job/check"] == nil {
			return errors.New("not running")
		}
		return nil
	})
	rt.exit(rt.running()["job/check"].id, 3)
	h.waitStatus(never.UID, "failed", func(s api.PodStatus) error {
		if s.Phase != api.PodFailed {
			return errors.New(s.Phase)
		}
		return nil
	})
	if rt.running()["job/main"] != nil {
		t.Error("the app container started after a failed init container")
	}
}

// A container that has exited by the time Start returns is seen to at
// once, not at the next resync: here, init containers that finish at once
// and a main container that completes at once (restartPolicy Never).
func TestContainersThatExitAtOnce(t *testing.T) {
	rt := newFakeRuntime("busybox")
	rt.exitAtOnce = api.Ptr(0)
	h := newHarness(t, rt) // the resync is a minute: only wake-ups count
	h.start()
	pod := testPod("quick", api.Container{Name: "main", Image: "busybox"})
	pod.Spec.RestartPolicy = api.RestartNever
	pod.Spec.InitContainers = []api.Container{{Name: "one", Image: "busybox"}, {Name: "two", Image: "busybox"}}
	h.api.create(pod)
	h.waitStatus(pod.UID, "succeeded", func(s api.PodStatus) error {
		if s.Phase != api.PodSucceeded {
			return fmt.Errorf("phase %s, init %+v", s.Phase, s.InitContainerStatuses)
		}
		return nil
	})
}
