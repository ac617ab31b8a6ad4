package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// DefaultPluginDirs are where CNI plugins are looked for: Debian's
// folder, then the one of the upstream release tarball.
func DefaultPluginDirs() []string { return []string{"/usr/lib/cni", "/opt/cni/bin"} }

// DefaultPodNetNSDir is where pod network namespaces are pinned, beside
// those of `ip netns`, so that `ip netns exec` reaches them.
const DefaultPodNetNSDir = "/run/netns"

// Config says where and how to build a node's pod network.
type Config struct {
	// NetNS is the node's network namespace (a path such as
	// /run/netns/node1); "" is the agent's own, as on a real machine.
	NetNS string
	// StateDir holds the rendered CNI configuration, libcni's cache,
	// host-local's address store and one state file per Pod. Required;
	// the agent uses <data-dir>/network.
	StateDir string
	// PluginDirs are searched for CNI plugins (DefaultPluginDirs()).
	PluginDirs []string
	// PodNetNSDir is where pod namespaces are pinned (DefaultPodNetNSDir).
	PodNetNSDir string
	// PodNetNSPrefix starts the name of every pod namespace of this agent,
	// e.g. "kubelite-node1-", so that agents sharing a machine never
	// touch each other's. Required.
	PodNetNSPrefix string
	// BridgeName is the pods' bridge in the node's namespace (at most 15
	// characters). Required.
	BridgeName string
	// ClusterCIDR holds every node's pod CIDR; traffic leaving it is
	// masqueraded.
	ClusterCIDR netip.Prefix
	// MTU of the pods' interfaces; 0 leaves the plugin's default.
	MTU int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Pod names a Pod to attach.
type Pod struct {
	UID, Namespace, Name string
	PortMappings         []PortMapping
}

// PodNetwork is a Pod's place on the network, as remembered in its state
// file.
type PodNetwork struct {
	PodUID       string        `json:"podUID"`
	PodNamespace string        `json:"podNamespace"`
	PodName      string        `json:"podName"`
	NetNSPath    string        `json:"netns"`
	IP           netip.Addr    `json:"ip"`
	PortMappings []PortMapping `json:"portMappings,omitempty"`
	// SandboxID is new each time the Pod's namespace is made: containers
	// record it, so that those of a namespace that is gone are replaced.
	SandboxID string    `json:"sandboxID"`
	CreatedAt time.Time `json:"createdAt"`
}

// Network is one node's pod network. Its methods are safe for concurrent
// use; each Pod is set up and torn down by one caller at a time.
type Network struct {
	cfg    Config
	node   Namespace
	log    *slog.Logger
	routes routeTable
	close  func() error

	mu      sync.Mutex
	podCIDR netip.Prefix
	plugins *cniPlugins // set by Start
}

// New checks cfg and opens the node's routing table. Call Start once the
// node's podCIDR is known, and Close when done.
func New(cfg Config) (*Network, error) {
	var problems []string
	if cfg.StateDir == "" {
		problems = append(problems, "no state directory")
	}
	if cfg.PodNetNSPrefix == "" {
		problems = append(problems, "no prefix for pod network namespaces")
	}
	if cfg.BridgeName == "" || len(cfg.BridgeName) > 15 {
		problems = append(problems, fmt.Sprintf("bridge name %q must have 1 to 15 characters", cfg.BridgeName))
	}
	if !cfg.ClusterCIDR.IsValid() {
		problems = append(problems, "no cluster CIDR")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("pod network: %s", strings.Join(problems, "; "))
	}
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = DefaultPluginDirs()
	}
	if cfg.PodNetNSDir == "" {
		cfg.PodNetNSDir = DefaultPodNetNSDir
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	node := Namespace{Path: cfg.NetNS}
	handle, err := node.netlinkHandle()
	if err != nil {
		return nil, fmt.Errorf("pod network: %w", err)
	}
	for _, dir := range []string{cfg.StateDir, filepath.Join(cfg.StateDir, "pods")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			handle.Close()
			return nil, fmt.Errorf("pod network: %w", err)
		}
	}
	return &Network{
		cfg:    cfg,
		node:   node,
		log:    cfg.Logger.With("component", "network"),
		routes: netlinkRoutes{handle: handle},
		close:  func() error { handle.Close(); return nil },
	}, nil
}

// Close releases the netlink sockets. The network itself stays as it is.
func (n *Network) Close() error { return n.close() }

// Node is the node's network namespace; probes dial pods from it.
func (n *Network) Node() Namespace { return n.node }

// ConfListPath is where the rendered CNI configuration is written, for
// people to read (`cat` it to see what the plugins are told).
func (n *Network) ConfListPath() string {
	return filepath.Join(n.cfg.StateDir, "cni", "10-kubelite.conflist")
}

// Start prepares the node for pods of podCIDR: renders the CNI
// configuration, turns on IP forwarding and installs the masquerade rules.
// It may run again (after a failure, or at every agent start).
func (n *Network) Start(ctx context.Context, podCIDR netip.Prefix) error {
	if !podCIDR.IsValid() || !n.cfg.ClusterCIDR.Contains(podCIDR.Addr()) {
		return fmt.Errorf("pod network: pod CIDR %s is not inside the cluster CIDR %s", podCIDR, n.cfg.ClusterCIDR)
	}
	confList, err := renderConfList(confListSettings{
		BridgeName: n.cfg.BridgeName,
		PodCIDR:    podCIDR,
		IPAMDir:    filepath.Join(n.cfg.StateDir, "cni", "ipam"),
		MTU:        n.cfg.MTU,
	})
	if err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	if err := writeFileAtomic(n.ConfListPath(), confList, 0o644); err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	plugins, err := newCNIPlugins(n.node, n.cfg.PluginDirs, filepath.Join(n.cfg.StateDir, "cni", "cache"), confList, n.log)
	if err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	if err := plugins.check(); err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	if err := n.node.writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	// Service traffic between two pods on this bridge must pass iptables to
	// be un-NATed on its way back; that needs br_netfilter, which the agent
	// does not load into the kernel for the whole machine.
	if err := n.node.writeSysctl("net/bridge/bridge-nf-call-iptables", "1"); err != nil {
		n.log.Warn("bridge traffic does not pass iptables (load the br_netfilter module for Service traffic between pods of one node)", "err", err)
	}
	ipt, err := newNamespacedIPTables(n.node)
	if err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	if err := installRules(ipt, podCIDR, n.cfg.ClusterCIDR); err != nil {
		return fmt.Errorf("pod network: %w", err)
	}

	n.mu.Lock()
	n.podCIDR, n.plugins = podCIDR, plugins
	n.mu.Unlock()
	n.log.Info("pod network ready", "podCIDR", podCIDR, "bridge", n.cfg.BridgeName, "cni", n.ConfListPath())
	return nil
}

// PodCIDR is the pod CIDR given to Start, or the zero prefix before.
func (n *Network) PodCIDR() netip.Prefix {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.podCIDR
}

func (n *Network) cni() (*cniPlugins, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.plugins == nil {
		return nil, errors.New("pod network not started: the node has no podCIDR yet")
	}
	return n.plugins, nil
}

// SetupPod gives a Pod its network namespace and IP, or returns the ones
// it has. A Pod whose namespace still exists keeps it, without CNI ADD
// running again; one whose namespace is gone (the machine rebooted) gets a
// new one, with a new SandboxID.
func (n *Network) SetupPod(ctx context.Context, pod Pod) (PodNetwork, error) {
	plugins, err := n.cni()
	if err != nil {
		return PodNetwork{}, err
	}
	state, err := n.readState(pod.UID)
	switch {
	case err == nil && isPinnedNetNS(state.NetNSPath):
		return state, nil
	case err == nil:
		n.log.Warn("pod network namespace is gone; making a new one", "pod", pod.Namespace+"/"+pod.Name, "netns", state.NetNSPath)
	case !errors.Is(err, fs.ErrNotExist):
		n.log.Warn("unreadable pod network state; making a new one", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
	// Release whatever a previous attempt left: an IP, a half-made namespace.
	if err := n.TeardownPod(ctx, pod.UID); err != nil {
		return PodNetwork{}, err
	}

	path := n.netNSPath(pod.UID)
	if err := createPinnedNetNS(path); err != nil {
		return PodNetwork{}, err
	}
	attachment := cniAttachment{PodUID: pod.UID, PodNamespace: pod.Namespace, PodName: pod.Name, NetNSPath: path, PortMappings: pod.PortMappings}
	start := time.Now()
	ip, err := plugins.add(ctx, attachment)
	if err == nil {
		state = PodNetwork{
			PodUID: pod.UID, PodNamespace: pod.Namespace, PodName: pod.Name,
			NetNSPath: path, IP: ip, PortMappings: pod.PortMappings,
			SandboxID: newSandboxID(), CreatedAt: time.Now().UTC(),
		}
		err = n.writeState(state)
	}
	if err != nil {
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := plugins.del(cleanup, attachment); derr != nil {
			n.log.Warn("could not undo a failed pod network setup", "pod", pod.Namespace+"/"+pod.Name, "err", derr)
		}
		deletePinnedNetNS(path)
		return PodNetwork{}, fmt.Errorf("set up network of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	n.log.Info("pod network set up", "pod", pod.Namespace+"/"+pod.Name, "ip", ip, "netns", path, "took", time.Since(start).Round(time.Millisecond))
	return state, nil
}

// TeardownPod detaches a Pod (CNI DEL: its veth goes, its IP is released),
// deletes its namespace and forgets it. It succeeds for a Pod that has no
// network, so it may run again after a failure.
func (n *Network) TeardownPod(ctx context.Context, uid string) error {
	state, err := n.readState(uid)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		n.log.Warn("unreadable pod network state; tearing down what can be found", "uid", uid, "err", err)
	}
	path := n.netNSPath(uid)
	_, statErr := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) && errors.Is(statErr, fs.ErrNotExist) {
		return nil // nothing was ever set up, or it is all gone
	}
	plugins, err := n.cni()
	if err != nil {
		return err
	}
	attachment := cniAttachment{PodUID: uid, PodNamespace: state.PodNamespace, PodName: state.PodName, PortMappings: state.PortMappings}
	if isPinnedNetNS(path) {
		attachment.NetNSPath = path
	}
	if err := plugins.del(ctx, attachment); err != nil {
		return fmt.Errorf("tear down network of pod %s: %w", uid, err)
	}
	if err := deletePinnedNetNS(path); err != nil {
		return fmt.Errorf("tear down network of pod %s: %w", uid, err)
	}
	if err := os.Remove(n.statePath(uid)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tear down network of pod %s: %w", uid, err)
	}
	n.log.Info("pod network torn down", "pod", state.PodNamespace+"/"+state.PodName, "uid", uid, "ip", state.IP)
	return nil
}

// Pods returns the UIDs of the Pods that have (some of) a network here,
// so that the agent tears down those of Pods deleted while it was away.
func (n *Network) Pods() ([]string, error) {
	seen := map[string]bool{}
	var uids []string
	add := func(uid string) {
		if uid != "" && !seen[uid] {
			seen[uid] = true
			uids = append(uids, uid)
		}
	}
	states, err := os.ReadDir(filepath.Join(n.cfg.StateDir, "pods"))
	if err != nil {
		return nil, fmt.Errorf("list pod networks: %w", err)
	}
	for _, e := range states {
		if uid, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			add(uid)
		}
	}
	pinned, err := os.ReadDir(n.cfg.PodNetNSDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list pod networks: %w", err)
	}
	for _, e := range pinned {
		if uid, ok := strings.CutPrefix(e.Name(), n.cfg.PodNetNSPrefix); ok {
			add(uid)
		}
	}
	return uids, nil
}

// SyncRoutes makes the node's routes of ours exactly routes: one to each
// other node's podCIDR through that node.
func (n *Network) SyncRoutes(routes []Route) error {
	changes, err := syncRoutes(n.routes, routes)
	for _, r := range changes.replace {
		n.log.Info("route to pods of another node", "route", r.String())
	}
	for _, r := range changes.remove {
		n.log.Info("removed stale route", "route", r.String())
	}
	return err
}

func (n *Network) netNSPath(uid string) string {
	return filepath.Join(n.cfg.PodNetNSDir, n.cfg.PodNetNSPrefix+uid)
}

func (n *Network) statePath(uid string) string {
	return filepath.Join(n.cfg.StateDir, "pods", uid+".json")
}

func (n *Network) readState(uid string) (PodNetwork, error) {
	data, err := os.ReadFile(n.statePath(uid))
	if err != nil {
		return PodNetwork{}, err
	}
	var state PodNetwork
	if err := json.Unmarshal(data, &state); err != nil {
		return PodNetwork{}, fmt.Errorf("%s: %w", n.statePath(uid), err)
	}
	return state, nil
}

func (n *Network) writeState(state PodNetwork) error {
	data, err := json.MarshalIndent(state, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(n.statePath(state.PodUID), data, 0o600)
}

// writeFileAtomic replaces path so that readers see the old file or the
// new one, never half of one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func newSandboxID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // never happens on Linux
	}
	return hex.EncodeToString(b[:])
}
