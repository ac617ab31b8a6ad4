package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// virtualBoxNATAddress is the address VirtualBox's NAT gives every VM —
// the same on each. A node that announced it would be unreachable from the
// others; ChooseNodeIP warns about it.
const virtualBoxNATAddress = "10.0.2.15"

// NodeIPChoice is the address chosen as the node's InternalIP and why.
type NodeIPChoice struct {
	Addr   netip.Addr
	Reason string
	// Warning is set when the address looks like one that every machine
	// of the cluster shares.
	Warning string
}

// ChooseNodeIP applies the rule for a node's InternalIP:
//
//  1. the address given with --node-ip, if any;
//  2. else the source address of the route to the API server — the
//     address the other machines reach this one at, since the server
//     shares a network with them — unless that route is loopback (a
//     server on this machine);
//  3. else the source address of the default route.
//
// Rule 2 comes before rule 3 because of the Vagrant trap: a VirtualBox VM's
// default route goes through NAT, whose address (10.0.2.15) is the same on
// every VM, while its private network (192.168.56.x), the one the nodes
// share, is reached through another interface.
func ChooseNodeIP(configured string, toServer, defaultRoute netip.Addr) (NodeIPChoice, error) {
	var choice NodeIPChoice
	switch {
	case configured != "":
		addr, err := netip.ParseAddr(configured)
		if err != nil {
			return NodeIPChoice{}, fmt.Errorf("node IP %q: %w", configured, err)
		}
		choice = NodeIPChoice{Addr: addr, Reason: "given with --node-ip"}
	case toServer.IsValid() && !toServer.IsLoopback():
		choice = NodeIPChoice{Addr: toServer, Reason: "source address of the route to the API server"}
	case defaultRoute.IsValid():
		choice = NodeIPChoice{Addr: defaultRoute, Reason: "source address of the default route"}
	default:
		return NodeIPChoice{}, errors.New("cannot tell the node's IP: no route to the API server that leaves this machine, and no default route; set --node-ip")
	}
	if choice.Addr.String() == virtualBoxNATAddress {
		choice.Warning = "10.0.2.15 is VirtualBox's NAT address, the same on every VM: other nodes cannot reach this one there; set --node-ip to the address of the network the nodes share"
	}
	return choice, nil
}

// DetectNodeIP finds the node's InternalIP in the node's namespace by
// ChooseNodeIP's rule. serverHost is the API server's host name or address.
func DetectNodeIP(ctx context.Context, node Namespace, configured, serverHost string) (NodeIPChoice, error) {
	if configured != "" {
		return ChooseNodeIP(configured, netip.Addr{}, netip.Addr{})
	}
	handle, err := node.netlinkHandle()
	if err != nil {
		return NodeIPChoice{}, err
	}
	defer handle.Close()

	var toServer netip.Addr
	if server, err := resolveHost(ctx, serverHost); err == nil {
		toServer = routeSource(handle, server)
	}
	return ChooseNodeIP("", toServer, defaultRouteSource(handle))
}

func resolveHost(ctx context.Context, host string) (netip.Addr, error) {
	if addr, err := netip.ParseAddr(host); err == nil {
		return addr, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("resolve %s: %w", host, err)
	}
	return addrs[0].Unmap(), nil
}

// routeSource asks the kernel which source address it would use to reach
// dst (a table lookup, like `ip route get`; nothing is sent).
func routeSource(handle *netlink.Handle, dst netip.Addr) netip.Addr {
	routes, err := handle.RouteGet(dst.AsSlice())
	if err != nil {
		return netip.Addr{}
	}
	for _, r := range routes {
		if src, ok := netip.AddrFromSlice(r.Src); ok {
			return src.Unmap()
		}
	}
	return netip.Addr{}
}

// defaultRouteSource is the source address of the default route: its
// preferred source, or the first global address of its interface.
func defaultRouteSource(handle *netlink.Handle) netip.Addr {
	routes, err := handle.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return netip.Addr{}
	}
	for _, r := range routes {
		if r.Dst != nil && !isDefault(r.Dst) {
			continue
		}
		if src, ok := netip.AddrFromSlice(r.Src); ok {
			return src.Unmap()
		}
		link, err := handle.LinkByIndex(r.LinkIndex)
		if err != nil {
			continue
		}
		addrs, err := handle.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap().IsGlobalUnicast() {
				return ip.Unmap()
			}
		}
	}
	return netip.Addr{}
}

func isDefault(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0
}
