package controllertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/api/client/cache"
	"kubelite/api/client/workqueue"
)

// DefaultHeartbeatInterval is how often simulated nodes report they are Ready.
const DefaultHeartbeatInterval = time.Second

// nodeLeaseDurationSeconds is the Lease duration a node agent announces.
const nodeLeaseDurationSeconds = 40

// NodeOption tunes StartNodes.
type NodeOption func(*SimulatedNodes)

// WithHeartbeatInterval sets how often the nodes heartbeat.
func WithHeartbeatInterval(d time.Duration) NodeOption {
	return func(s *SimulatedNodes) { s.heartbeatInterval = d }
}

// WithLogger sets the logger (default: the test's output).
func WithLogger(logger *slog.Logger) NodeOption {
	return func(s *SimulatedNodes) { s.logger = logger }
}

// SimulatedNodes stand in for node agents in controller tests. Each node is
// registered Ready with a pod CIDR (10.244.i.0/24 for the i-th node) and an
// InternalIP, and heartbeats (Node status and a Lease in kube-node-lease).
// Pods bound to a live node are reported Running and Ready with an IP from
// the node's pod CIDR, through the status subresource as a node agent
// would, and their graceful deletions are completed. Nothing runs: it is
// bookkeeping only.
//
// Like a controller, the simulation is level-triggered: a Pod cache feeds a
// work queue of Pod keys.
type SimulatedNodes struct {
	client            *client.Client
	pods              *cache.Informer[api.Pod, *api.Pod]
	queue             *workqueue.Queue
	heartbeatInterval time.Duration
	logger            *slog.Logger

	// writeMu serialises heartbeats with MakeNotReady, so that a heartbeat
	// in flight cannot report a node Ready after it was made NotReady.
	writeMu sync.Mutex

	mu        sync.Mutex
	nodes     map[string]*simulatedNode
	lastIndex int
}

// simulatedNode is the state of one node; SimulatedNodes.mu guards it.
type simulatedNode struct {
	name       string
	podCIDR    netip.Prefix
	internalIP string
	alive      bool              // heartbeating and running its Pods
	nextHost   int               // the next host number to try in podCIDR
	podIPs     map[string]string // by Pod key
}

// StartNodes registers count Ready nodes named node1..nodeN and simulates
// them until the test ends.
func StartNodes(t testing.TB, c *client.Client, count int, opts ...NodeOption) *SimulatedNodes {
	t.Helper()
	s := &SimulatedNodes{
		client:            c,
		pods:              cache.NewInformer(client.For[api.Pod](c, ""), client.ListOptions{}, 0),
		heartbeatInterval: DefaultHeartbeatInterval,
		logger:            slog.New(slog.NewTextHandler(t.Output(), nil)),
		nodes:             make(map[string]*simulatedNode),
	}
	for _, o := range opts {
		o(s)
	}
	s.logger = s.logger.With("component", "simulated-nodes")
	s.queue = workqueue.New(workqueue.WithLogger(s.logger))
	s.pods.AddHandler(cache.OnChange(s.enqueuePod))
	for i := 1; i <= count; i++ {
		if err := s.AddNode(t.Context(), fmt.Sprintf("node%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	Go(t, s.run)
	return s
}

// run runs the Pod cache, the Pod workers and the heartbeats until ctx ends.
func (s *SimulatedNodes) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { s.pods.Run(ctx) })
	wg.Go(func() { s.heartbeatLoop(ctx) })
	if s.pods.WaitForSync(ctx) {
		s.queue.Run(ctx, 4, s.reconcilePod)
	}
	wg.Wait()
}

func (s *SimulatedNodes) enqueuePod(pod *api.Pod) {
	if pod.Spec.NodeName != "" {
		s.queue.Add(cache.Key(pod))
	}
}

// AddNode registers one more Ready node with the given extra labels; it
// gets the next pod CIDR. The node heartbeats and runs Pods from now on.
func (s *SimulatedNodes) AddNode(ctx context.Context, name string, labels map[string]string) error {
	s.mu.Lock()
	if _, exists := s.nodes[name]; exists {
		s.mu.Unlock()
		return fmt.Errorf("simulated node %s exists already", name)
	}
	s.lastIndex++
	index := s.lastIndex
	s.mu.Unlock()
	if index > 255 {
		return fmt.Errorf("simulated node %s: no pod CIDR left in 10.244.0.0/16", name)
	}

	podCIDR := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(index), 0}), 24)
	internalIP := netip.AddrFrom4([4]byte{192, 168, 100, byte(index)}).String()
	nodeLabels := map[string]string{
		"kubernetes.io/hostname": name,
		"kubernetes.io/os":       "linux",
		"kubernetes.io/arch":     runtime.GOARCH,
	}
	maps.Copy(nodeLabels, labels)
	now := api.Now()
	node := &api.Node{
		ObjectMeta: api.ObjectMeta{Name: name, Labels: nodeLabels},
		Spec:       api.NodeSpec{PodCIDR: podCIDR.String(), PodCIDRs: []string{podCIDR.String()}},
		Status: api.NodeStatus{
			Capacity:   api.ResourceList{"cpu": "2", "memory": "4Gi", "pods": "110"},
			Conditions: []api.NodeCondition{readyCondition(api.ConditionTrue, now, now)},
			Addresses: []api.NodeAddress{
				{Type: api.NodeInternalIP, Address: internalIP},
				{Type: api.NodeHostName, Address: name},
			},
			NodeInfo: api.NodeSystemInfo{
				OperatingSystem:         "linux",
				Architecture:            runtime.GOARCH,
				KubeletVersion:          "v1.30.0-kubelite",
				ContainerRuntimeVersion: "simulated://1.0",
			},
		},
	}
	nodes := client.For[api.Node](s.client, "")
	created, err := nodes.Create(ctx, node)
	if err != nil {
		return fmt.Errorf("registering simulated node %s: %w", name, err)
	}
	if !created.IsReady() {
		// The server may ignore status on create, as Kubernetes' does.
		created.Status = node.Status
		if _, err := nodes.UpdateStatus(ctx, created); err != nil {
			return fmt.Errorf("reporting status of simulated node %s: %w", name, err)
		}
	}

	s.mu.Lock()
	s.nodes[name] = &simulatedNode{
		name:       name,
		podCIDR:    podCIDR,
		internalIP: internalIP,
		alive:      true,
		nextHost:   2, // .1 is the node's bridge
		podIPs:     make(map[string]string),
	}
	s.mu.Unlock()
	s.logger.Info("registered node", "node", name, "podCIDR", podCIDR, "internalIP", internalIP)
	return nil
}

// Names returns the simulated nodes' names, sorted.
func (s *SimulatedNodes) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.nodes))
}

// PodCIDR returns the pod CIDR of the named node, or "".
func (s *SimulatedNodes) PodCIDR(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.nodes[name]; ok {
		return n.podCIDR.String()
	}
	return ""
}

// MakeNotReady simulates a dead node: it stops heartbeating and running
// Pods, and its Ready condition becomes Unknown, as the node lifecycle
// controller reports a silent node.
func (s *SimulatedNodes) MakeNotReady(ctx context.Context, name string) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.setAlive(name, false); err != nil {
		return err
	}
	return s.updateNodeStatus(ctx, name, func(node *api.Node) {
		setNodeReady(node, api.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status.")
	})
}

// MakeReady brings a node made NotReady back: it heartbeats again and runs
// the Pods bound to it.
func (s *SimulatedNodes) MakeReady(ctx context.Context, name string) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.setAlive(name, true); err != nil {
		return err
	}
	if err := s.updateNodeStatus(ctx, name, func(node *api.Node) {
		setNodeReady(node, api.ConditionTrue, "KubeletReady", "kubelet is posting ready status")
	}); err != nil {
		return err
	}
	for _, pod := range s.pods.List("") {
		if pod.Spec.NodeName == name {
			s.queue.Add(cache.Key(pod))
		}
	}
	return nil
}

func (s *SimulatedNodes) setAlive(name string, alive bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[name]
	if !ok {
		return fmt.Errorf("no simulated node %s", name)
	}
	n.alive = alive
	return nil
}

// FailPod reports the Pod's containers as exited with an error: phase
// Failed, not ready.
func (s *SimulatedNodes) FailPod(ctx context.Context, namespace, name string) error {
	return s.updatePodStatus(ctx, namespace, name, func(pod *api.Pod) {
		now := api.Now()
		pod.Status.Phase = api.PodFailed
		setPodCondition(&pod.Status, api.PodReady, api.ConditionFalse, now)
		setPodCondition(&pod.Status, api.ContainersReady, api.ConditionFalse, now)
		for i := range pod.Status.ContainerStatuses {
			cs := &pod.Status.ContainerStatuses[i]
			cs.Ready = false
			cs.State = api.ContainerState{Terminated: &api.ContainerStateTerminated{
				ExitCode: 1, Reason: "Error", StartedAt: now, FinishedAt: now,
			}}
		}
	})
}

// SetPodReady reports the Pod's readiness, as a readiness probe would.
func (s *SimulatedNodes) SetPodReady(ctx context.Context, namespace, name string, ready bool) error {
	status := api.ConditionFalse
	if ready {
		status = api.ConditionTrue
	}
	return s.updatePodStatus(ctx, namespace, name, func(pod *api.Pod) {
		now := api.Now()
		setPodCondition(&pod.Status, api.PodReady, status, now)
		setPodCondition(&pod.Status, api.ContainersReady, status, now)
		for i := range pod.Status.ContainerStatuses {
			pod.Status.ContainerStatuses[i].Ready = ready
		}
	})
}

// reconcilePod acts for the node a Pod is bound to: it completes a graceful
// deletion, or reports a Pending Pod Running and Ready.
func (s *SimulatedNodes) reconcilePod(ctx context.Context, key string) error {
	cached, ok := s.pods.GetByKey(key)
	if !ok {
		s.releaseIP(key)
		return nil
	}
	nodeName := cached.Spec.NodeName
	if !s.isAlive(nodeName) {
		return nil // not ours, or dead: a dead node does nothing
	}
	if cached.DeletionTimestamp != nil {
		err := client.For[api.Pod](s.client, cached.Namespace).Delete(ctx, cached.Name,
			client.DeleteOptions{GracePeriodSeconds: api.Ptr[int64](0)})
		if err != nil && !api.IsNotFound(err) {
			return fmt.Errorf("finishing deletion of pod %s: %w", key, err)
		}
		return nil
	}
	if cached.Status.Phase != api.PodPending && cached.Status.Phase != "" {
		return nil // running or finished: the test, not the node, changes it now
	}
	ip, hostIP, err := s.allocateIP(nodeName, key)
	if err != nil {
		return err
	}
	pod := api.DeepCopy(cached)
	pod.Status = runningStatus(pod, hostIP, ip, api.Now())
	if _, err := client.For[api.Pod](s.client, pod.Namespace).UpdateStatus(ctx, pod); err != nil {
		if api.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reporting pod %s running: %w", key, err)
	}
	s.logger.Debug("pod running", "pod", key, "node", nodeName, "ip", ip)
	return nil
}

func (s *SimulatedNodes) isAlive(nodeName string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[nodeName]
	return ok && n.alive
}

// allocateIP returns the Pod's IP on the node (the same one on every call)
// and the node's IP. Host numbers are handed out round-robin, so a
// replacement Pod gets a new IP rather than its predecessor's.
func (s *SimulatedNodes) allocateIP(nodeName, podKey string) (podIP, hostIP string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[nodeName]
	if ip, ok := n.podIPs[podKey]; ok {
		return ip, n.internalIP, nil
	}
	used := make(map[string]bool, len(n.podIPs))
	for _, ip := range n.podIPs {
		used[ip] = true
	}
	const firstHost, lastHost = 2, 254
	for range lastHost - firstHost + 1 {
		base := n.podCIDR.Addr().As4()
		base[3] = byte(n.nextHost)
		candidate := netip.AddrFrom4(base).String()
		n.nextHost++
		if n.nextHost > lastHost {
			n.nextHost = firstHost
		}
		if !used[candidate] {
			n.podIPs[podKey] = candidate
			return candidate, n.internalIP, nil
		}
	}
	return "", "", fmt.Errorf("node %s: pod CIDR %s is full", nodeName, n.podCIDR)
}

func (s *SimulatedNodes) releaseIP(podKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.nodes {
		delete(n.podIPs, podKey)
	}
}

// heartbeatLoop reports every live node Ready each interval until ctx ends.
func (s *SimulatedNodes) heartbeatLoop(ctx context.Context) {
	ticker := time.NewTicker(s.heartbeatInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			for _, name := range s.Names() {
				if err := s.heartbeat(ctx, name); err != nil && ctx.Err() == nil {
					s.logger.Warn("heartbeat failed", "node", name, "err", err)
				}
			}
		}
	}
}

// heartbeat refreshes one live node's Ready condition and Lease.
func (s *SimulatedNodes) heartbeat(ctx context.Context, name string) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if !s.isAlive(name) {
		return nil
	}
	err := s.updateNodeStatus(ctx, name, func(node *api.Node) {
		setNodeReady(node, api.ConditionTrue, "KubeletReady", "kubelet is posting ready status")
	})
	return errors.Join(err, s.renewLease(ctx, name))
}

// renewLease renews the node's Lease in kube-node-lease, creating it first.
func (s *SimulatedNodes) renewLease(ctx context.Context, name string) error {
	leases := client.For[api.Lease](s.client, api.NamespaceNodeLease)
	now := api.MicroTime{Time: time.Now().UTC()}
	lease, err := leases.Get(ctx, name)
	if api.IsNotFound(err) {
		_, err = leases.Create(ctx, &api.Lease{
			ObjectMeta: api.ObjectMeta{Name: name, Namespace: api.NamespaceNodeLease},
			Spec: api.LeaseSpec{
				HolderIdentity:       api.Ptr(name),
				LeaseDurationSeconds: api.Ptr[int32](nodeLeaseDurationSeconds),
				RenewTime:            &now,
			},
		})
	} else if err == nil {
		lease.Spec.RenewTime = &now
		_, err = leases.Update(ctx, lease)
	}
	if err != nil {
		return fmt.Errorf("renewing lease of node %s: %w", name, err)
	}
	return nil
}

// updateNodeStatus applies mutate to the current Node and writes its
// status, retrying on conflicts.
func (s *SimulatedNodes) updateNodeStatus(ctx context.Context, name string, mutate func(*api.Node)) error {
	nodes := client.For[api.Node](s.client, "")
	for {
		node, err := nodes.Get(ctx, name)
		if err != nil {
			return fmt.Errorf("reading node %s: %w", name, err)
		}
		mutate(node)
		_, err = nodes.UpdateStatus(ctx, node)
		if api.IsConflict(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("updating status of node %s: %w", name, err)
		}
		return nil
	}
}

// updatePodStatus applies mutate to the current Pod and writes its status,
// retrying on conflicts.
func (s *SimulatedNodes) updatePodStatus(ctx context.Context, namespace, name string, mutate func(*api.Pod)) error {
	pods := client.For[api.Pod](s.client, namespace)
	for {
		pod, err := pods.Get(ctx, name)
		if err != nil {
			return fmt.Errorf("reading pod %s/%s: %w", namespace, name, err)
		}
		mutate(pod)
		_, err = pods.UpdateStatus(ctx, pod)
		if api.IsConflict(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("updating status of pod %s/%s: %w", namespace, name, err)
		}
		return nil
	}
}

// runningStatus is the status a node agent reports once all of pod's
// containers have started.
func runningStatus(pod *api.Pod, hostIP, podIP string, now api.Time) api.PodStatus {
	status := api.PodStatus{
		Phase:     api.PodRunning,
		HostIP:    hostIP,
		PodIP:     podIP,
		PodIPs:    []api.PodIP{{IP: podIP}},
		StartTime: &now,
		QOSClass:  "BestEffort",
	}
	for _, condition := range []string{api.PodScheduled, api.PodInitialized, api.ContainersReady, api.PodReady} {
		setPodCondition(&status, condition, api.ConditionTrue, now)
	}
	for i, container := range pod.Spec.Containers {
		status.ContainerStatuses = append(status.ContainerStatuses, api.ContainerStatus{
			Name:        container.Name,
			State:       api.ContainerState{Running: &api.ContainerStateRunning{StartedAt: now}},
			Ready:       true,
			Image:       container.Image,
			ImageID:     "simulated://" + container.Image,
			ContainerID: fmt.Sprintf("simulated://%s-%d", pod.UID, i),
			Started:     api.Ptr(true),
		})
	}
	return status
}

// setPodCondition sets a condition's status, moving its transition time
// only when the status changes.
func setPodCondition(status *api.PodStatus, conditionType, value string, now api.Time) {
	for i := range status.Conditions {
		c := &status.Conditions[i]
		if c.Type == conditionType {
			if c.Status != value {
				c.Status = value
				c.LastTransitionTime = now
			}
			return
		}
	}
	status.Conditions = append(status.Conditions, api.PodCondition{Type: conditionType, Status: value, LastTransitionTime: now})
}

func readyCondition(status string, heartbeat, transition api.Time) api.NodeCondition {
	return api.NodeCondition{
		Type:               api.NodeReady,
		Status:             status,
		LastHeartbeatTime:  heartbeat,
		LastTransitionTime: transition,
		Reason:             "KubeletReady",
		Message:            "kubelet is posting ready status",
	}
}

// setNodeReady sets the node's Ready condition, keeping its transition time
// when the status does not change.
func setNodeReady(node *api.Node, status, reason, message string) {
	now := api.Now()
	for i := range node.Status.Conditions {
		c := &node.Status.Conditions[i]
		if c.Type != api.NodeReady {
			continue
		}
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message, c.LastHeartbeatTime = status, reason, message, now
		return
	}
	condition := readyCondition(status, now, now)
	condition.Reason, condition.Message = reason, message
	node.Status.Conditions = append(node.Status.Conditions, condition)
}
