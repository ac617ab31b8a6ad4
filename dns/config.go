package dns

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	miekg "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
)

// Defaults of Config.
const (
	DefaultZone            = "cluster.local."
	DefaultTTL             = 5 * time.Second
	DefaultResolvConf      = "/etc/resolv.conf"
	DefaultCacheSize       = 10000
	DefaultCacheMaxTTL     = time.Hour
	DefaultUpstreamTimeout = 2 * time.Second
)

// PodRecords says whether and how "<a-b-c-d>.<ns>.pod.<zone>." names are answered.
type PodRecords string

const (
	// PodsInsecure answers any well-formed dashed IP with that IP, without
	// checking that such a Pod exists (CoreDNS's "pods insecure", what
	// kube-dns always did).
	PodsInsecure PodRecords = "insecure"
	// PodsDisabled answers NXDOMAIN for every pod name.
	PodsDisabled PodRecords = "disabled"
)

// Config configures a Server. The zero value of a field means its default.
type Config struct {
	// Zone is the cluster domain the server is authoritative for
	// (default "cluster.local.").
	Zone string
	// TTL of every record in the zone, and how long resolvers may cache a
	// negative answer (default 5 s; whole seconds).
	TTL time.Duration
	// ListenAddrs are the host:port addresses to serve on, each over both
	// UDP and TCP (default ":53"). Port 0 picks a free port, the same one for
	// UDP and TCP.
	ListenAddrs []string
	// Upstreams are the resolvers ("ip" or "ip:port") that names outside the
	// zone are forwarded to. Empty: the nameservers of ResolvConf, less those
	// that would loop back to this server.
	Upstreams []string
	// ResolvConf is read for Upstreams when none are given (default
	// "/etc/resolv.conf").
	ResolvConf string
	// UpstreamTimeout bounds one exchange with one upstream (default 2 s).
	UpstreamTimeout time.Duration
	// CacheSize is how many forwarded answers are kept (default 10000;
	// negative disables the cache).
	CacheSize int
	// CacheMaxTTL caps how long a forwarded answer is kept, whatever its TTL
	// says (default 1 h).
	CacheMaxTTL time.Duration
	// Pods chooses how pod names are answered (default PodsInsecure).
	Pods PodRecords
	// Logger (default slog.Default() at the time NewServer is called).
	Logger *slog.Logger
	// Registerer receives the server's metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
}

// AddFlags binds the settings a node operator tunes to command-line flags,
// with c's current values as defaults.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	c.setDefaults()
	fs.StringVar(&c.Zone, "cluster-dns-zone", c.Zone, "DNS zone the cluster DNS server answers for")
	fs.DurationVar(&c.TTL, "cluster-dns-ttl", c.TTL, "TTL of cluster DNS records and of negative answers")
	fs.StringSliceVar(&c.ListenAddrs, "cluster-dns-listen", c.ListenAddrs, "addresses (host:port) the cluster DNS server listens on, over UDP and TCP")
	fs.StringSliceVar(&c.Upstreams, "cluster-dns-upstream", c.Upstreams, "resolvers for names outside the cluster zone (default: the nameservers of --cluster-dns-resolv-conf)")
	fs.StringVar(&c.ResolvConf, "cluster-dns-resolv-conf", c.ResolvConf, "resolv.conf to take upstream resolvers from")
	fs.IntVar(&c.CacheSize, "cluster-dns-cache-size", c.CacheSize, "forwarded answers kept in the cache (negative disables it)")
	fs.StringVar((*string)(&c.Pods), "cluster-dns-pods", string(c.Pods), "pod records: insecure or disabled")
}

// setDefaults fills in the zero fields.
func (c *Config) setDefaults() {
	if c.Zone == "" {
		c.Zone = DefaultZone
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if len(c.ListenAddrs) == 0 {
		c.ListenAddrs = []string{":53"}
	}
	if c.ResolvConf == "" {
		c.ResolvConf = DefaultResolvConf
	}
	if c.UpstreamTimeout == 0 {
		c.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.CacheMaxTTL == 0 {
		c.CacheMaxTTL = DefaultCacheMaxTTL
	}
	if c.Pods == "" {
		c.Pods = PodsInsecure
	}
}

// complete returns a copy of c with defaults filled in, the zone in
// canonical form and the upstreams resolved to "ip:port".
func (c Config) complete() (Config, error) {
	c.setDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Zone = miekg.CanonicalName(c.Zone)
	if _, ok := miekg.IsDomainName(c.Zone); !ok || c.Zone == "." {
		return c, fmt.Errorf("zone %q is not a domain name", c.Zone)
	}
	if c.TTL < time.Second {
		return c, fmt.Errorf("TTL %v is shorter than a second", c.TTL)
	}
	switch c.Pods {
	case PodsInsecure, PodsDisabled:
	default:
		return c, fmt.Errorf("pod records %q: want %q or %q", c.Pods, PodsInsecure, PodsDisabled)
	}
	for _, addr := range c.ListenAddrs {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return c, fmt.Errorf("listen address %q: %w", addr, err)
		}
	}

	if len(c.Upstreams) > 0 {
		upstreams := make([]string, 0, len(c.Upstreams))
		for _, u := range c.Upstreams {
			addr, err := parseUpstream(u)
			if err != nil {
				return c, err
			}
			upstreams = append(upstreams, addr.String())
		}
		c.Upstreams = upstreams
		return c, nil
	}
	nameservers, err := readNameservers(c.ResolvConf)
	if err != nil {
		return c, err
	}
	c.Upstreams = nil
	for _, ns := range nameservers {
		upstream := netip.AddrPortFrom(ns, 53)
		if loopsBack(upstream, c.ListenAddrs) {
			c.Logger.Info("not forwarding to a nameserver that is this server", "nameserver", upstream, "resolvConf", c.ResolvConf)
			continue
		}
		c.Upstreams = append(c.Upstreams, upstream.String())
	}
	if len(c.Upstreams) == 0 {
		c.Logger.Warn("no upstream resolvers: names outside the cluster zone will be refused", "resolvConf", c.ResolvConf)
	}
	return c, nil
}

// ttlSeconds is the TTL as DNS records carry it.
func (c Config) ttlSeconds() uint32 { return uint32(c.TTL / time.Second) }

// parseUpstream reads "10.0.0.2", "10.0.0.2:5353", "fd00::2" or "[fd00::2]:53".
func parseUpstream(s string) (netip.AddrPort, error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(ip, 53), nil
	}
	addr, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("upstream %q: want an IP or IP:port: %w", s, err)
	}
	return addr, nil
}

// loopsBack reports whether forwarding to upstream would reach this server
// itself: it is a loopback address, and we listen on its port on that same
// address or on every address. (A node whose resolv.conf names a local
// stub resolver, such as systemd-resolved's 127.0.0.53, keeps it.)
func loopsBack(upstream netip.AddrPort, listenAddrs []string) bool {
	if !upstream.Addr().IsLoopback() {
		return false
	}
	for _, listen := range listenAddrs {
		host, portText, err := net.SplitHostPort(listen)
		if err != nil {
			continue
		}
		port, err := strconv.ParseUint(portText, 10, 16)
		if err != nil || uint16(port) != upstream.Port() {
			continue
		}
		if host == "" {
			return true
		}
		if ip, err := netip.ParseAddr(host); err == nil && (ip.IsUnspecified() || ip == upstream.Addr()) {
			return true
		}
	}
	return false
}

// errNoUpstreams is returned when a name must be forwarded and there is
// nowhere to forward it.
var errNoUpstreams = errors.New("no upstream resolvers")

// trimDot drops a name's final dot: "cluster.local." → "cluster.local".
func trimDot(name string) string { return strings.TrimSuffix(name, ".") }
