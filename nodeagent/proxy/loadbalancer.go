package proxy

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"

	"kubelite/api"
)

// A LoadBalancer Service's address comes from a configured pool (bare-metal
// style, like MetalLB's layer-2 mode): every node has rules for it, and one
// node, chosen by AnnouncingNode, puts the address on its interface so that
// it answers ARP for it. Clients on the same link then send their packets
// to that node, whose rules take them to a pod.

// AnnouncingNode picks, among the ready nodes, the one that announces the
// load-balancer addresses of svc; "" if there is none. Every node computes
// the same answer from the same inputs, without talking to the others.
//
// It is rendezvous (highest-random-weight) hashing: each node gets a score
// hash(node, Service) and the highest wins. When a node goes away, only the
// Services it announced move, each to its runner-up.
func AnnouncingNode(svc *api.Service, readyNodeNames []string) string {
	var best string
	var bestScore uint64
	for _, node := range readyNodeNames {
		h := fnv.New64a()
		h.Write([]byte(node))
		h.Write([]byte{0})
		h.Write([]byte(svc.Namespace + "/" + svc.Name))
		score := h.Sum64()
		if best == "" || score > bestScore || score == bestScore && node < best {
			best, bestScore = node, score
		}
	}
	return best
}

// announcedAddresses returns the load-balancer IPs that nodeName announces,
// sorted.
func announcedAddresses(services []*api.Service, readyNodeNames []string, nodeName string) []netip.Addr {
	var addrs []netip.Addr
	for _, svc := range services {
		if svc.Spec.Type != api.ServiceTypeLoadBalancer || len(svc.Status.LoadBalancer.Ingress) == 0 {
			continue
		}
		if AnnouncingNode(svc, readyNodeNames) != nodeName {
			continue
		}
		for _, ingress := range svc.Status.LoadBalancer.Ingress {
			if ip, err := netip.ParseAddr(ingress.IP); err == nil && ip.Is4() {
				addrs = append(addrs, ip)
			}
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	return slices.Compact(addrs)
}

func readyNodeNames(nodes []*api.Node) []string {
	var names []string
	for _, node := range nodes {
		if node.IsReady() {
			names = append(names, node.Name)
		}
	}
	return names
}

// AddressAnnouncer keeps the announced load-balancer addresses on a node
// interface.
type AddressAnnouncer interface {
	// Announce makes addrs the announced addresses: it adds those missing
	// and removes those it added earlier that are not in addrs. It never
	// removes an address it did not add.
	Announce(ctx context.Context, addrs []netip.Addr) error
}

// netlinkAnnouncer adds each address as a /32 to an interface. The kernel
// then answers ARP for it on that link like for any local address.
//
// Its record of what it added is the address label "<interface>:lb" (as
// `ip addr add ... label eth0:lb` sets it), so that an agent that restarts
// still knows which addresses are its own; when the interface name is too
// long for a label, the record is kept in memory only.
type netlinkAnnouncer struct {
	handle    *netlink.Handle
	ifaceName string
	label     string // "" when the name leaves no room for one

	mu    sync.Mutex
	added map[netip.Addr]bool // nil until loaded from the labels
}

// maxLabelLength is the kernel's IFNAMSIZ less the terminating NUL.
const maxLabelLength = 15

func newNetlinkAnnouncer(handle *netlink.Handle, ifaceName string) *netlinkAnnouncer {
	a := &netlinkAnnouncer{handle: handle, ifaceName: ifaceName}
	if label := ifaceName + ":lb"; len(label) <= maxLabelLength {
		a.label = label
	}
	return a
}

// Announce implements AddressAnnouncer.
func (a *netlinkAnnouncer) Announce(ctx context.Context, addrs []netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	link, err := a.handle.LinkByName(a.ifaceName)
	if err != nil {
		return fmt.Errorf("load-balancer interface %s: %w", a.ifaceName, err)
	}
	if a.added == nil {
		if err := a.loadRecord(link); err != nil {
			return err
		}
	}
	want := make(map[netip.Addr]bool, len(addrs))
	var errs []error
	for _, addr := range addrs {
		want[addr] = true
		if a.added[addr] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		err := a.handle.AddrAdd(link, a.netlinkAddr(addr))
		if err != nil && !errors.Is(err, errExists) {
			errs = append(errs, fmt.Errorf("adding %v to %s: %w", addr, a.ifaceName, err))
			continue
		}
		a.added[addr] = true
	}
	for addr := range a.added {
		if want[addr] {
			continue
		}
		err := a.handle.AddrDel(link, a.netlinkAddr(addr))
		if err != nil && !errors.Is(err, errNotExists) {
			errs = append(errs, fmt.Errorf("removing %v from %s: %w", addr, a.ifaceName, err))
			continue
		}
		delete(a.added, addr)
	}
	return errors.Join(errs...)
}

// loadRecord reads back the addresses an earlier run labelled as ours.
func (a *netlinkAnnouncer) loadRecord(link netlink.Link) error {
	a.added = make(map[netip.Addr]bool)
	if a.label == "" {
		return nil
	}
	current, err := a.handle.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("listing addresses of %s: %w", a.ifaceName, err)
	}
	for _, addr := range current {
		if ip, ok := netip.AddrFromSlice(addr.IP.To4()); ok && addr.Label == a.label {
			a.added[ip] = true
		}
	}
	return nil
}

func (a *netlinkAnnouncer) netlinkAddr(ip netip.Addr) *netlink.Addr {
	return &netlink.Addr{
		IPNet: &net.IPNet{IP: net.IP(ip.AsSlice()), Mask: net.CIDRMask(32, 32)},
		Label: a.label,
	}
}
