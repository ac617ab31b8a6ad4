// Package proxy is kubelite's service proxy: it makes a Service's virtual
// IP reach the Service's pods, with the iptables rules kube-proxy writes in
// its iptables mode (the default, what the tutorial shows), or with one
// nftables table in nftables mode. It runs in every node agent.
//
// # How a cluster IP works
//
// A cluster IP (10.102.120.255 in the tutorial) belongs to no interface.
// It exists only as rules in the nat table of every node: a packet to it
// is rewritten (DNAT) to one pod's ip:port on its way through the node,
// and conntrack rewrites the replies back. Reading BuildRules, top to
// bottom, shows each rule with the reason it is there; the golden files
// under testdata/rules show the result for the tutorial's Services.
//
// # How the rules are kept right
//
// The rules are a pure function of the Services, the Endpoints and a few
// facts about the node (BuildRules, BuildNFTRules). The Proxier watches
// Services and Endpoints through the shared caches; a change only wakes its
// sync loop, which renders every rule again, compares the result with what
// the last sync wrote, and sends only the difference to the kernel in one
// transaction: in iptables mode the changed chains through one
// `iptables-restore --noflush` (a partial sync, as kube-proxy's since
// KEP-3453), in nftables mode the changed chains and map elements through
// one `nft -f`. A full sync rewrites everything: at start, once an hour,
// after a failure, and when the canary shows that someone flushed the
// rules. Only the few jumps from iptables' built-in chains (PREROUTING,
// OUTPUT, ...) are added one by one. Chains the proxier no longer needs are
// deleted in the same transaction, and only chains with its own prefixes,
// so other programs' rules stay untouched.
//
// The two modes are dataplanes behind one small interface (dataplane.go):
// iptablesmode.go and nftmode.go.
//
// # Running it in the node agent
//
//	host, err := proxy.NewHost(proxy.HostConfig{LoadBalancerInterface: "eth0"})
//	if err != nil { ... }
//	defer host.Close()
//	p, err := proxy.New(proxy.Config{
//		NodeName:    nodeName,
//		ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"),
//		LocalDNS:    netip.MustParseAddrPort("10.244.1.1:53"), // the embedded DNS server
//		Registerer:  prometheus.DefaultRegisterer,
//		Logger:      logger,
//	}, proxy.Sources{Services: informers.Services, Endpoints: informers.Endpoints, Nodes: informers.Nodes}, host)
//	if err != nil { ... }
//	go informers.Run(ctx) // before or after New: either works
//	err = p.Run(ctx)      // until ctx ends
//
// LocalDNS must be an address pods can reach on the node (the pod
// bridge's address is a good choice), not 127.0.0.1. For a pod to reach
// itself through a Service, its bridge port needs hairpin mode (the CNI
// bridge plugin's "hairpinMode": true).
//
// ServiceRules extracts one Service's rules from iptables-save output, and
// NFTServiceRules from `nft list table ip kubelite`, for
// `kubelite proxy rules --service ns/name` (NodeServiceRules picks the mode).
package proxy
