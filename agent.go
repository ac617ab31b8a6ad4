package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/api/client/cache"
	"kubelite/apiserver/auth"
	"kubelite/dns"
	"kubelite/nodeagent"
	"kubelite/nodeagent/kubeletserver"
	"kubelite/nodeagent/proxy"
	"kubelite/nodeagent/proxy/iptables"
	"kubelite/nodeagent/runtime"
)

// agentOptions are the flags of `kubelite agent` (and of the agent inside
// `kubelite server`, which takes exactly the same path).
type agentOptions struct {
	Server            string
	Token             string
	TokenFile         string
	CAFile            string
	NodeName          string
	NodeIP            string
	DataDir           string
	ContainerdAddress string
	ImagesDir         string
	ClusterCIDR       string
	ClusterDNS        string
	ClusterDomain     string
	KubeletPort       int
	ProxyMode         string
	IPTablesBackend   string
	MetricsAddr       string
	// DNSUpstreams answer names outside the cluster zone; empty means the
	// nameservers of /etc/resolv.conf.
	DNSUpstreams []string
}

func (o *agentOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.Server, "server", "", "API server URL, e.g. https://192.168.56.11:6443")
	f.StringVar(&o.Token, "token", "", "node join token (prefer --token-file)")
	f.StringVar(&o.TokenFile, "token-file", "", "file holding the node join token (the server's <data-dir>/node-token)")
	f.StringVar(&o.CAFile, "ca-file", "", "cluster CA certificate; not needed when the join token carries the CA's hash")
	f.StringVar(&o.NodeName, "node-name", "", "name of this Node (default: the host name)")
	f.StringVar(&o.NodeIP, "node-ip", "", "this node's InternalIP (default: the address of the interface that routes to the server)")
	f.StringVar(&o.DataDir, "data-dir", "/var/lib/kubelite/agent", "where containerd data, pod state and logs live")
	f.StringVar(&o.ContainerdAddress, "containerd-address", "", "socket of an existing containerd (default: run our own)")
	f.StringVar(&o.ImagesDir, "images-dir", "", "image tarballs imported at start and when new ones appear (default <data-dir>/images)")
	f.StringVar(&o.ClusterCIDR, "cluster-cidr", "10.244.0.0/16", "range of Pod IPs")
	f.StringVar(&o.ClusterDNS, "cluster-dns", "10.96.0.10", "cluster DNS Service IP that Pods use")
	f.StringVar(&o.ClusterDomain, "cluster-domain", "cluster.local", "DNS domain of the cluster")
	f.IntVar(&o.KubeletPort, "kubelet-port", kubeletserver.DefaultPort, "port of this node's logs and exec API")
	o.addProxyFlags(f)
	f.StringSliceVar(&o.DNSUpstreams, "cluster-dns-upstream", nil, "resolvers for names outside the cluster (default: the nameservers of /etc/resolv.conf)")
}

// addProxyFlags adds the service proxy's flags, which the server's own
// agent takes too.
func (o *agentOptions) addProxyFlags(f *pflag.FlagSet) {
	f.StringVar(&o.ProxyMode, "proxy-mode", string(proxy.ModeIPTables), "how Services are programmed: iptables (kube-proxy's chains, as the tutorial shows) or nftables (one table of verdict maps; updates cost the same at any size)")
	f.StringVar(&o.IPTablesBackend, "iptables-backend", "auto", "iptables mode's backend: nft, legacy, or auto (the one already holding this node's rules, else the system's iptables)")
	f.StringVar(&o.MetricsAddr, "metrics-bind-address", "127.0.0.1:10249", "where the service proxy's and DNS server's Prometheus metrics are served (kube-proxy's port); empty: nowhere")
}

// validateProxyFlags checks the proxy flags before anything starts.
func (o *agentOptions) validateProxyFlags() error {
	if _, err := proxy.ParseMode(o.ProxyMode); err != nil {
		return fmt.Errorf("--proxy-mode: %w", err)
	}
	if _, err := iptables.ParseBackend(o.IPTablesBackend); err != nil {
		return fmt.Errorf("--iptables-backend: %w", err)
	}
	return nil
}

func newAgentCommand() *cobra.Command {
	o := agentOptions{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node agent: pods on containerd, the service proxy and cluster DNS",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Server == "" {
				return errors.New("--server is required (e.g. --server https://192.168.56.11:6443)")
			}
			if err := o.validateProxyFlags(); err != nil {
				return err
			}
			return runAgent(cmd.Context(), o)
		},
	}
	o.addFlags(cmd)
	return cmd
}

// runAgent joins the cluster and runs this node until ctx ends.
func runAgent(ctx context.Context, o agentOptions) error {
	secret, caPEM, err := joinCredentials(ctx, o)
	if err != nil {
		return err
	}
	// The agent's helpers (proxy, DNS) share one client and one cache per
	// resource, as the agent's own caches do.
	c, err := client.New(&client.Config{Server: o.Server, Token: secret, CAData: caPEM, UserAgent: "kubelite-agent"})
	if err != nil {
		return err
	}
	caches := newServiceCaches(c)
	metrics := prometheus.NewRegistry()

	var agent *nodeagent.Agent
	nodeIP := func() string { return agent.NodeIP() }
	components := []nodeagent.Component{
		{Name: "service-caches", Run: caches.run},
		{Name: "service-proxy", Run: func(ctx context.Context, ready func()) error {
			return runProxy(ctx, ready, agent, caches, metrics, o)
		}},
		{Name: "cluster-dns", Run: func(ctx context.Context, ready func()) error {
			return runDNS(ctx, ready, nodeIP(), caches, metrics, o)
		}},
	}
	if o.MetricsAddr != "" {
		components = append(components, nodeagent.Component{Name: "metrics", Run: func(ctx context.Context, ready func()) error {
			return serveMetrics(ctx, ready, o.MetricsAddr, metrics)
		}})
	}
	kubeletAPI, err := kubeletserver.New(kubeletserver.Config{
		Addr:    fmt.Sprintf(":%d", o.KubeletPort),
		Token:   secret,
		CertDir: filepath.Join(o.DataDir, "kubelet-pki"),
		Hosts:   hostsOf(o),
	}, lazyLocator{&agent}, lazyRuntime{&agent})
	if err != nil {
		return fmt.Errorf("node API: %w", err)
	}
	components = append(components, nodeagent.Component{Name: "node-api", Run: func(ctx context.Context, ready func()) error {
		ready()
		return kubeletAPI.Run(ctx)
	}})

	agent, err = nodeagent.New(nodeagent.Config{
		ServerURL:         o.Server,
		Token:             secret,
		CAData:            caPEM,
		NodeName:          o.NodeName,
		NodeIP:            o.NodeIP,
		DataDir:           o.DataDir,
		ContainerdAddress: o.ContainerdAddress,
		ImagesDir:         o.ImagesDir,
		ClusterCIDR:       o.ClusterCIDR,
		ClusterDNS:        o.ClusterDNS,
		ClusterDomain:     o.ClusterDomain,
		KubeletPort:       int32(o.KubeletPort),
		NodeAnnotations:   map[string]string{kubeletserver.ServingCertAnnotation: string(kubeletAPI.CertPEM())},
		Components:        components,
	})
	if err != nil {
		return fmt.Errorf("node agent: %w", err)
	}
	return agent.Run(ctx)
}

// joinCredentials reads the join token and establishes trust in the
// cluster CA: from --ca-file, or by fetching /cacerts and checking it
// against the hash the join token carries (as k3s does).
func joinCredentials(ctx context.Context, o agentOptions) (secret string, caPEM []byte, err error) {
	token := o.Token
	if o.TokenFile != "" {
		b, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return "", nil, fmt.Errorf("--token-file: %w", err)
		}
		token = string(b)
	}
	if strings.TrimSpace(token) == "" {
		return "", nil, errors.New("no join token: pass --token-file (the server's <data-dir>/node-token) or --token")
	}
	caHash, secret := auth.ParseJoinToken(token)
	if o.CAFile != "" {
		caPEM, err = os.ReadFile(o.CAFile)
		if err != nil {
			return "", nil, fmt.Errorf("--ca-file: %w", err)
		}
		return secret, caPEM, nil
	}
	if caHash == "" {
		return "", nil, errors.New("the join token carries no CA hash: pass --ca-file with the cluster CA")
	}
	caPEM, err = fetchCA(ctx, o.Server)
	if err != nil {
		return "", nil, err
	}
	if !auth.VerifyCA(caPEM, caHash) {
		return "", nil, fmt.Errorf("the CA served by %s does not match the join token: refusing to trust it", o.Server)
	}
	return secret, caPEM, nil
}

// fetchCA downloads the cluster CA from /cacerts without verifying the
// server: the caller checks it against the join token's hash.
func fetchCA(ctx context.Context, server string) ([]byte, error) {
	httpClient := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, // checked by hash below
	}
	var lastErr error
	for attempt := 0; attempt < 30; attempt++ { // the server may still be starting
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(server, "/")+"/cacerts", nil)
		if err != nil {
			return nil, fmt.Errorf("--server %q: %w", server, err)
		}
		resp, err := httpClient.Do(req)
		if err == nil {
			body, readErr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && readErr == nil {
				return body, nil
			}
			err = fmt.Errorf("GET /cacerts: %s", resp.Status)
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return nil, fmt.Errorf("fetching the cluster CA from %s: %w", server, lastErr)
}

func hostsOf(o agentOptions) []string {
	var hosts []string
	for _, h := range []string{o.NodeName, o.NodeIP} {
		if h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// serviceCaches are the Service, Endpoints and Node caches that the proxy
// and the DNS server read.
type serviceCaches struct {
	services  *cache.Informer[api.Service, *api.Service]
	endpoints *cache.Informer[api.Endpoints, *api.Endpoints]
	nodes     *cache.Informer[api.Node, *api.Node]
}

func newServiceCaches(c *client.Client) *serviceCaches {
	all := client.ListOptions{}
	return &serviceCaches{
		services:  cache.NewInformer(client.For[api.Service](c, ""), all, 0),
		endpoints: cache.NewInformer(client.For[api.Endpoints](c, ""), all, 0),
		nodes:     cache.NewInformer(client.For[api.Node](c, ""), all, 0),
	}
}

// run runs the caches until ctx ends; ready once all have loaded.
func (sc *serviceCaches) run(ctx context.Context, ready func()) error {
	done := make(chan struct{}, 3)
	for _, run := range []func(context.Context){sc.services.Run, sc.endpoints.Run, sc.nodes.Run} {
		go func() { run(ctx); done <- struct{}{} }()
	}
	if cache.WaitForCacheSync(ctx, sc.services, sc.endpoints, sc.nodes) {
		ready()
	}
	for range 3 {
		<-done
	}
	return nil
}

// runProxy runs the service proxy of this node. The kube-dns
// Service is sent to this node's own DNS server (on the node IP, port 53).
func runProxy(ctx context.Context, ready func(), agent *nodeagent.Agent, caches *serviceCaches, metrics prometheus.Registerer, o agentOptions) error {
	clusterCIDR, err := netip.ParsePrefix(o.ClusterCIDR)
	if err != nil {
		return fmt.Errorf("--cluster-cidr: %w", err)
	}
	nodeIP, err := netip.ParseAddr(agent.NodeIP())
	if err != nil {
		return fmt.Errorf("node IP %q: %w", agent.NodeIP(), err)
	}
	mode, err := proxy.ParseMode(o.ProxyMode)
	if err != nil {
		return fmt.Errorf("--proxy-mode: %w", err)
	}
	backend, err := iptables.ParseBackend(o.IPTablesBackend)
	if err != nil {
		return fmt.Errorf("--iptables-backend: %w", err)
	}
	host, err := proxy.NewHost(proxy.HostConfig{LoadBalancerInterface: interfaceWithIP(nodeIP), Mode: mode, IPTablesBackend: backend})
	if err != nil {
		return fmt.Errorf("service proxy: %w", err)
	}
	defer host.Close()
	p, err := proxy.New(proxy.Config{
		NodeName:    agent.NodeName(),
		Mode:        mode,
		ClusterCIDR: clusterCIDR,
		LocalDNS:    netip.AddrPortFrom(nodeIP, 53),
		Registerer:  metrics,
	}, proxy.Sources{Services: caches.services, Endpoints: caches.endpoints, Nodes: caches.nodes}, host)
	if err != nil {
		return fmt.Errorf("service proxy: %w", err)
	}
	ready()
	return p.Run(ctx)
}

// runDNS serves cluster DNS on the node IP, port 53 (UDP and TCP).
func runDNS(ctx context.Context, ready func(), nodeIP string, caches *serviceCaches, metrics prometheus.Registerer, o agentOptions) error {
	srv, err := dns.NewServer(dns.Config{
		Zone:        o.ClusterDomain,
		ListenAddrs: []string{net.JoinHostPort(nodeIP, "53")},
		Upstreams:   o.DNSUpstreams,
		Registerer:  metrics,
	}, dns.NewInformerStore(caches.services, caches.endpoints))
	if err != nil {
		return fmt.Errorf("cluster DNS: %w", err)
	}
	go func() {
		select {
		case <-srv.Ready():
			ready()
		case <-ctx.Done():
		}
	}()
	return srv.Run(ctx)
}

// interfaceWithIP names the interface that holds ip (where load-balancer
// addresses are announced), or "" when none does.
func interfaceWithIP(ip netip.Addr) string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, iface := range ifaces {
		addrs, _ := iface.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(net.IP(ip.AsSlice())) {
				return iface.Name
			}
		}
	}
	return ""
}

// lazyLocator and lazyRuntime let the node API be built before the agent
// (whose certificate the Node must carry) and reach the agent once it runs.
type lazyLocator struct{ agent **nodeagent.Agent }

func (l lazyLocator) ContainerFor(ns, pod, container string) (string, string, error) {
	return (*l.agent).ContainerFor(ns, pod, container)
}

func (l lazyLocator) PreviousLogFor(ns, pod, container string) (string, error) {
	return (*l.agent).PreviousLogFor(ns, pod, container)
}

func (l lazyLocator) StdinOnceFor(ns, pod, container string) bool {
	return (*l.agent).StdinOnceFor(ns, pod, container)
}

type lazyRuntime struct{ agent **nodeagent.Agent }

func (l lazyRuntime) Exec(ctx context.Context, id string, cfg runtime.ExecConfig) (int, error) {
	return (*l.agent).Runtime().Exec(ctx, id, cfg)
}

func (l lazyRuntime) Attach(ctx context.Context, id string, cfg runtime.AttachConfig) error {
	return (*l.agent).Runtime().Attach(ctx, id, cfg)
}

func (l lazyRuntime) Wait(ctx context.Context, id string) (runtime.ContainerStatus, error) {
	return (*l.agent).Runtime().Wait(ctx, id)
}

// serveMetrics serves the registry's metrics at http://addr/metrics until
// ctx ends. A port already taken (a second agent on the same machine) is
// logged, not fatal: the node works without its metrics.
func serveMetrics(ctx context.Context, ready func(), addr string, registry *prometheus.Registry) error {
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		slog.Warn("not serving metrics; set another --metrics-bind-address, or \"\" for none", "addr", addr, "err", err)
		ready()
		<-ctx.Done()
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	ready()
	if err := srv.Serve(listener); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics server: %w", err)
	}
	return nil
}
