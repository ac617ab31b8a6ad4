package podworker

// Fakes of the runtime, the network, the API and the recorder, in the
// manner of Nomad's mock driver: real implementations of the interfaces,
// configured per test, so the workers run their real logic without
// containers.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"kubelite/api"
	"kubelite/nodeagent/network"
	"kubelite/nodeagent/runtime"
)

type fakeContainer struct {
	id     string
	spec   runtime.ContainerSpec
	status runtime.ContainerStatus
	exited chan struct{} // closed when it stops running
	grace  time.Duration // the grace period Stop was given
}

// fakeRuntime runs pretend containers. A started container runs until the
// test calls exit, or Stop or Remove ends it.
type fakeRuntime struct {
	mu         sync.Mutex
	images     map[string]bool // normalised names present
	pullErr    error           // what pulling an absent image returns
	containers map[string]*fakeContainer
	nextID     int
	calls      []string
	// ignoreTERM makes Stop wait out the grace period (busybox httpd).
	ignoreTERM bool
	// exec answers Exec; nil exits 0.
	exec func(id string, cmd []string) int
	// startErr fails every Start.
	startErr error
	// exitAtOnce makes every started container exit at once with this
	// code, before Start returns (a command that does nothing).
	exitAtOnce *int
}

func newFakeRuntime(images ...string) *fakeRuntime {
	r := &fakeRuntime{images: map[string]bool{}, containers: map[string]*fakeContainer{},
		pullErr: errors.New("dial tcp 127.0.0.1:1: connection refused")}
	for _, img := range images {
		r.images[normalizedImage(img)] = true
	}
	return r
}

func (r *fakeRuntime) record(call string) {
	r.calls = append(r.calls, call)
}

func (r *fakeRuntime) countCalls(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func (r *fakeRuntime) addImage(ref string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.images[normalizedImage(ref)] = true
}

func (r *fakeRuntime) EnsureImage(ctx context.Context, ref string, policy runtime.PullPolicy) (runtime.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name, err := runtime.NormalizeImage(ref)
	if err != nil {
		return runtime.Image{}, err
	}
	r.record("EnsureImage " + name)
	if !r.images[name] {
		return runtime.Image{}, fmt.Errorf("%w: %s: %w", runtime.ErrImagePull, name, r.pullErr)
	}
	return runtime.Image{Name: name, Digest: "sha256:0123"}, nil
}

func (r *fakeRuntime) CreateContainer(ctx context.Context, spec runtime.ContainerSpec) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nextID++
	id := fmt.Sprintf("c%d", r.nextID)
	r.record(fmt.Sprintf("CreateContainer %s/%s attempt %d", spec.PodName, spec.Name, spec.Attempt))
	r.containers[id] = &fakeContainer{id: id, spec: spec, status: runtime.ContainerStatus{State: runtime.StateCreated}, exited: make(chan struct{})}
	return id, nil
}

func (r *fakeRuntime) Start(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record("Start " + id)
	c := r.containers[id]
	if c == nil {
		return runtime.ErrNotFound
	}
	if r.startErr != nil {
		return r.startErr
	}
	c.status = runtime.ContainerStatus{State: runtime.StateRunning, Pid: 42, StartedAt: time.Now()}
	if r.exitAtOnce != nil {
		r.exitLocked(c, *r.exitAtOnce)
	}
	return nil
}

// exit ends a running container with code, as if its process exited.
func (r *fakeRuntime) exit(id string, code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exitLocked(r.containers[id], code)
}

func (r *fakeRuntime) exitLocked(c *fakeContainer, code int) {
	if c == nil || c.status.State != runtime.StateRunning {
		return
	}
	c.status.State = runtime.StateExited
	c.status.ExitCode = code
	c.status.FinishedAt = time.Now()
	close(c.exited)
}

func (r *fakeRuntime) Wait(ctx context.Context, id string) (runtime.ContainerStatus, error) {
	r.mu.Lock()
	c := r.containers[id]
	r.mu.Unlock()
	if c == nil {
		return runtime.ContainerStatus{}, runtime.ErrNotFound
	}
	select {
	case <-c.exited:
	case <-ctx.Done():
		return runtime.ContainerStatus{}, ctx.Err()
	}
	return r.Status(ctx, id)
}

func (r *fakeRuntime) Stop(ctx context.Context, id string, grace time.Duration) error {
	r.mu.Lock()
	r.record(fmt.Sprintf("Stop %s %v", id, grace))
	c := r.containers[id]
	if c == nil || c.status.State != runtime.StateRunning {
		r.mu.Unlock()
		return nil
	}
	c.grace = grace
	ignoreTERM := r.ignoreTERM
	r.mu.Unlock()
	if ignoreTERM {
		select {
		case <-time.After(grace):
		case <-ctx.Done():
			return ctx.Err()
		}
		r.exit(id, 137)
		return nil
	}
	r.exit(id, 143)
	return nil
}

func (r *fakeRuntime) Remove(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record("Remove " + id)
	if c := r.containers[id]; c != nil {
		r.exitLocked(c, 137)
		delete(r.containers, id)
	}
	return nil
}

func (r *fakeRuntime) Status(ctx context.Context, id string) (runtime.ContainerStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.containers[id]
	if c == nil {
		return runtime.ContainerStatus{}, fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
	}
	return c.status, nil
}

func (r *fakeRuntime) List(ctx context.Context) ([]runtime.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []runtime.Container
	for _, c := range r.containers {
		out = append(out, runtime.Container{
			ID: c.id, PodUID: c.spec.PodUID, PodName: c.spec.PodName, PodNamespace: c.spec.PodNamespace,
			Name: c.spec.Name, Attempt: c.spec.Attempt, Image: normalizedImage(c.spec.Image), LogPath: c.spec.LogPath,
			Labels: c.spec.Labels, Status: c.status,
		})
	}
	return out, nil
}

func (r *fakeRuntime) Exec(ctx context.Context, id string, cfg runtime.ExecConfig) (int, error) {
	r.mu.Lock()
	exec := r.exec
	r.mu.Unlock()
	if exec == nil {
		return 0, nil
	}
	return exec(id, cfg.Cmd), nil
}

// running returns the containers that run, by "pod/container".
func (r *fakeRuntime) running() map[string]*fakeContainer {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]*fakeContainer{}
	for _, c := range r.containers {
		if c.status.State == runtime.StateRunning {
			out[c.spec.PodName+"/"+c.spec.Name] = c
		}
	}
	return out
}

func (r *fakeRuntime) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.containers)
}

// fakeNetwork hands out addresses of 10.244.1.0/24 and remembers them.
type fakeNetwork struct {
	mu       sync.Mutex
	pods     map[string]network.PodNetwork
	next     int
	adds     int
	setupErr error
}

func newFakeNetwork() *fakeNetwork {
	return &fakeNetwork{pods: map[string]network.PodNetwork{}, next: 2}
}

func (n *fakeNetwork) SetupPod(ctx context.Context, pod network.Pod) (network.PodNetwork, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if pn, ok := n.pods[pod.UID]; ok {
		return pn, nil
	}
	if n.setupErr != nil {
		return network.PodNetwork{}, n.setupErr
	}
	n.adds++
	pn := network.PodNetwork{
		PodUID: pod.UID, PodNamespace: pod.Namespace, PodName: pod.Name,
		NetNSPath: "/run/netns/test-" + pod.UID, IP: netip.AddrFrom4([4]byte{10, 244, 1, byte(n.next)}),
		SandboxID: fmt.Sprintf("sandbox-%d", n.next),
	}
	n.next++
	n.pods[pod.UID] = pn
	return pn, nil
}

func (n *fakeNetwork) TeardownPod(ctx context.Context, uid string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.pods, uid)
	return nil
}

func (n *fakeNetwork) Pods() ([]string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var uids []string
	for uid := range n.pods {
		uids = append(uids, uid)
	}
	return uids, nil
}

func (n *fakeNetwork) has(uid string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.pods[uid]
	return ok
}

// fakeAPI stores Pods as the API server would and, like an informer,
// hands every stored version back to the Manager.
type fakeAPI struct {
	mu        sync.Mutex
	pods      map[string]*api.Pod // by UID
	rv        int
	deleted   []string
	feed      func(*api.Pod) // the informer: Manager.UpdatePod
	remove    func(*api.Pod) // Manager.RemovePod
	updateErr error
}

func (a *fakeAPI) UpdateStatus(ctx context.Context, pod *api.Pod) (*api.Pod, error) {
	a.mu.Lock()
	if a.updateErr != nil {
		a.mu.Unlock()
		return nil, a.updateErr
	}
	stored := api.DeepCopy(pod)
	if cur := a.pods[pod.UID]; cur != nil {
		stored = api.DeepCopy(cur)
		stored.Status = api.DeepCopy(pod).Status
	}
	a.rv++
	stored.ResourceVersion = fmt.Sprint(a.rv)
	a.pods[pod.UID] = stored
	feed := a.feed
	a.mu.Unlock()
	if feed != nil {
		feed(stored)
	}
	return stored, nil
}

func (a *fakeAPI) ConfirmDeletion(ctx context.Context, pod *api.Pod) error {
	a.mu.Lock()
	a.deleted = append(a.deleted, pod.Name)
	delete(a.pods, pod.UID)
	remove := a.remove
	a.mu.Unlock()
	if remove != nil {
		remove(pod)
	}
	return nil
}

// create stores a new Pod and hands it to the Manager.
func (a *fakeAPI) create(pod *api.Pod) *api.Pod {
	a.mu.Lock()
	a.rv++
	pod.ResourceVersion = fmt.Sprint(a.rv)
	if pod.Status.Phase == "" {
		pod.Status.Phase = api.PodPending
	}
	a.pods[pod.UID] = pod
	feed := a.feed
	a.mu.Unlock()
	if feed != nil {
		feed(pod)
	}
	return pod
}

// modify changes a stored Pod (a copy) and hands it to the Manager.
func (a *fakeAPI) modify(uid string, change func(*api.Pod)) {
	a.mu.Lock()
	pod := api.DeepCopy(a.pods[uid])
	change(pod)
	a.rv++
	pod.ResourceVersion = fmt.Sprint(a.rv)
	a.pods[uid] = pod
	feed := a.feed
	a.mu.Unlock()
	feed(pod)
}

func (a *fakeAPI) get(uid string) *api.Pod {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p := a.pods[uid]; p != nil {
		return api.DeepCopy(p)
	}
	return nil
}

func (a *fakeAPI) wasDeleted(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Contains(a.deleted, name)
}

type fakeEvent struct{ pod, eventType, reason, message string }

type fakeRecorder struct {
	mu     sync.Mutex
	events []fakeEvent
}

func (r *fakeRecorder) Event(obj api.Object, eventType, reason, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fakeEvent{obj.GetObjectMeta().Name, eventType, reason, message})
}

// has reports whether an event with reason and a message containing text
// was recorded.
func (r *fakeRecorder) has(reason, text string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.reason == reason && strings.Contains(e.message, text) {
			return true
		}
	}
	return false
}

// eventually polls cond until it holds; the workers run in goroutines of
// their own, so tests wait for them.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
