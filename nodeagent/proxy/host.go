package proxy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"

	"kubelite/nodeagent/proxy/iptables"
	"kubelite/nodeagent/proxy/netns"
	"kubelite/nodeagent/proxy/nftables"
)

// Host is what the proxier changes on its node. Each part is a narrow
// interface, so that tests substitute fakes; NewHost returns the real ones.
type Host struct {
	// IPTables writes the rules in iptables mode. In nftables mode it is
	// optional, used only to remove what an iptables-mode run left.
	IPTables iptables.Interface
	// NFTables writes the table in nftables mode. In iptables mode it is
	// optional, used only to remove what an nftables-mode run left.
	NFTables  nftables.Interface
	Conntrack ConntrackCleaner
	Sysctls   SysctlSetter
	// Addresses puts announced load-balancer IPs on the node's interface;
	// nil announces none.
	Addresses AddressAnnouncer

	close func()
}

// HostConfig says which node NewHost programs.
type HostConfig struct {
	// NetNS is the path of the node's network namespace (/run/netns/node1);
	// "" is the agent's own, as on a real machine. The one-machine lab and
	// the tests run one node per namespace.
	NetNS string
	// LoadBalancerInterface is the interface that carries announced
	// load-balancer IPs (the node's link to the clients' network, e.g.
	// eth0); "" announces none.
	LoadBalancerInterface string
	// Mode is the proxy mode the Host is for; "" is ModeIPTables.
	Mode Mode
	// IPTablesBackend chooses iptables-nft or iptables-legacy; "" detects
	// it (iptables.Detect): the backend that already holds this node's
	// rules, else the one the system's `iptables` uses.
	IPTablesBackend iptables.Backend
}

// NewHost returns the real Host for cfg. Close it when done.
func NewHost(cfg HostConfig) (*Host, error) {
	mode, err := ParseMode(string(cfg.Mode))
	if err != nil {
		return nil, err
	}
	host := &Host{Sysctls: procSysctls{netnsPath: cfg.NetNS}}
	// The other mode's command is optional: without it there is nothing
	// of that mode to clean up.
	ipt, iptErr := newIPTables(cfg)
	if iptErr == nil {
		host.IPTables = ipt
	}
	nft, nftErr := nftables.New(cfg.NetNS)
	if nftErr == nil {
		host.NFTables = nft
	}
	if mode == ModeIPTables && iptErr != nil {
		return nil, iptErr
	}
	if mode == ModeNFTables && nftErr != nil {
		return nil, nftErr
	}
	handle, err := netlinkHandle(cfg.NetNS)
	if err != nil {
		return nil, err
	}
	host.Conntrack = &netlinkConntrack{handle: handle}
	host.close = handle.Close
	if cfg.LoadBalancerInterface != "" {
		host.Addresses = newNetlinkAnnouncer(handle, cfg.LoadBalancerInterface)
	}
	return host, nil
}

// newIPTables returns the iptables runner of cfg's backend, detecting it
// if unset.
func newIPTables(cfg HostConfig) (*iptables.Runner, error) {
	backend := cfg.IPTablesBackend
	if backend == "" {
		var err error
		if backend, err = iptables.Detect(context.Background(), cfg.NetNS, CanaryChain); err != nil {
			return nil, err
		}
	}
	return iptables.NewWithBackend(cfg.NetNS, backend)
}

// Close releases the Host's netlink sockets.
func (h *Host) Close() {
	if h.close != nil {
		h.close()
	}
}

// netlinkHandle opens netlink sockets in the namespace at path ("" for the
// caller's own). The sockets stay bound to that namespace.
func netlinkHandle(path string) (*netlink.Handle, error) {
	if path == "" {
		handle, err := netlink.NewHandle()
		if err != nil {
			return nil, fmt.Errorf("netlink: %w", err)
		}
		return handle, nil
	}
	ns, err := vnetns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("opening network namespace %s: %w", path, err)
	}
	defer ns.Close()
	handle, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", path, err)
	}
	return handle, nil
}

// Errors netlink returns for an address that is already there, or not.
var (
	errExists    = syscall.EEXIST
	errNotExists = syscall.EADDRNOTAVAIL
)

// SysctlSetter writes kernel parameters of the node's network namespace.
type SysctlSetter interface {
	// Set writes value to the parameter name, as in /proc/sys:
	// "net/ipv4/ip_forward".
	Set(name, value string) error
}

// procSysctls writes under /proc/sys/net, which shows the settings of the
// network namespace of the thread that opens the file.
type procSysctls struct {
	netnsPath string
}

func (s procSysctls) Set(name, value string) error {
	return netns.Do(s.netnsPath, func() error {
		if err := os.WriteFile(filepath.Join("/proc/sys", name), []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", name, value, err)
		}
		return nil
	})
}
