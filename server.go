package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/apiserver"
	"kubelite/apiserver/auth"
	"kubelite/apiserver/etcd"
	"kubelite/apiserver/podproxy"
	"kubelite/apiserver/storage"
	"kubelite/controller"
	"kubelite/controller/all"
	"kubelite/controller/allocator"
)

// serverOptions are the flags of `kubelite server`.
type serverOptions struct {
	DataDir          string
	BindAddress      string
	AdvertiseAddress string
	Port             int
	DisableAgent     bool
	EtcdServers      []string
	EtcdClientURL    string
	EtcdPeerURL      string
	ServiceCIDR      string
	ClusterCIDR      string
	NodePortRange    string
	ClusterDomain    string
	LoadBalancerPool string
	NodeMonitorGrace time.Duration
	PodEviction      time.Duration
	// Agent configures the node agent that runs inside the server unless
	// DisableAgent; it joins exactly as a remote agent does.
	Agent agentOptions
}

func newServerCommand() *cobra.Command {
	o := serverOptions{}
	var agentFlags agentOptions
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane: etcd, API server, controllers and DNS (and a node agent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := agentFlags.validateProxyFlags(); err != nil {
				return err
			}
			o.Agent = agentFlags
			return runServer(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&agentFlags.NodeName, "node-name", "", "name of this server's Node (default: the host name)")
	f.StringVar(&agentFlags.NodeIP, "node-ip", "", "this server's Node InternalIP (default: the advertise address)")
	f.StringVar(&agentFlags.ContainerdAddress, "containerd-address", "", "socket of an existing containerd for the agent (default: run our own)")
	f.StringVar(&agentFlags.ImagesDir, "images-dir", "", "image tarballs the agent imports (default <data-dir>/agent/images)")
	f.IntVar(&agentFlags.KubeletPort, "kubelet-port", 10250, "port of this node's logs and exec API")
	f.StringSliceVar(&agentFlags.DNSUpstreams, "cluster-dns-upstream", nil, "resolvers for names outside the cluster (default: the nameservers of /etc/resolv.conf)")
	agentFlags.addProxyFlags(f)
	f.StringVar(&o.DataDir, "data-dir", "/var/lib/kubelite", "where etcd data, certificates, tokens and the admin kubeconfig live")
	f.StringVar(&o.BindAddress, "bind-address", "0.0.0.0", "address the API server listens on")
	f.StringVar(&o.AdvertiseAddress, "advertise-address", "", "address other nodes reach the API server at (default: the bind address, or this machine's address)")
	f.IntVar(&o.Port, "port", 6443, "API server port (HTTPS)")
	f.BoolVar(&o.DisableAgent, "disable-agent", false, "do not run a node agent in this process")
	f.StringSliceVar(&o.EtcdServers, "etcd-servers", nil, "external etcd endpoints (default: an embedded etcd in the data dir)")
	f.StringVar(&o.EtcdClientURL, "etcd-listen-client-url", "http://127.0.0.1:2379", "client URL of the embedded etcd")
	f.StringVar(&o.EtcdPeerURL, "etcd-listen-peer-url", "http://127.0.0.1:2380", "peer URL of the embedded etcd")
	f.StringVar(&o.ServiceCIDR, "service-cidr", "10.96.0.0/12", "range of Service cluster IPs")
	f.StringVar(&o.ClusterCIDR, "cluster-cidr", "10.244.0.0/16", "range of Pod IPs; each node gets a /24")
	f.StringVar(&o.NodePortRange, "service-node-port-range", "30000-32767", "range of NodePorts")
	f.StringVar(&o.ClusterDomain, "cluster-domain", "cluster.local", "DNS domain of the cluster")
	f.StringVar(&o.LoadBalancerPool, "loadbalancer-pool", "", "addresses for LoadBalancer Services (a CIDR or a range a.b.c.d-a.b.c.e); empty leaves them <pending>")
	f.DurationVar(&o.NodeMonitorGrace, "node-monitor-grace-period", 40*time.Second, "how long a silent node stays Ready")
	f.DurationVar(&o.PodEviction, "pod-eviction-timeout", 60*time.Second, "how long Pods stay on a NotReady node before they are replaced elsewhere")
	return cmd
}

// runServer starts the control plane and blocks until ctx ends.
func runServer(ctx context.Context, o serverOptions) error {
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	serviceIP, err := firstServiceIP(o.ServiceCIDR)
	if err != nil {
		return err
	}

	etcdClient, etcdFailed, closeEtcd, err := startEtcd(ctx, o)
	if err != nil {
		return err
	}
	defer closeEtcd()
	// A dead embedded etcd ends the server rather than leave it answering errors.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case err := <-etcdFailed:
			slog.Error("embedded etcd failed", "err", err)
			cancel(fmt.Errorf("embedded etcd: %w", err))
		case <-ctx.Done():
		}
	}()
	store := storage.New(etcdClient, "/registry")

	hosts := append(machineAddresses(), auth.ClusterSANs(serviceIP, o.ClusterDomain)...)
	if h, err := os.Hostname(); err == nil {
		hosts = append(hosts, h)
	}
	for _, a := range []string{o.BindAddress, o.AdvertiseAddress} {
		if a != "" && !net.ParseIP(a).IsUnspecified() {
			hosts = append(hosts, a)
		}
	}
	pki, err := auth.EnsurePKI(filepath.Join(o.DataDir, "tls"), hosts)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	tokens, err := auth.EnsureServerTokens(filepath.Join(o.DataDir, "auth"), filepath.Join(o.DataDir, "node-token"), pki.CACertPEM)
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	authn, err := auth.NewAuthenticator(tokens.Users())
	if err != nil {
		return fmt.Errorf("authenticator: %w", err)
	}

	listenAddr := net.JoinHostPort(o.BindAddress, strconv.Itoa(o.Port))
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return fmt.Errorf("api server listen: %w", err)
	}
	localURL := "https://" + net.JoinHostPort(localAddress(o.BindAddress), strconv.Itoa(o.Port))
	// Service cluster IPs and node ports are allocated in etcd transactions
	// while the Service is written, as Kubernetes' Service registry does.
	services, err := allocator.NewServiceHook(etcdClient, allocator.Config{ServiceCIDR: o.ServiceCIDR, NodePortRange: o.NodePortRange})
	if err != nil {
		return fmt.Errorf("service allocator: %w", err)
	}
	// pods/log, pods/exec and pods/attach are served by the Pod's node agent.
	podProxy, err := podproxy.New(podproxy.Config{
		Objects:   podproxy.StoreObjects(store),
		NodeToken: tokens.Node,
		Authorize: auth.DefaultPolicy().AuthorizeRequest,
	})
	if err != nil {
		return fmt.Errorf("pod proxy: %w", err)
	}
	srv := apiserver.New(apiserver.Config{
		Store:           store,
		Scheme:          api.NewScheme(),
		Authenticate:    authn.Middleware,
		Authorize:       auth.DefaultPolicy().AuthorizeRequest,
		Hooks:           map[string]apiserver.Hook{"services": services},
		Proxies:         podProxy.Handlers(),
		CACertPEM:       pki.CACertPEM,
		ExternalAddress: net.JoinHostPort(advertised(o), strconv.Itoa(o.Port)),
	})
	if err := srv.Bootstrap(ctx); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	kubeconfig := filepath.Join(o.DataDir, "admin.kubeconfig")
	if err := client.WriteKubeconfig(kubeconfig, &client.Config{Server: localURL, Token: tokens.Admin, CAData: pki.CACertPEM}, "kubelite", "admin"); err != nil {
		return fmt.Errorf("admin kubeconfig: %w", err)
	}
	go store.RunCompactor(ctx, 5*time.Minute, 10000)
	go services.RunRepair(ctx, time.Minute, func(ctx context.Context) ([]api.Service, error) {
		return listServices(ctx, store)
	})

	// The controllers reach the API like any other client, over HTTPS with
	// the admin token, as kube-controller-manager does.
	self, err := client.New(&client.Config{Server: localURL, Token: tokens.Admin, CAData: pki.CACertPEM, UserAgent: "kubelite-controller-manager"})
	if err != nil {
		return fmt.Errorf("controller client: %w", err)
	}
	managerConfig := controller.ManagerConfig{
		Client:                 self,
		Etcd:                   etcdClient,
		Identity:               identity(),
		ServiceCIDR:            o.ServiceCIDR,
		ClusterCIDR:            o.ClusterCIDR,
		APIServerAddress:       advertised(o),
		APIServerPort:          o.Port,
		LoadBalancerPool:       o.LoadBalancerPool,
		NodeMonitorGracePeriod: o.NodeMonitorGrace,
		PodEvictionTimeout:     o.PodEviction,
		Controllers:            all.Controllers(),
	}

	slog.Info("kubelite server ready", "api", localURL, "kubeconfig", kubeconfig, "etcd", etcdDescription(o))
	parts := []func(context.Context) error{
		func(ctx context.Context) error { return srv.Serve(ctx, tls.NewListener(ln, pki.ServingTLSConfig())) },
		func(ctx context.Context) error { return controller.RunManager(ctx, managerConfig) },
	}
	if !o.DisableAgent {
		// The local agent joins through the same path as a remote one: the
		// server URL, the published join token, the CA checked by its hash.
		a := o.Agent
		a.Server = localURL
		a.TokenFile = filepath.Join(o.DataDir, "node-token")
		a.DataDir = filepath.Join(o.DataDir, "agent")
		if a.NodeIP == "" {
			a.NodeIP = advertised(o)
		}
		a.ClusterCIDR, a.ClusterDomain = o.ClusterCIDR, o.ClusterDomain
		a.ClusterDNS = nthIP(serviceIP, 9).String()
		parts = append(parts, func(ctx context.Context) error { return runAgent(ctx, a) })
	}
	err = runAll(ctx, parts...)
	if err != nil {
		return err
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

// startEtcd connects to the external etcd cluster, or starts the embedded
// one; the channel reports the embedded server's failure.
func startEtcd(ctx context.Context, o serverOptions) (*clientv3.Client, <-chan error, func(), error) {
	if len(o.EtcdServers) > 0 {
		cli, err := etcd.Connect(ctx, o.EtcdServers)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("etcd %v: %w", o.EtcdServers, err)
		}
		return cli, nil, func() { _ = cli.Close() }, nil
	}
	e, err := etcd.StartEmbedded(ctx, etcd.EmbeddedConfig{
		DataDir:   filepath.Join(o.DataDir, "etcd"),
		ClientURL: o.EtcdClientURL,
		PeerURL:   o.EtcdPeerURL,
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("embedded etcd: %w", err)
	}
	return e.Client(), e.Failed(), e.Close, nil
}

func etcdDescription(o serverOptions) string {
	if len(o.EtcdServers) > 0 {
		return strings.Join(o.EtcdServers, ",")
	}
	return "embedded " + o.EtcdClientURL
}

// firstServiceIP is the first address of the service range: the `kubernetes` Service's IP.
func firstServiceIP(cidr string) (net.IP, error) {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, fmt.Errorf("--service-cidr %q: %w", cidr, err)
	}
	ip := n.IP.To4()
	if ip == nil {
		return nil, fmt.Errorf("--service-cidr %q: only IPv4 ranges are supported", cidr)
	}
	first := make(net.IP, 4)
	copy(first, ip)
	first[3]++
	return first, nil
}

// localAddress is where a client on this machine reaches the API server.
func localAddress(bind string) string {
	if ip := net.ParseIP(bind); ip == nil || ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return bind
}

// advertised is the address other nodes use to reach this server.
func advertised(o serverOptions) string {
	if o.AdvertiseAddress != "" {
		return o.AdvertiseAddress
	}
	if ip := net.ParseIP(o.BindAddress); ip != nil && !ip.IsUnspecified() {
		return o.BindAddress
	}
	if addrs := machineAddresses(); len(addrs) > 0 {
		return addrs[0]
	}
	return "127.0.0.1"
}

// machineAddresses lists this machine's non-loopback IPv4 addresses, so the
// serving certificate is valid for every address a node might dial.
func machineAddresses() []string {
	var out []string
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
			out = append(out, ipn.IP.String())
		}
	}
	return out
}

// listServices reads every Service straight from storage, for the allocator's repair loop.
func listServices(ctx context.Context, store *storage.Store) ([]api.Service, error) {
	res, _ := api.NewScheme().ByName("services")
	objs, _, err := store.For(res).List(ctx, "", nil)
	if err != nil {
		return nil, err
	}
	out := make([]api.Service, 0, len(objs))
	for _, o := range objs {
		out = append(out, *o.(*api.Service))
	}
	return out, nil
}

// identity names this server in leader election: hostname and a random suffix.
func identity() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s_%x", host, b)
}

// runAll runs each part until ctx ends or one of them fails; then it stops
// the others and waits for all of them. It returns the first failure.
func runAll(ctx context.Context, parts ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(parts))
	for _, part := range parts {
		go func() {
			err := part(ctx)
			if err != nil && ctx.Err() == nil {
				cancel()
			}
			errs <- err
		}()
	}
	var first error
	for range parts {
		if err := <-errs; err != nil && first == nil && !errors.Is(err, context.Canceled) {
			first = err
		}
	}
	return first
}

// nthIP returns ip + n (the kube-dns Service is the service range's tenth address).
func nthIP(ip net.IP, n int) net.IP {
	out := make(net.IP, 4)
	copy(out, ip.To4())
	out[3] += byte(n)
	return out
}
