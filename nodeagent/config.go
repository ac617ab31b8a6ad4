package nodeagent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/nodeagent/runtime"
)

// Version is what the node reports as its kubelet version.
const Version = "v1.32.0+kubelite"

// Defaults of Config.
const (
	DefaultClusterCIDR               = "10.244.0.0/16"
	DefaultClusterDNS                = "10.96.0.10"
	DefaultClusterDomain             = "cluster.local"
	DefaultContainerdNamespace       = "kubelite"
	DefaultMaxPods                   = 110
	DefaultLeaseDuration             = 40 * time.Second
	DefaultLeaseRenewInterval        = 10 * time.Second
	DefaultNodeStatusUpdateFrequency = 10 * time.Second
	DefaultNodeStatusReportFrequency = time.Minute
	DefaultImagesPollInterval        = 10 * time.Second
	DefaultRouteResyncPeriod         = time.Minute
)

// Config says how to run one node agent. New fills in the defaults.
type Config struct {
	// The API server: ServerURL with Token (and CAData, the cluster's CA
	// in PEM), or a Kubeconfig file instead.
	ServerURL  string
	Token      string
	CAData     []byte
	Kubeconfig string

	// NodeName is the Node's name (default: the host name, lower case).
	NodeName string
	// NodeIP is the Node's InternalIP. When empty it is the source address
	// of the route to the API server, else of the default route — never
	// guessed from "the first interface", which on a Vagrant VM is the NAT
	// address every VM shares (see network.ChooseNodeIP).
	NodeIP string
	// NetNS is the network namespace the node's pod network lives in
	// (bridge, veths, routes, iptables rules): a path such as
	// /run/netns/node1. "" is the agent's own namespace, as on any real
	// machine; the one-machine lab and the tests give each agent a
	// namespace of its own, while the agent itself, containerd and the API
	// server stay in the machine's.
	NetNS string

	// DataDir holds everything the agent keeps: containerd's data (when it
	// runs its own), the pod network's state, pod files and container logs.
	// Required.
	DataDir string
	// ContainerdAddress is the socket of a containerd to use; "" starts and
	// supervises one of the agent's own under DataDir, as k3s does.
	ContainerdAddress string
	// ContainerdNamespace is the agent's namespace in containerd (default
	// "kubelite"). Agents sharing one containerd must each have their own.
	ContainerdNamespace string
	// ImagesDir holds image tarballs to import at start and whenever new
	// ones appear (default <DataDir>/images).
	ImagesDir string
	// PlainHTTPRegistries are registries ("host:port") pulled from over
	// plain HTTP; loopback ones always are.
	PlainHTTPRegistries []string

	// ClusterCIDR holds every node's pod CIDR (default 10.244.0.0/16).
	ClusterCIDR string
	// ClusterDNS is the cluster DNS Service's IP that Pods' resolv.conf
	// points at (default 10.96.0.10).
	ClusterDNS string
	// ClusterDomain is the cluster's DNS domain (default cluster.local).
	ClusterDomain string

	// CNIPluginDirs are searched for CNI plugins (default /usr/lib/cni,
	// /opt/cni/bin).
	CNIPluginDirs []string
	// BridgeName is the pods' bridge (default "kl-" and the node name, or
	// a hash of it when that is too long for an interface name).
	BridgeName string
	// PodNetNSDir is where Pods' network namespaces are pinned (default
	// /run/netns), each named kubelite-<node>-<pod uid>.
	PodNetNSDir string
	// MTU of the pods' interfaces (default: the bridge plugin's).
	MTU int

	// NodeLabels and NodeAnnotations are put on the Node at registration
	// (beside the kubernetes.io/ labels the agent sets), and restored at
	// each start. The node API's serving certificate travels this way.
	NodeLabels      map[string]string
	NodeAnnotations map[string]string

	// MaxPods is the node's pod capacity (default 110).
	MaxPods int
	// KubeletPort is the port of the node's logs and exec server, shown in
	// status.daemonEndpoints; 0 shows none.
	KubeletPort int32

	// Components run beside the agent: the service proxy, the DNS server,
	// the logs and exec server. The Node is Ready only once each has said
	// it is.
	Components []Component

	// Timing; zero means the default.
	LeaseDuration             time.Duration // how long the node's Lease lasts without renewal (40 s)
	LeaseRenewInterval        time.Duration // how often the Lease is renewed (10 s)
	NodeStatusUpdateFrequency time.Duration // how often the node's status is computed (10 s)
	NodeStatusReportFrequency time.Duration // how often it is written when nothing changed (1 min)
	PodResyncPeriod           time.Duration // each pod worker's backstop resync (1 min)
	ImagesPollInterval        time.Duration // how often ImagesDir is looked at (10 s)
	ImagePullTimeout          time.Duration // one image pull at most (5 min)
	BackOffInitial            time.Duration // restart and pull back-off start (10 s)
	BackOffMax                time.Duration // and ceiling (5 min)

	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Component is a part of the node that runs beside the agent, such as the
// service proxy or the DNS server. Whoever wires the agent (`kubelite
// agent`, `kubelite server`) builds them; the agent runs them and counts
// them in the Node's readiness.
type Component struct {
	// Name is how the Node's Ready condition names it while it is not ready.
	Name string
	// Run runs the component until ctx ends and then returns nil. It calls
	// ready once it serves. Any error it returns stops the agent, as a
	// node whose proxy or DNS is gone cannot do its job.
	Run func(ctx context.Context, ready func()) error
}

// withDefaults checks cfg and fills in its defaults.
func (cfg Config) withDefaults() (Config, error) {
	var problems []string
	if cfg.ServerURL == "" && cfg.Kubeconfig == "" {
		problems = append(problems, "no API server: set ServerURL and Token, or Kubeconfig")
	}
	if cfg.DataDir == "" {
		problems = append(problems, "no data directory")
	}
	if cfg.NodeName == "" {
		host, err := os.Hostname()
		if err != nil {
			problems = append(problems, fmt.Sprintf("no node name, and no host name: %v", err))
		}
		cfg.NodeName = strings.ToLower(host)
	}
	if errs := api.IsDNS1123Subdomain(cfg.NodeName); len(errs) > 0 {
		problems = append(problems, fmt.Sprintf("node name %q: %s", cfg.NodeName, strings.Join(errs, "; ")))
	}
	if cfg.NodeIP != "" {
		if _, err := netip.ParseAddr(cfg.NodeIP); err != nil {
			problems = append(problems, fmt.Sprintf("node IP %q is not an IP address", cfg.NodeIP))
		}
	}
	cfg.ClusterCIDR = orString(cfg.ClusterCIDR, DefaultClusterCIDR)
	if p, err := netip.ParsePrefix(cfg.ClusterCIDR); err != nil || !p.Addr().Is4() {
		problems = append(problems, fmt.Sprintf("cluster CIDR %q is not an IPv4 CIDR", cfg.ClusterCIDR))
	}
	cfg.ClusterDNS = orString(cfg.ClusterDNS, DefaultClusterDNS)
	if _, err := netip.ParseAddr(cfg.ClusterDNS); err != nil {
		problems = append(problems, fmt.Sprintf("cluster DNS %q is not an IP address", cfg.ClusterDNS))
	}
	cfg.ClusterDomain = strings.TrimSuffix(orString(cfg.ClusterDomain, DefaultClusterDomain), ".")
	cfg.BridgeName = orString(cfg.BridgeName, bridgeNameFor(cfg.NodeName))
	if len(cfg.BridgeName) > 15 {
		problems = append(problems, fmt.Sprintf("bridge name %q is longer than 15 characters", cfg.BridgeName))
	}
	for _, c := range cfg.Components {
		if c.Name == "" || c.Run == nil {
			problems = append(problems, "a component needs a name and a Run function")
		}
	}
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("node agent: %s", strings.Join(problems, "; "))
	}

	if dir, err := filepath.Abs(cfg.DataDir); err == nil {
		cfg.DataDir = dir
	}
	cfg.ContainerdNamespace = orString(cfg.ContainerdNamespace, DefaultContainerdNamespace)
	cfg.ImagesDir = orString(cfg.ImagesDir, filepath.Join(cfg.DataDir, "images"))
	if cfg.MaxPods <= 0 {
		cfg.MaxPods = DefaultMaxPods
	}
	cfg.LeaseDuration = orDuration(cfg.LeaseDuration, DefaultLeaseDuration)
	cfg.LeaseRenewInterval = orDuration(cfg.LeaseRenewInterval, DefaultLeaseRenewInterval)
	cfg.NodeStatusUpdateFrequency = orDuration(cfg.NodeStatusUpdateFrequency, DefaultNodeStatusUpdateFrequency)
	cfg.NodeStatusReportFrequency = orDuration(cfg.NodeStatusReportFrequency, DefaultNodeStatusReportFrequency)
	cfg.ImagesPollInterval = orDuration(cfg.ImagesPollInterval, DefaultImagesPollInterval)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg, nil
}

// clientConfig is how the agent reaches the API server.
func (cfg Config) clientConfig() (*client.Config, error) {
	if cfg.Kubeconfig != "" {
		cc, err := client.LoadKubeconfig(cfg.Kubeconfig, "")
		if err != nil {
			return nil, fmt.Errorf("node agent: %w", err)
		}
		cc.UserAgent = "kubelite-agent/" + cfg.NodeName
		return cc, nil
	}
	if cfg.Token == "" {
		return nil, errors.New("node agent: no token to join the cluster with")
	}
	return &client.Config{
		Server:    cfg.ServerURL,
		Token:     cfg.Token,
		CAData:    cfg.CAData,
		UserAgent: "kubelite-agent/" + cfg.NodeName,
	}, nil
}

// Where the agent keeps things, under DataDir.
func (cfg Config) containerdDir() string { return filepath.Join(cfg.DataDir, "containerd") }
func (cfg Config) runtimeDir() string    { return filepath.Join(cfg.DataDir, "runtime") }
func (cfg Config) networkDir() string    { return filepath.Join(cfg.DataDir, "network") }
func (cfg Config) podsDir() string       { return filepath.Join(cfg.DataDir, "pods") }
func (cfg Config) logsDir() string       { return filepath.Join(cfg.DataDir, "logs") }

// podNetNSPrefix starts the names of this agent's pod network namespaces.
func (cfg Config) podNetNSPrefix() string { return "kubelite-" + cfg.NodeName + "-" }

var ifaceName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*$`)

// bridgeNameFor is the default bridge of a node: "kl-node1", or "kl-" and
// a hash of the name when the name does not fit the 15 characters of an
// interface name. It differs between agents, so that two of them never
// share a bridge.
func bridgeNameFor(nodeName string) string {
	if name := "kl-" + nodeName; len(name) <= 15 && ifaceName.MatchString(nodeName) {
		return name
	}
	sum := sha256.Sum256([]byte(nodeName))
	return "kl-" + hex.EncodeToString(sum[:])[:12]
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// runtimeConfig is the runtime's configuration for an agent.
func (cfg Config) runtimeConfig(address string) runtime.Config {
	return runtime.Config{
		Address:             address,
		Namespace:           cfg.ContainerdNamespace,
		StateDir:            cfg.runtimeDir(),
		PlainHTTPRegistries: cfg.PlainHTTPRegistries,
		Logger:              cfg.Logger,
	}
}
