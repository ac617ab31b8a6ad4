package podworker

// Table tests of the pure parts: back-off, status computation, environment
// and the Pod's files.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"kubelite/api"
	"kubelite/nodeagent/runtime"
)

func TestBackOffRestarts(t *testing.T) {
	b := NewBackOff(10*time.Second, 5*time.Minute)
	t0 := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	// Each step: a container exited at exit; at now, must it wait, and until when?
	steps := []struct {
		exit, now time.Duration
		wait      bool
		until     time.Duration
		restart   bool // the agent restarts it (Next) at now
	}{
		{exit: 0, now: 0, wait: false, restart: true}, // first crash: at once
		{exit: 2 * time.Second, now: 2 * time.Second, wait: true, until: 12 * time.Second},
		{exit: 2 * time.Second, now: 12 * time.Second, wait: false, restart: true}, // 10 s later
		{exit: 13 * time.Second, now: 13 * time.Second, wait: true, until: 33 * time.Second},
		{exit: 13 * time.Second, now: 33 * time.Second, wait: false, restart: true}, // 20 s
		{exit: 34 * time.Second, now: 34 * time.Second, wait: true, until: 74 * time.Second},
	}
	for i, s := range steps {
		wait, until := b.InBackOffSince("c", at(s.exit), at(s.now))
		if wait != s.wait || (wait && !until.Equal(at(s.until))) {
			t.Errorf("step %d: wait %v until %v; want %v until %v", i, wait, until.Sub(t0), s.wait, s.until)
		}
		if s.restart {
			b.Next("c", at(s.exit))
		}
	}

	// The delay stops growing at the maximum.
	for range 10 {
		b.Next("c", at(time.Minute))
	}
	if d := b.Delay("c"); d != 5*time.Minute {
		t.Errorf("delay = %v; want the 5m maximum", d)
	}
	// A container that ran for more than twice the maximum starts over.
	if wait, _ := b.InBackOffSince("c", at(12*time.Minute), at(12*time.Minute)); wait {
		t.Error("still backing off after a long run")
	}
	b.Next("c", at(12*time.Minute))
	if d := b.Delay("c"); d != 10*time.Second {
		t.Errorf("delay after a long run = %v; want 10s", d)
	}
	b.Reset("c")
	if d := b.Delay("c"); d != 0 {
		t.Errorf("delay after Reset = %v", d)
	}
}

func TestBackOffPulls(t *testing.T) {
	b := NewBackOff(10*time.Second, 5*time.Minute)
	t0 := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	if wait, _ := b.InBackOffSinceUpdate("img", t0); wait {
		t.Error("backing off before any failure")
	}
	b.Next("img", t0) // the first pull failed
	if wait, until := b.InBackOffSinceUpdate("img", t0.Add(time.Second)); !wait || !until.Equal(t0.Add(10*time.Second)) {
		t.Errorf("1 s after the failure: wait %v until %v", wait, until)
	}
	if wait, _ := b.InBackOffSinceUpdate("img", t0.Add(10*time.Second)); wait {
		t.Error("still backing off after 10 s")
	}
}

func running(id string, attempt int, started time.Time) *containerRecord {
	return &containerRecord{id: id, attempt: attempt, image: "docker.io/library/httpd:latest", imageID: "docker.io/library/httpd@sha256:1",
		status: runtime.ContainerStatus{State: runtime.StateRunning, StartedAt: started}}
}

func exitedRecord(id string, attempt, code int, started, finished time.Time) *containerRecord {
	return &containerRecord{id: id, attempt: attempt, image: "docker.io/library/httpd:latest", imageID: "docker.io/library/httpd@sha256:1",
		status: runtime.ContainerStatus{State: runtime.StateExited, ExitCode: code, StartedAt: started, FinishedAt: finished}}
}

func TestComputeStatus(t *testing.T) {
	now := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	earlier := now.Add(-time.Minute)
	spec := &api.Container{Name: "httpd", Image: "httpd"}
	pod := testPod("web", *spec)

	tests := []struct {
		name       string
		policy     string
		views      []containerView
		wantPhase  string
		wantReady  string
		wantStates []string
	}{
		{"nothing created yet", api.RestartAlways, []containerView{{spec: spec}},
			api.PodPending, "False", []string{"waiting:ContainerCreating"}},
		{"image pull failed", api.RestartAlways, []containerView{{spec: spec, waiting: &api.ContainerStateWaiting{Reason: ReasonErrImagePull}}},
			api.PodPending, "False", []string{"waiting:ErrImagePull"}},
		{"running and ready", api.RestartAlways, []containerView{{spec: spec, current: running("a", 0, earlier), started: true, ready: true}},
			api.PodRunning, "True", []string{"running"}},
		{"running, readiness failing", api.RestartAlways, []containerView{{spec: spec, current: running("a", 0, earlier), started: true}},
			api.PodRunning, "False", []string{"running"}},
		{"crash looping", api.RestartAlways, []containerView{{spec: spec, current: exitedRecord("a", 3, 1, earlier, now),
			waiting: &api.ContainerStateWaiting{Reason: ReasonCrashLoopBackOff}}},
			api.PodRunning, "False", []string{"waiting:CrashLoopBackOff"}},
		{"completed, Never", api.RestartNever, []containerView{{spec: spec, current: exitedRecord("a", 0, 0, earlier, now)}},
			api.PodSucceeded, "False", []string{"terminated:Completed:0"}},
		{"failed, Never", api.RestartNever, []containerView{{spec: spec, current: exitedRecord("a", 0, 2, earlier, now)}},
			api.PodFailed, "False", []string{"terminated:Error:2"}},
		{"one of two running", api.RestartNever, []containerView{
			{spec: spec, current: exitedRecord("a", 0, 0, earlier, now)},
			{spec: &api.Container{Name: "side", Image: "busybox"}, current: running("b", 0, earlier), started: true, ready: true}},
			api.PodRunning, "False", []string{"terminated:Completed:0", "running"}},
		{"one of two not created", api.RestartAlways, []containerView{
			{spec: spec, current: running("a", 0, earlier), started: true, ready: true},
			{spec: &api.Container{Name: "side", Image: "busybox"}}},
			api.PodPending, "False", []string{"running", "waiting:ContainerCreating"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := api.DeepCopy(pod)
			p.Spec.RestartPolicy = tt.policy
			status := computeStatus(statusInput{pod: p, hostIP: "192.168.56.11", podIP: "10.244.1.5", containers: tt.views, now: now})
			if status.Phase != tt.wantPhase {
				t.Errorf("phase = %s; want %s", status.Phase, tt.wantPhase)
			}
			if c := findCondition(status.Conditions, api.PodReady); c == nil || c.Status != tt.wantReady {
				t.Errorf("Ready = %+v; want %s", c, tt.wantReady)
			}
			if c := findCondition(status.Conditions, api.ContainersReady); c == nil || c.Status != tt.wantReady {
				t.Errorf("ContainersReady = %+v; want %s", c, tt.wantReady)
			}
			var states []string
			for _, cs := range status.ContainerStatuses {
				states = append(states, containerState(cs))
			}
			if fmt.Sprint(states) != fmt.Sprint(tt.wantStates) {
				t.Errorf("states = %v; want %v", states, tt.wantStates)
			}
		})
	}
}

func TestComputeStatusDetails(t *testing.T) {
	now := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	start := now.Add(-time.Hour)
	spec := &api.Container{Name: "httpd", Image: "httpd"}
	pod := testPod("web", *spec)
	pod.Status.StartTime = &api.Time{Time: start}
	pod.Status.Conditions = []api.PodCondition{
		{Type: api.PodReady, Status: api.ConditionTrue, LastTransitionTime: api.NewTime(start)},
		{Type: api.PodScheduled, Status: api.ConditionTrue, LastTransitionTime: api.NewTime(start.Add(-time.Second))},
	}
	view := containerView{
		spec:     spec,
		current:  running("c2", 2, now.Add(-time.Minute)),
		previous: exitedRecord("c1", 1, 137, now.Add(-2*time.Minute), now.Add(-time.Minute)),
		started:  true, ready: true,
	}
	status := computeStatus(statusInput{pod: pod, hostIP: "192.168.56.11", podIP: "10.244.1.5", containers: []containerView{view}, now: now})

	if !status.StartTime.Equal(start) {
		t.Errorf("startTime = %v; want it kept (%v)", status.StartTime, start)
	}
	if c := findCondition(status.Conditions, api.PodReady); !c.LastTransitionTime.Equal(start) {
		t.Errorf("Ready's lastTransitionTime = %v; want it kept while the status stays", c.LastTransitionTime)
	}
	if c := findCondition(status.Conditions, api.PodInitialized); !c.LastTransitionTime.Equal(now) {
		t.Errorf("a new condition's lastTransitionTime = %v; want now", c.LastTransitionTime)
	}
	var order []string
	for _, c := range status.Conditions {
		order = append(order, c.Type)
	}
	if strings.Join(order, ",") != "Initialized,Ready,ContainersReady,PodScheduled" {
		t.Errorf("conditions = %v", order)
	}
	cs := status.ContainerStatuses[0]
	if cs.ContainerID != "containerd://c2" || cs.RestartCount != 2 || cs.ImageID != "docker.io/library/httpd@sha256:1" ||
		cs.LastState.Terminated == nil || cs.LastState.Terminated.ExitCode != 137 || cs.LastState.Terminated.ContainerID != "containerd://c1" {
		t.Errorf("container status = %+v (last %+v)", cs, cs.LastState.Terminated)
	}
	if status.PodIPs[0].IP != "10.244.1.5" || status.QOSClass != "BestEffort" {
		t.Errorf("status = %+v", status)
	}
}

func TestQOSClass(t *testing.T) {
	withResources := func(requests, limits api.ResourceList) *api.Pod {
		return &api.Pod{Spec: api.PodSpec{Containers: []api.Container{{Resources: api.ResourceRequirements{Requests: requests, Limits: limits}}}}}
	}
	tests := []struct {
		pod  *api.Pod
		want string
	}{
		{withResources(nil, nil), "BestEffort"},
		{withResources(api.ResourceList{"cpu": "100m"}, nil), "Burstable"},
		{withResources(api.ResourceList{"cpu": "1", "memory": "1Gi"}, api.ResourceList{"cpu": "1", "memory": "1Gi"}), "Guaranteed"},
		{withResources(nil, api.ResourceList{"cpu": "1", "memory": "1Gi"}), "Guaranteed"},
		{withResources(api.ResourceList{"cpu": "500m"}, api.ResourceList{"cpu": "1", "memory": "1Gi"}), "Burstable"},
	}
	for i, tt := range tests {
		if got := qosClass(tt.pod); got != tt.want {
			t.Errorf("case %d: %s; want %s", i, got, tt.want)
		}
	}
}

func TestImageID(t *testing.T) {
	tests := []struct {
		img  runtime.Image
		want string
	}{
		{runtime.Image{Name: "docker.io/library/httpd:latest", Digest: "sha256:ab"}, "docker.io/library/httpd@sha256:ab"},
		{runtime.Image{Name: "registry:5000/team/app:1.2", Digest: "sha256:cd"}, "registry:5000/team/app@sha256:cd"},
		{runtime.Image{Name: "registry:5000/app", Digest: "sha256:ef"}, "registry:5000/app@sha256:ef"},
		{runtime.Image{Name: "x"}, ""},
	}
	for _, tt := range tests {
		if got := imageID(tt.img); got != tt.want {
			t.Errorf("imageID(%+v) = %q; want %q", tt.img, got, tt.want)
		}
	}
}

func TestContainerEnv(t *testing.T) {
	pod := testPod("web-1")
	pod.Labels = map[string]string{"run": "httpd", "tier": "web"}
	pod.Spec.NodeName = "node1"
	fieldRef := func(path string) *api.EnvVarSource {
		return &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: path}}
	}
	c := &api.Container{Env: []api.EnvVar{
		{Name: "POD_IP", ValueFrom: fieldRef("status.podIP")},
		{Name: "POD_NAME", ValueFrom: fieldRef("metadata.name")},
		{Name: "POD_NAMESPACE", ValueFrom: fieldRef("metadata.namespace")},
		{Name: "NODE", ValueFrom: fieldRef("spec.nodeName")},
		{Name: "HOST_IP", ValueFrom: fieldRef("status.hostIP")},
		{Name: "RUN", ValueFrom: fieldRef("metadata.labels['run']")},
		{Name: "URL", Value: "http://$(POD_IP):80/$(LATER)"},
		{Name: "ESCAPED", Value: "$$(POD_IP) costs $5"},
		{Name: "LATER", Value: "x"},
	}}
	env, err := containerEnv(c, podFields{pod: pod, podIP: "10.244.1.5", hostIP: "192.168.56.11"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"POD_IP=10.244.1.5", "POD_NAME=web-1", "POD_NAMESPACE=default", "NODE=node1", "HOST_IP=192.168.56.11", "RUN=httpd",
		"URL=http://10.244.1.5:80/$(LATER)", // only variables defined before it expand
		"ESCAPED=$(POD_IP) costs $5",
		"LATER=x",
	}
	if fmt.Sprint(env) != fmt.Sprint(want) {
		t.Errorf("env:\n%q\nwant:\n%q", env, want)
	}
	if got := expandArgs([]string{"echo", "$(POD_NAME) on $(NODE)", "$(UNSET)", "$$(NODE)"}, env); fmt.Sprint(got) != fmt.Sprint([]string{"echo", "web-1 on node1", "$(UNSET)", "$(NODE)"}) {
		t.Errorf("args = %q", got)
	}
	labels, _ := podFields{pod: pod}.value("metadata.labels")
	if labels != "run=\"httpd\"\ntier=\"web\"" {
		t.Errorf("metadata.labels = %q", labels)
	}
	if _, err := containerEnv(&api.Container{Env: []api.EnvVar{{Name: "X", ValueFrom: fieldRef("spec.secret")}}}, podFields{pod: pod}); err == nil {
		t.Error("an unknown fieldRef was accepted")
	}
}

func TestResolvConf(t *testing.T) {
	host := []byte("# generated\nnameserver 192.168.1.1\nnameserver 192.168.1.2\nsearch lab.example\noptions edns0\n")
	dns := DNSSettings{ClusterDNS: []string{"10.96.0.10"}, ClusterDomain: "cluster.local", HostResolvConf: host}
	value := "2"
	tests := []struct {
		name   string
		change func(*api.Pod)
		dns    DNSSettings
		want   string
	}{
		{"ClusterFirst", func(p *api.Pod) {}, dns,
			"nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"},
		{"Default", func(p *api.Pod) { p.Spec.DNSPolicy = api.DNSDefault }, dns,
			"nameserver 192.168.1.1\nnameserver 192.168.1.2\nsearch lab.example\noptions edns0\n"},
		{"hostNetwork falls back to the node's", func(p *api.Pod) { p.Spec.HostNetwork = true }, dns,
			"nameserver 192.168.1.1\nnameserver 192.168.1.2\nsearch lab.example\noptions edns0\n"},
		{"ClusterFirstWithHostNet", func(p *api.Pod) { p.Spec.HostNetwork = true; p.Spec.DNSPolicy = api.DNSClusterFirstWithHostNet }, dns,
			"nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"},
		{"None with dnsConfig", func(p *api.Pod) {
			p.Spec.DNSPolicy = api.DNSNone
			p.Spec.DNSConfig = &api.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: []string{"example.org"},
				Options: []api.PodDNSConfigOption{{Name: "ndots", Value: &value}}}
		}, dns,
			"nameserver 1.1.1.1\nsearch example.org\noptions ndots:2\n"},
		{"dnsConfig adds to ClusterFirst", func(p *api.Pod) {
			p.Spec.DNSConfig = &api.PodDNSConfig{Searches: []string{"example.org"},
				Options: []api.PodDNSConfigOption{{Name: "ndots", Value: &value}, {Name: "edns0"}}}
		}, dns,
			"nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local example.org\noptions ndots:2 edns0\n"},
		{"no cluster DNS configured", func(p *api.Pod) {}, DNSSettings{HostResolvConf: host},
			"nameserver 192.168.1.1\nnameserver 192.168.1.2\nsearch lab.example\noptions edns0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod("web")
			pod.Namespace = "shop"
			tt.change(pod)
			if got := string(resolvConf(pod, tt.dns)); got != tt.want {
				t.Errorf("resolv.conf:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestHostsFileAndHostname(t *testing.T) {
	pod := testPod("web-1")
	hosts := string(hostsFile(pod, "10.244.1.5", "cluster.local"))
	if !strings.HasPrefix(hosts, "# Kubernetes-managed hosts file") || !strings.Contains(hosts, "127.0.0.1\tlocalhost\n") ||
		!strings.HasSuffix(hosts, "10.244.1.5\tweb-1\n") {
		t.Errorf("hosts:\n%s", hosts)
	}
	pod.Spec.Hostname, pod.Spec.Subdomain = "db-0", "db"
	if hosts := string(hostsFile(pod, "10.244.1.5", "cluster.local.")); !strings.HasSuffix(hosts, "10.244.1.5\tdb-0.db.default.svc.cluster.local\tdb-0\n") {
		t.Errorf("hosts with a subdomain:\n%s", hosts)
	}
	long := testPod(strings.Repeat("a", 62) + "-bbbb")
	if got := podHostname(long); len(got) > 63 || strings.HasSuffix(got, "-") {
		t.Errorf("hostname %q", got)
	}
}

func TestShouldRestart(t *testing.T) {
	tests := []struct {
		policy string
		code   int
		want   bool
	}{
		{api.RestartAlways, 0, true}, {api.RestartAlways, 1, true},
		{api.RestartOnFailure, 0, false}, {api.RestartOnFailure, 137, true},
		{api.RestartNever, 0, false}, {api.RestartNever, 1, false},
	}
	for _, tt := range tests {
		if got := shouldRestart(tt.policy, tt.code); got != tt.want {
			t.Errorf("shouldRestart(%s, %d) = %v", tt.policy, tt.code, got)
		}
	}
}

func TestPodPhaseWithInitContainers(t *testing.T) {
	running := api.ContainerStatus{State: api.ContainerState{Running: &api.ContainerStateRunning{}}}
	waiting := api.ContainerStatus{State: api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: ReasonContainerCreating}}}
	completed := api.ContainerStatus{State: api.ContainerState{Terminated: &api.ContainerStateTerminated{ExitCode: 0}}}
	failed := api.ContainerStatus{State: api.ContainerState{Terminated: &api.ContainerStateTerminated{ExitCode: 1}}}
	tests := []struct {
		name   string
		policy string
		init   []api.ContainerStatus
		app    []api.ContainerStatus
		want   string
	}{
		{"init running", api.RestartAlways, []api.ContainerStatus{running}, []api.ContainerStatus{waiting}, api.PodPending},
		{"init done", api.RestartAlways, []api.ContainerStatus{completed}, []api.ContainerStatus{running}, api.PodRunning},
		{"init failed, Never", api.RestartNever, []api.ContainerStatus{failed}, []api.ContainerStatus{waiting}, api.PodFailed},
		{"init failed, Always: retried", api.RestartAlways, []api.ContainerStatus{failed}, []api.ContainerStatus{waiting}, api.PodPending},
		{"second init pending", api.RestartNever, []api.ContainerStatus{completed, waiting}, []api.ContainerStatus{waiting}, api.PodPending},
	}
	for _, tt := range tests {
		if got := podPhase(tt.policy, tt.init, tt.app); got != tt.want {
			t.Errorf("%s: %s; want %s", tt.name, got, tt.want)
		}
	}
}

// The echo of the worker's own status write does not wake it; a change of
// spec, labels or deletion does.
func TestDesiredStateChanged(t *testing.T) {
	pod := testPod("web", httpd())
	statusOnly := api.DeepCopy(pod)
	statusOnly.ResourceVersion = "42"
	statusOnly.Status.Phase = api.PodRunning
	if desiredStateChanged(pod, statusOnly) {
		t.Error("a status-only update counts as a change")
	}
	deleting := api.DeepCopy(pod)
	now := api.Now()
	deleting.DeletionTimestamp = &now
	newImage := api.DeepCopy(pod)
	newImage.Spec.Containers[0].Image = "httpd:2.4"
	labelled := api.DeepCopy(pod)
	labelled.Labels = map[string]string{"run": "httpd"}
	for name, next := range map[string]*api.Pod{"deletion": deleting, "image": newImage, "labels": labelled} {
		if !desiredStateChanged(pod, next) {
			t.Errorf("%s: not a change", name)
		}
	}
}
