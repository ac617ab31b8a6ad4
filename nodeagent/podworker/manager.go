package podworker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"kubelite/api"
	"kubelite/nodeagent/runtime"
)

// Config is what the pod workers of one node share.
type Config struct {
	NodeName string
	// NodeIP is every Pod's status.hostIP, and the IP of hostNetwork Pods.
	NodeIP string
	// HostNetNSPath is the node's network namespace, which hostNetwork
	// Pods join (/run/netns/node1, or /proc/<agent pid>/ns/net).
	HostNetNSPath string
	DNS           DNSSettings
	// PodsDir holds each Pod's files: <PodsDir>/<uid>/etc-hosts,
	// resolv.conf, hostname and volumes/.
	PodsDir string
	// LogsDir holds container logs, as /var/log/pods does:
	// <LogsDir>/<namespace>_<name>_<uid>/<container>/<attempt>.log.
	LogsDir string

	Runtime  Runtime
	Network  Network
	API      PodAPI
	Recorder Recorder
	// Dial reaches pod IPs for HTTP and TCP probes (nil: the agent's own
	// network namespace).
	Dial Dialer

	// ResyncPeriod is how often a worker syncs with nothing to wake it
	// (default 1 min): the backstop of the level-triggered design.
	ResyncPeriod time.Duration
	// BackOffInitial and BackOffMax bound the restart and image pull
	// back-offs (defaults 10 s and 5 min, the kubelet's).
	BackOffInitial, BackOffMax time.Duration
	// ImagePullTimeout bounds one EnsureImage (default 5 min), so a
	// registry that never answers gives ErrImagePull, not a hang.
	ImagePullTimeout time.Duration
	// MinimumGracePeriod is the least time a container gets to stop
	// (default 2 s, the kubelet's), even when the Pod was force-deleted.
	MinimumGracePeriod time.Duration
	Logger             *slog.Logger
}

// Defaults of Config.
const (
	DefaultResyncPeriod       = time.Minute
	DefaultBackOffInitial     = 10 * time.Second
	DefaultBackOffMax         = 5 * time.Minute
	DefaultImagePullTimeout   = 5 * time.Minute
	DefaultMinimumGracePeriod = 2 * time.Second
)

// Errors of ContainerFor, to test with errors.Is.
var (
	ErrPodNotFound       = errors.New("pod not found on this node")
	ErrContainerNotFound = errors.New("container not found")
)

// ContainerRef says where one container of a Pod runs and logs.
type ContainerRef struct {
	ID      string // the runtime's container ID (containerID without "containerd://")
	LogPath string // its CRI-format log file
	Attempt int    // 0 for the first run, the restart count after
}

// Manager owns the pod workers of a node: one per Pod bound to it, and one
// for whatever a Pod deleted while the agent was away left behind.
type Manager struct {
	cfg Config
	log *slog.Logger

	wg sync.WaitGroup // every worker goroutine

	mu       sync.Mutex
	ctx      context.Context       // the workers' lifetime, set by Run
	pending  map[string]*api.Pod   // Pods heard of before Run, by UID
	workers  map[string]*podWorker // by UID
	byName   map[string]string     // namespace/name → UID, for ContainerFor
	finished map[string]bool       // UIDs whose worker is done; late updates are ignored
}

// NewManager checks cfg and returns a Manager. Feed it Pods with UpdatePod
// and RemovePod (from an informer on the node's Pods), then call Run.
func NewManager(cfg Config) (*Manager, error) {
	var problems []string
	if cfg.Runtime == nil || cfg.Network == nil || cfg.API == nil || cfg.Recorder == nil {
		problems = append(problems, "runtime, network, API and recorder are all required")
	}
	if cfg.PodsDir == "" || cfg.LogsDir == "" {
		problems = append(problems, "no pods or logs directory")
	}
	if cfg.NodeName == "" {
		problems = append(problems, "no node name")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("pod workers: %s", strings.Join(problems, "; "))
	}
	cfg.ResyncPeriod = orDefault(cfg.ResyncPeriod, DefaultResyncPeriod)
	cfg.BackOffInitial = orDefault(cfg.BackOffInitial, DefaultBackOffInitial)
	cfg.BackOffMax = orDefault(cfg.BackOffMax, DefaultBackOffMax)
	cfg.ImagePullTimeout = orDefault(cfg.ImagePullTimeout, DefaultImagePullTimeout)
	cfg.MinimumGracePeriod = orDefault(cfg.MinimumGracePeriod, DefaultMinimumGracePeriod)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for _, dir := range []string{cfg.PodsDir, cfg.LogsDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("pod workers: %w", err)
		}
	}
	return &Manager{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "pods"),
		pending:  map[string]*api.Pod{},
		workers:  map[string]*podWorker{},
		byName:   map[string]string{},
		finished: map[string]bool{},
	}, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// UpdatePod hands the latest version of a Pod bound to this node to its
// worker and wakes it, starting a worker for a Pod it has not seen. It
// never blocks: the work happens in the worker.
func (m *Manager) UpdatePod(pod *api.Pod) {
	m.mu.Lock()
	defer m.mu.Unlock()
	uid := pod.UID
	if m.finished[uid] {
		return // a late update of a Pod whose containers are gone already
	}
	m.byName[pod.Namespace+"/"+pod.Name] = uid
	if w := m.workers[uid]; w != nil {
		w.update(pod, false)
		return
	}
	if m.ctx == nil {
		m.pending[uid] = pod
		return
	}
	m.startWorkerLocked(pod, nil, false)
}

// RemovePod tells the Pod's worker that the Pod is gone from the API (it
// was force-deleted, or its deletion was confirmed): whatever is left of
// it goes, without a word to the API.
func (m *Manager) RemovePod(pod *api.Pod) {
	m.mu.Lock()
	defer m.mu.Unlock()
	uid := pod.UID
	delete(m.pending, uid)
	if m.finished[uid] {
		delete(m.finished, uid) // no more updates can come for it
		return
	}
	if w := m.workers[uid]; w != nil {
		w.update(pod, true)
		return
	}
	if m.ctx != nil {
		m.startWorkerLocked(pod, nil, true)
	}
}

// Run adopts what the runtime runs for the Pods heard of so far, starts
// their workers, cleans up after Pods that are gone, and keeps the workers
// going until ctx ends. Call it once the Pod informer has synced, so that
// every Pod bound here has been heard of. When it returns every worker has
// stopped; containers keep running, for the next agent to adopt.
func (m *Manager) Run(ctx context.Context) error {
	containers, err := m.listContainers(ctx)
	if err != nil {
		return nil // ctx ended
	}
	byPod := map[string][]runtime.Container{}
	for _, c := range containers {
		if c.PodUID != "" {
			byPod[c.PodUID] = append(byPod[c.PodUID], c)
		}
	}
	leftovers, err := m.leftovers(byPod)
	if err != nil {
		return fmt.Errorf("pod workers: %w", err)
	}

	m.mu.Lock()
	m.ctx = ctx
	for uid, pod := range m.pending {
		m.startWorkerLocked(pod, byPod[uid], false)
		delete(leftovers, uid)
	}
	m.pending = nil
	for uid, stub := range leftovers {
		m.log.Info("cleaning up after a pod that is gone", "pod", stub.Namespace+"/"+stub.Name, "uid", uid, "containers", len(byPod[uid]))
		m.startWorkerLocked(stub, byPod[uid], true)
	}
	m.mu.Unlock()

	<-ctx.Done()
	m.wg.Wait()
	return nil
}

// listContainers lists the runtime's containers, retrying until it answers
// or ctx ends: no Pod may be started before what runs is known.
func (m *Manager) listContainers(ctx context.Context) ([]runtime.Container, error) {
	delay := 100 * time.Millisecond
	for {
		containers, err := m.cfg.Runtime.List(ctx)
		if err == nil {
			return containers, nil
		}
		m.log.Warn("could not list the runtime's containers; retrying", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// leftovers are the Pods that have containers, a network or files here,
// as stub Pods (namespace, name and UID as far as they are known).
func (m *Manager) leftovers(byPod map[string][]runtime.Container) (map[string]*api.Pod, error) {
	stubs := map[string]*api.Pod{}
	stub := func(uid, namespace, name string) {
		if s := stubs[uid]; s != nil {
			if s.Name == "" {
				s.Namespace, s.Name = namespace, name
			}
			return
		}
		stubs[uid] = &api.Pod{ObjectMeta: api.ObjectMeta{UID: uid, Namespace: namespace, Name: name}}
	}
	for uid, cs := range byPod {
		stub(uid, cs[0].PodNamespace, cs[0].PodName)
	}
	uids, err := m.cfg.Network.Pods()
	if err != nil {
		return nil, err
	}
	for _, uid := range uids {
		stub(uid, "", "")
	}
	dirs, err := os.ReadDir(m.cfg.PodsDir)
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		stub(d.Name(), "", "")
	}
	logDirs, err := os.ReadDir(m.cfg.LogsDir)
	if err != nil {
		return nil, err
	}
	for _, d := range logDirs {
		if parts := strings.SplitN(d.Name(), "_", 3); len(parts) == 3 {
			stub(parts[2], parts[0], parts[1])
		}
	}
	return stubs, nil
}

// startWorkerLocked starts the worker of a Pod; m.mu is held.
func (m *Manager) startWorkerLocked(pod *api.Pod, adopted []runtime.Container, removed bool) {
	w := newPodWorker(m, pod, adopted, removed)
	m.workers[pod.UID] = w
	if pod.Name != "" {
		m.byName[pod.Namespace+"/"+pod.Name] = pod.UID
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		w.run(m.ctx)
		m.workerDone(w)
	}()
}

// workerDone forgets a worker that has finished (its Pod is gone for good)
// or stopped (the agent is stopping).
func (m *Manager) workerDone(w *podWorker) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.workers, w.uid)
	if m.ctx.Err() != nil {
		return // stopping, not finished: the next agent takes over
	}
	m.finished[w.uid] = true
	pod, _ := w.latest()
	if key := pod.Namespace + "/" + pod.Name; m.byName[key] == w.uid {
		delete(m.byName, key)
	}
}

// ContainerFor says where the current container of a Pod's container runs
// and logs; previous is the one before it (for `logs --previous`), if any.
func (m *Manager) ContainerFor(namespace, podName, container string) (current, previous ContainerRef, err error) {
	m.mu.Lock()
	w := m.workers[m.byName[namespace+"/"+podName]]
	m.mu.Unlock()
	if w == nil {
		return ContainerRef{}, ContainerRef{}, fmt.Errorf("%s/%s: %w", namespace, podName, ErrPodNotFound)
	}
	refs, ok := w.containerRefs(container)
	if !ok {
		return ContainerRef{}, ContainerRef{}, fmt.Errorf("container %q of pod %s/%s: %w", container, namespace, podName, ErrContainerNotFound)
	}
	return refs.current, refs.previous, nil
}

// ContainerSpec returns the spec of a container of a Pod on this node, as
// the latest version of the Pod says (a copy).
func (m *Manager) ContainerSpec(namespace, podName, container string) (api.Container, error) {
	m.mu.Lock()
	w := m.workers[m.byName[namespace+"/"+podName]]
	m.mu.Unlock()
	if w == nil {
		return api.Container{}, fmt.Errorf("%s/%s: %w", namespace, podName, ErrPodNotFound)
	}
	pod, _ := w.latest()
	for _, c := range pod.Spec.Containers {
		if c.Name == container {
			return *api.DeepCopy(&c), nil
		}
	}
	return api.Container{}, fmt.Errorf("container %q of pod %s/%s: %w", container, namespace, podName, ErrContainerNotFound)
}

// PodCount is the number of Pods that have a worker (for tests and metrics).
func (m *Manager) PodCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.workers)
}

// podDir is the folder of a Pod's own files.
func (m *Manager) podDir(uid string) string { return filepath.Join(m.cfg.PodsDir, uid) }

// podLogDir is the folder of a Pod's container logs.
func (m *Manager) podLogDir(pod *api.Pod) string {
	return filepath.Join(m.cfg.LogsDir, pod.Namespace+"_"+pod.Name+"_"+pod.UID)
}
