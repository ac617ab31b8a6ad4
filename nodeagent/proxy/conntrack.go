package proxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// ConntrackFlow selects connection-tracking entries to delete; a zero
// field matches anything.
//
// Why delete them at all: conntrack remembers the DNAT chosen for the
// first packet of a flow and applies it to all later ones without looking
// at the rules again. A UDP "connection" (a DNS client reusing its source
// port, say) has no end, so it would go on being sent to an endpoint that
// is gone, or, for a Service that had no endpoints when it started, go on
// being rejected, until the entry times out.
type ConntrackFlow struct {
	Protocol    string     // "udp" or "sctp"
	OrigDst     netip.Addr // the address the client sent to (cluster, load-balancer or external IP)
	OrigDstPort uint16     // the port the client sent to (Service port or node port)
	ReplySrc    netip.Addr // who answers after DNAT: the endpoint's address
}

func (f ConntrackFlow) String() string {
	return fmt.Sprintf("%s orig-dst=%v:%d reply-src=%v", f.Protocol, f.OrigDst, f.OrigDstPort, f.ReplySrc)
}

// ConntrackCleaner deletes connection-tracking entries.
type ConntrackCleaner interface {
	// DeleteFlows deletes the entries matching any of flows and returns
	// how many it deleted.
	DeleteFlows(ctx context.Context, flows []ConntrackFlow) (int, error)
}

// staleConntrackFlows compares the Service ports of two successive syncs
// and returns the entries that must go, for the connectionless protocols
// (TCP ends its connections by itself):
//   - flows DNATed to an endpoint that is no longer behind its port;
//   - flows to a port that had no endpoints and now has some: they were
//     rejected, and conntrack would keep them un-NATed.
//
// With no previous sync (prev == nil) nothing is stale: after a restart,
// the flows in the table are the ones the current rules would choose.
func staleConntrackFlows(prev, cur []servicePort) []ConntrackFlow {
	if prev == nil {
		return nil
	}
	prevByKey := make(map[portKey]*servicePort, len(prev))
	for i := range prev {
		prevByKey[prev[i].key()] = &prev[i]
	}
	curByKey := make(map[portKey]*servicePort, len(cur))
	for i := range cur {
		curByKey[cur[i].key()] = &cur[i]
	}

	var flows []ConntrackFlow
	for i := range prev {
		old := &prev[i]
		if !connectionless(old.protocol) {
			continue
		}
		remaining := make(map[netip.AddrPort]bool)
		if now, ok := curByKey[old.key()]; ok {
			for _, ep := range now.endpoints {
				remaining[ep.addr] = true
			}
		}
		for _, ep := range old.endpoints {
			if !remaining[ep.addr] {
				flows = append(flows, flowsTo(old, ep.addr.Addr())...)
			}
		}
	}
	for i := range cur {
		now := &cur[i]
		if !connectionless(now.protocol) || len(now.endpoints) == 0 {
			continue
		}
		if old, ok := prevByKey[now.key()]; !ok || len(old.endpoints) == 0 {
			flows = append(flows, flowsTo(now, netip.Addr{})...)
		}
	}
	return flows
}

// flowsTo selects the flows sent to any address of p, answered by replySrc
// (any answerer if invalid).
func flowsTo(p *servicePort, replySrc netip.Addr) []ConntrackFlow {
	var flows []ConntrackFlow
	for _, ip := range append(append([]netip.Addr{p.clusterIP}, p.loadBalancerIPs...), p.externalIPs...) {
		flows = append(flows, ConntrackFlow{Protocol: p.protocol, OrigDst: ip, OrigDstPort: uint16(p.port), ReplySrc: replySrc})
	}
	if p.nodePort != 0 {
		flows = append(flows, ConntrackFlow{Protocol: p.protocol, OrigDstPort: uint16(p.nodePort), ReplySrc: replySrc})
	}
	return flows
}

func connectionless(protocol string) bool { return protocol == "udp" || protocol == "sctp" }

// netlinkConntrack deletes entries through the kernel's conntrack netlink
// interface, as the conntrack tool does.
type netlinkConntrack struct {
	handle *netlink.Handle
}

// DeleteFlows implements ConntrackCleaner. The kernel's table is dumped
// once and every entry matching any flow is deleted.
func (c *netlinkConntrack) DeleteFlows(ctx context.Context, flows []ConntrackFlow) (int, error) {
	if len(flows) == 0 {
		return 0, ctx.Err()
	}
	filters := make([]netlink.CustomConntrackFilter, 0, len(flows))
	for _, flow := range flows {
		filter, err := conntrackFilter(flow)
		if err != nil {
			return 0, fmt.Errorf("conntrack filter %v: %w", flow, err)
		}
		filters = append(filters, filter)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.handle.ConntrackDeleteFilters(netlink.ConntrackTable, netlink.FAMILY_V4, filters...)
	if err != nil {
		return int(n), fmt.Errorf("deleting conntrack entries: %w", err)
	}
	return int(n), nil
}

func conntrackFilter(flow ConntrackFlow) (*netlink.ConntrackFilter, error) {
	protocols := map[string]uint8{"tcp": 6, "udp": 17, "sctp": 132}
	number, ok := protocols[flow.Protocol]
	if !ok {
		return nil, fmt.Errorf("unknown protocol %q", flow.Protocol)
	}
	filter := &netlink.ConntrackFilter{}
	if err := filter.AddProtocol(number); err != nil {
		return nil, err
	}
	if flow.OrigDst.IsValid() {
		if err := filter.AddIP(netlink.ConntrackOrigDstIP, net.IP(flow.OrigDst.AsSlice())); err != nil {
			return nil, err
		}
	}
	if flow.OrigDstPort != 0 {
		if err := filter.AddPort(netlink.ConntrackOrigDstPort, flow.OrigDstPort); err != nil {
			return nil, err
		}
	}
	if flow.ReplySrc.IsValid() {
		if err := filter.AddIP(netlink.ConntrackReplySrcIP, net.IP(flow.ReplySrc.AsSlice())); err != nil {
			return nil, err
		}
	}
	return filter, nil
}
