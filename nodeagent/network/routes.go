package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RouteProtocol marks the routes the agent owns (`ip route show proto 75`),
// so that it removes stale ones of its own and never touches anyone else's.
const RouteProtocol netlink.RouteProtocol = 75

// Route sends a pod CIDR of another node to that node (host-gw): the
// nodes share a network, so the other node is the next hop.
type Route struct {
	Dst     netip.Prefix // the other node's podCIDR
	Gateway netip.Addr   // the other node's InternalIP
}

func (r Route) String() string { return r.Dst.String() + " via " + r.Gateway.String() }

// routeTable is the node's main routing table, as far as our routes go.
type routeTable interface {
	// List returns the routes marked with RouteProtocol.
	List() ([]Route, error)
	// Replace adds the route, or changes the one to the same destination.
	Replace(Route) error
	// Delete removes the route.
	Delete(Route) error
}

// routeChanges is what turns the current routes into the desired ones.
type routeChanges struct {
	replace []Route // to add, or to point at a new gateway
	remove  []Route // ours, but no node wants them any more
}

// diffRoutes compares the routes we have with the routes we want.
func diffRoutes(current, desired []Route) routeChanges {
	have := map[netip.Prefix]netip.Addr{}
	for _, r := range current {
		have[r.Dst] = r.Gateway
	}
	want := map[netip.Prefix]bool{}
	var changes routeChanges
	for _, r := range desired {
		want[r.Dst] = true
		if gw, ok := have[r.Dst]; !ok || gw != r.Gateway {
			changes.replace = append(changes.replace, r)
		}
	}
	for _, r := range current {
		if !want[r.Dst] {
			changes.remove = append(changes.remove, r)
		}
	}
	byDst := func(a, b Route) int { return a.Dst.Addr().Compare(b.Dst.Addr()) }
	slices.SortFunc(changes.replace, byDst)
	slices.SortFunc(changes.remove, byDst)
	return changes
}

// syncRoutes makes the table hold exactly the desired routes of ours and
// returns the changes it made. It goes on after a failed route (a node
// whose address is not on our network, say) and returns every failure
// joined.
func syncRoutes(table routeTable, desired []Route) (routeChanges, error) {
	current, err := table.List()
	if err != nil {
		return routeChanges{}, err
	}
	planned := diffRoutes(current, desired)
	var done routeChanges
	var errs []error
	for _, r := range planned.replace {
		if err := table.Replace(r); err != nil {
			errs = append(errs, fmt.Errorf("route %s: %w", r, err))
			continue
		}
		done.replace = append(done.replace, r)
	}
	for _, r := range planned.remove {
		if err := table.Delete(r); err != nil {
			errs = append(errs, fmt.Errorf("remove route %s: %w", r, err))
			continue
		}
		done.remove = append(done.remove, r)
	}
	return done, errors.Join(errs...)
}

// netlinkRoutes is the routing table of the node's namespace.
type netlinkRoutes struct {
	handle *netlink.Handle
}

func (t netlinkRoutes) List() ([]Route, error) {
	routes, err := t.handle.RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	var out []Route
	for _, r := range routes {
		if r.Dst == nil || r.Gw == nil {
			continue
		}
		dst, ok := prefixFromIPNet(r.Dst)
		gw, ok2 := netip.AddrFromSlice(r.Gw)
		if ok && ok2 {
			out = append(out, Route{Dst: dst, Gateway: gw.Unmap()})
		}
	}
	return out, nil
}

func (t netlinkRoutes) Replace(r Route) error {
	return t.handle.RouteReplace(t.netlinkRoute(r))
}

func (t netlinkRoutes) Delete(r Route) error {
	err := t.handle.RouteDel(t.netlinkRoute(r))
	if errors.Is(err, unix.ESRCH) {
		return nil // gone already
	}
	return err
}

func (t netlinkRoutes) netlinkRoute(r Route) *netlink.Route {
	return &netlink.Route{
		Dst:      &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), 32)},
		Gw:       r.Gateway.AsSlice(),
		Protocol: RouteProtocol,
		Table:    unix.RT_TABLE_MAIN,
	}
}

func prefixFromIPNet(n *net.IPNet) (netip.Prefix, bool) {
	addr, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(addr.Unmap(), bits), true
}
