package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/api/client/cache"
	"kubelite/nodeagent/network"
	"kubelite/nodeagent/podworker"
	"kubelite/nodeagent/runtime"
)

// Errors of ContainerFor, to test with errors.Is.
var (
	ErrPodNotFound       = podworker.ErrPodNotFound
	ErrContainerNotFound = podworker.ErrContainerNotFound
)

// Agent is a node agent: the kubelet of kubelite. Create it with New and
// run it with Run.
type Agent struct {
	cfg       Config
	client    *client.Client
	log       *slog.Logger
	readiness *readiness
	machine   machine
	running   atomic.Bool

	mu      sync.Mutex // guards what Run sets up, for the accessors
	nodeIP  string
	runtime *runtime.Runtime
	network *network.Network
	pods    *podworker.Manager
}

// New checks cfg and prepares an agent. It changes nothing on the machine
// and does not contact the API server: Run does.
func New(cfg Config) (*Agent, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	clientConfig, err := cfg.clientConfig()
	if err != nil {
		return nil, err
	}
	c, err := client.New(clientConfig)
	if err != nil {
		return nil, fmt.Errorf("node agent: %w", err)
	}
	parts := []string{partRuntime, partNetwork}
	for _, component := range cfg.Components {
		parts = append(parts, component.Name)
	}
	return &Agent{
		cfg:       cfg,
		client:    c,
		log:       cfg.Logger.With("node", cfg.NodeName),
		readiness: newReadiness(parts...),
		machine:   readMachine(),
	}, nil
}

// Run runs the node until ctx ends or a part of it fails for good. In
// order:
//
//  1. the node's IP is settled (see Config.NodeIP);
//  2. containerd is started (unless one is given) and connected to; the
//     containers of a previous run are adopted; image tarballs imported;
//  3. the Node is registered (created, or taken over) and heartbeats
//     begin: the Lease every 10 s, the status when it changes;
//  4. the components (proxy, DNS, ...) start;
//  5. once the node controller has given the Node a podCIDR, the pod
//     network is prepared (CNI configuration, forwarding, masquerade) and
//     routes to the other nodes' pods follow the Node objects;
//  6. the pod workers start: they adopt what runs, clean up after Pods
//     deleted meanwhile, and run the Pods bound to the node.
//
// The Node is Ready once the runtime, the pod network and every component
// are up. When Run returns every goroutine it started has ended, and the
// containers are still running: the next Run adopts them.
func (a *Agent) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("node agent: Run may be called once")
	}
	nodeIP, err := a.detectNodeIP(ctx)
	if err != nil {
		return err
	}

	rt, address, stopContainerd, err := a.startRuntime(ctx)
	if err != nil {
		return err
	}
	defer stopContainerd()
	defer rt.Close()
	if version, err := containerdVersion(ctx, address); err == nil {
		a.machine.runtimeVersion = version
	} else {
		a.log.Warn("could not read containerd's version", "err", err)
	}
	a.importImages(ctx, rt)
	a.readiness.set(partRuntime, true, "")

	podNetwork, err := network.New(network.Config{
		NetNS:          a.cfg.NetNS,
		StateDir:       a.cfg.networkDir(),
		PluginDirs:     a.cfg.CNIPluginDirs,
		PodNetNSDir:    a.cfg.PodNetNSDir,
		PodNetNSPrefix: a.cfg.podNetNSPrefix(),
		BridgeName:     a.cfg.BridgeName,
		ClusterCIDR:    netip.MustParsePrefix(a.cfg.ClusterCIDR), // checked by New
		MTU:            a.cfg.MTU,
		Logger:         a.log,
	})
	if err != nil {
		return err
	}
	defer podNetwork.Close()

	recorder := newEventRecorder(a.client, a.cfg.NodeName, a.log)
	pods, err := podworker.NewManager(a.podWorkerConfig(nodeIP, rt, podNetwork, recorder))
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.runtime, a.network, a.pods = rt, podNetwork, pods
	a.mu.Unlock()

	node, err := a.register(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	nodes := cache.NewInformer(client.For[api.Node](a.client, ""), client.ListOptions{}, 0, cache.WithLogger(a.log))
	nodesChanged := make(chan struct{}, 1)
	signal := func() {
		select {
		case nodesChanged <- struct{}{}:
		default:
		}
	}
	nodes.AddHandler(cache.Handler[*api.Node]{
		OnAdd:    func(*api.Node) { signal() },
		OnUpdate: func(_, _ *api.Node) { signal() },
		OnDelete: func(*api.Node) { signal() },
	})

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { nodes.Run(ctx); return nil })
	g.Go(func() error { return recorder.Run(ctx) })
	g.Go(func() error {
		return a.heartbeat(ctx,
			&leaseRenewer{agent: a, node: node, now: time.Now},
			&nodeStatusReporter{agent: a, facts: a.facts})
	})
	g.Go(func() error { return a.watchImages(ctx, rt) })
	g.Go(func() error { return a.watchRuntime(ctx, address) })
	for _, component := range a.cfg.Components {
		g.Go(func() error { return a.runComponent(ctx, component) })
	}
	g.Go(func() error { return a.runPods(ctx, podNetwork, nodes, nodesChanged, pods) })
	return g.Wait()
}

// detectNodeIP settles the node's InternalIP.
func (a *Agent) detectNodeIP(ctx context.Context) (string, error) {
	serverHost := ""
	if u, err := url.Parse(a.client.Config().Server); err == nil {
		serverHost = u.Hostname()
	}
	choice, err := network.DetectNodeIP(ctx, network.Namespace{Path: a.cfg.NetNS}, a.cfg.NodeIP, serverHost)
	if err != nil {
		return "", fmt.Errorf("node agent: %w", err)
	}
	if choice.Warning != "" {
		a.log.Warn("node IP: "+choice.Warning, "ip", choice.Addr)
	}
	a.log.Info("node IP", "ip", choice.Addr, "why", choice.Reason)
	a.mu.Lock()
	a.nodeIP = choice.Addr.String()
	a.mu.Unlock()
	return choice.Addr.String(), nil
}

// startRuntime connects to containerd, starting one of the agent's own
// first when none is given. stop stops that one (after the runtime has
// been closed); containers keep running in their shims.
func (a *Agent) startRuntime(ctx context.Context) (rt *runtime.Runtime, address string, stop func(), err error) {
	address, stop = a.cfg.ContainerdAddress, func() {}
	if address == "" {
		// containerd outlives ctx a little: it stops after the runtime's
		// connection is closed.
		containerdCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		supervised, err := runtime.Supervise(containerdCtx, runtime.SuperviseConfig{DataDir: a.cfg.containerdDir(), Logger: a.log})
		if err != nil {
			cancel()
			return nil, "", nil, fmt.Errorf("node agent: %w", err)
		}
		address = supervised.Address()
		stop = func() {
			cancel()
			<-supervised.Done()
		}
	}
	rt, err = runtime.Connect(ctx, a.cfg.runtimeConfig(address))
	if err != nil {
		stop()
		return nil, "", nil, fmt.Errorf("node agent: %w", err)
	}
	return rt, address, stop, nil
}

// importImages imports the image tarballs of ImagesDir, as k3s imports its
// airgap images. A bad tarball is logged; the others are imported.
func (a *Agent) importImages(ctx context.Context, rt *runtime.Runtime) {
	imported, err := rt.ImportDir(ctx, a.cfg.ImagesDir)
	if err != nil && ctx.Err() == nil {
		a.log.Warn("could not import some image tarballs", "dir", a.cfg.ImagesDir, "err", err)
	}
	for _, img := range imported {
		a.log.Info("image imported", "image", img.Name, "digest", img.Digest)
	}
}

// watchImages imports tarballs that appear in ImagesDir later.
func (a *Agent) watchImages(ctx context.Context, rt *runtime.Runtime) error {
	ticker := time.NewTicker(a.cfg.ImagesPollInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			a.importImages(ctx, rt)
		}
	}
}

// watchRuntime asks containerd whether it answers at every node status
// update, so that the Node goes NotReady while its containerd is down (the
// supervisor restarts it).
func (a *Agent) watchRuntime(ctx context.Context, address string) error {
	ticker := time.NewTicker(a.cfg.NodeStatusUpdateFrequency)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		checkCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := containerdVersion(checkCtx, address)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			a.readiness.set(partRuntime, false, "containerd does not answer")
		default:
			a.readiness.set(partRuntime, true, "")
		}
	}
}

// register registers the Node, retrying until the API server answers.
func (a *Agent) register(ctx context.Context) (*api.Node, error) {
	delay := time.Second
	for {
		node, err := a.registerNode(ctx, a.facts())
		if err == nil {
			return node, nil
		}
		if api.IsInvalid(err) || api.ReasonOf(err) == api.ReasonForbidden || api.ReasonOf(err) == api.ReasonUnauthorized {
			return nil, fmt.Errorf("node agent: %w", err) // trying again will not help
		}
		a.log.Warn("could not register the node; retrying", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// facts are what the Node's status is computed from, now.
func (a *Agent) facts() nodeFacts {
	return nodeFacts{
		name:        a.cfg.NodeName,
		labels:      a.cfg.NodeLabels,
		annotations: a.cfg.NodeAnnotations,
		ip:          a.NodeIP(),
		machine:     a.machine,
		maxPods:     a.cfg.MaxPods,
		kubeletPort: a.cfg.KubeletPort,
		notReady:    a.readiness.notReady(),
		now:         time.Now(),
	}
}

// runComponent runs one component and tracks its readiness.
func (a *Agent) runComponent(ctx context.Context, c Component) error {
	a.readiness.set(c.Name, false, "starting")
	err := c.Run(ctx, func() { a.readiness.set(c.Name, true, "") })
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		err = errors.New("stopped")
	}
	a.readiness.set(c.Name, false, err.Error())
	return fmt.Errorf("node agent: %s: %w", c.Name, err)
}

// runPods waits for the node's podCIDR, prepares the pod network, and then
// runs the routes to other nodes and the pod workers.
func (a *Agent) runPods(ctx context.Context, podNetwork *network.Network, nodes *cache.Informer[api.Node, *api.Node], nodesChanged <-chan struct{}, pods *podworker.Manager) error {
	a.readiness.set(partNetwork, false, "no podCIDR assigned yet")
	podCIDR, err := a.waitForPodCIDR(ctx, nodes, nodesChanged)
	if err != nil {
		return nil // ctx ended
	}
	delay := time.Second
	for {
		err := podNetwork.Start(ctx, podCIDR)
		if err == nil {
			break
		}
		a.readiness.set(partNetwork, false, err.Error())
		a.log.Error("could not prepare the pod network; retrying", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
	a.readiness.set(partNetwork, true, "")

	podInformer := cache.NewInformer(client.For[api.Pod](a.client, ""),
		client.ListOptions{FieldSelector: "spec.nodeName=" + a.cfg.NodeName}, 0, cache.WithLogger(a.log))
	podInformer.AddHandler(cache.Handler[*api.Pod]{
		OnAdd:    pods.UpdatePod,
		OnUpdate: func(_, pod *api.Pod) { pods.UpdatePod(pod) },
		OnDelete: pods.RemovePod,
	})
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.syncRoutes(ctx, podNetwork, nodes, nodesChanged) })
	g.Go(func() error { podInformer.Run(ctx); return nil })
	g.Go(func() error {
		// Every Pod bound here must be known before the workers decide
		// what is left over from Pods that are gone.
		if !cache.WaitForCacheSync(ctx, podInformer) {
			return nil
		}
		return pods.Run(ctx)
	})
	return g.Wait()
}

// waitForPodCIDR waits until the node controller has given the Node its
// podCIDR.
func (a *Agent) waitForPodCIDR(ctx context.Context, nodes *cache.Informer[api.Node, *api.Node], changed <-chan struct{}) (netip.Prefix, error) {
	logged := false
	for {
		if node, ok := nodes.Get("", a.cfg.NodeName); ok && node.Spec.PodCIDR != "" {
			podCIDR, err := netip.ParsePrefix(node.Spec.PodCIDR)
			if err == nil {
				a.log.Info("node has its podCIDR", "podCIDR", podCIDR)
				return podCIDR, nil
			}
			a.log.Error("the node's podCIDR does not parse", "podCIDR", node.Spec.PodCIDR, "err", err)
		} else if !logged {
			a.log.Info("waiting for the node controller to assign a podCIDR")
			logged = true
		}
		select {
		case <-ctx.Done():
			return netip.Prefix{}, ctx.Err()
		case <-changed:
		}
	}
}

// syncRoutes keeps a route to every other node's podCIDR through that
// node's InternalIP (host-gw), following the Node objects; a periodic
// resync repairs routes someone removed.
func (a *Agent) syncRoutes(ctx context.Context, podNetwork *network.Network, nodes *cache.Informer[api.Node, *api.Node], changed <-chan struct{}) error {
	ticker := time.NewTicker(DefaultRouteResyncPeriod)
	defer ticker.Stop()
	for {
		if err := podNetwork.SyncRoutes(desiredRoutes(a.cfg.NodeName, nodes.List(""))); err != nil {
			a.log.Warn("could not sync routes to other nodes' pods", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-ticker.C:
		}
	}
}

// desiredRoutes is one route per other node that has a podCIDR and an
// InternalIP.
func desiredRoutes(self string, nodes []*api.Node) []network.Route {
	var routes []network.Route
	for _, n := range nodes {
		if n.Name == self || n.Spec.PodCIDR == "" {
			continue
		}
		dst, err := netip.ParsePrefix(n.Spec.PodCIDR)
		if err != nil {
			continue
		}
		gw, err := netip.ParseAddr(n.InternalIP())
		if err != nil {
			continue
		}
		routes = append(routes, network.Route{Dst: dst.Masked(), Gateway: gw})
	}
	return routes
}

// podWorkerConfig wires the pod workers to the runtime, the network and
// the API.
func (a *Agent) podWorkerConfig(nodeIP string, rt *runtime.Runtime, podNetwork *network.Network, recorder *eventRecorder) podworker.Config {
	hostNetNS := a.cfg.NetNS
	if hostNetNS == "" {
		hostNetNS = fmt.Sprintf("/proc/%d/ns/net", os.Getpid())
	}
	hostResolvConf, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		a.log.Warn("could not read the node's resolv.conf (for dnsPolicy Default)", "err", err)
	}
	return podworker.Config{
		NodeName:      a.cfg.NodeName,
		NodeIP:        nodeIP,
		HostNetNSPath: hostNetNS,
		DNS: podworker.DNSSettings{
			ClusterDNS:     []string{a.cfg.ClusterDNS},
			ClusterDomain:  a.cfg.ClusterDomain,
			HostResolvConf: hostResolvConf,
		},
		PodsDir:          a.cfg.podsDir(),
		LogsDir:          a.cfg.logsDir(),
		Runtime:          rt,
		Network:          podNetwork,
		API:              podAPI{client: a.client},
		Recorder:         recorder,
		Dial:             podNetwork.Node().DialContext,
		ResyncPeriod:     a.cfg.PodResyncPeriod,
		BackOffInitial:   a.cfg.BackOffInitial,
		BackOffMax:       a.cfg.BackOffMax,
		ImagePullTimeout: a.cfg.ImagePullTimeout,
		Logger:           a.log,
	}
}

// NodeName is the name of the agent's Node.
func (a *Agent) NodeName() string { return a.cfg.NodeName }

// NodeIP is the node's InternalIP, once Run has settled it.
func (a *Agent) NodeIP() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.nodeIP
}

// NetNS is the node's network namespace (Config.NetNS): the service
// proxy must program the same one.
func (a *Agent) NetNS() string { return a.cfg.NetNS }

// Client is the agent's API client (with the node's credentials), for
// components that run beside it.
func (a *Agent) Client() *client.Client { return a.client }

// Ready is closed the first time the node is Ready: its runtime, pod
// network and components all up.
func (a *Agent) Ready() <-chan struct{} { return a.readiness.ready }

// Runtime is the agent's container runtime, for the logs, exec and attach
// server; nil until Run has connected to containerd (components start
// after that).
func (a *Agent) Runtime() runtime.Interface {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.runtime == nil {
		return nil
	}
	return a.runtime
}

// ContainerFor says where a container of a Pod on this node runs: its
// runtime container ID (the Pod's containerID without "containerd://") and
// its CRI-format log file. The errors match ErrPodNotFound and
// ErrContainerNotFound.
func (a *Agent) ContainerFor(podNamespace, podName, container string) (id, logPath string, err error) {
	current, _, err := a.containerRefs(podNamespace, podName, container)
	return current.ID, current.LogPath, err
}

// PreviousContainerFor is ContainerFor for the container's previous
// attempt (`kubectl logs --previous`); ErrContainerNotFound when it has
// none.
func (a *Agent) PreviousContainerFor(podNamespace, podName, container string) (id, logPath string, err error) {
	_, previous, err := a.containerRefs(podNamespace, podName, container)
	if err == nil && previous.ID == "" {
		err = fmt.Errorf("previous container %q of pod %s/%s: %w", container, podNamespace, podName, ErrContainerNotFound)
	}
	return previous.ID, previous.LogPath, err
}

// PreviousLogFor is the log file of the container's previous attempt, for
// the logs server's previous=true.
func (a *Agent) PreviousLogFor(podNamespace, podName, container string) (logPath string, err error) {
	_, logPath, err = a.PreviousContainerFor(podNamespace, podName, container)
	return logPath, err
}

// StdinOnceFor reports the container's stdinOnce, for the attach server:
// the container's stdin closes when the first attached client's ends.
func (a *Agent) StdinOnceFor(podNamespace, podName, container string) bool {
	pods := a.podManager()
	if pods == nil {
		return false
	}
	c, err := pods.ContainerSpec(podNamespace, podName, container)
	return err == nil && c.StdinOnce
}

func (a *Agent) podManager() *podworker.Manager {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pods
}

func (a *Agent) containerRefs(namespace, name, container string) (current, previous podworker.ContainerRef, err error) {
	pods := a.podManager()
	if pods == nil {
		return current, previous, fmt.Errorf("%s/%s: %w", namespace, name, ErrPodNotFound)
	}
	return pods.ContainerFor(namespace, name, container)
}
