// Package network is a node's pod network: one network namespace and one
// IP per Pod through CNI, routes to the other nodes' pods, and masquerade
// for traffic that leaves the cluster.
//
// # The picture on one node
//
//	 pod A netns           pod B netns
//	┌──────────────┐      ┌──────────────┐
//	│ eth0         │      │ eth0         │      created by the bridge plugin,
//	│ 10.244.1.2   │      │ 10.244.1.3   │      addresses by host-local from
//	└──────┬───────┘      └──────┬───────┘      the node's podCIDR
//	       │ veth                │ veth
//	┌──────┴─────────────────────┴───────┐
//	│ bridge kl-node1  10.244.1.1/24     │      the pods' gateway (isGateway)
//	└─────────────────┬──────────────────┘
//	                  │ routed by the node (ip_forward=1)
//	                  │   10.244.2.0/24 via 192.168.56.12   host-gw route per other node
//	                  │   KUBELITE-POSTROUTING: -s 10.244.1.0/24 ! -d 10.244.0.0/16 -j MASQUERADE
//	┌─────────────────┴──────────────────┐
//	│ eth1 192.168.56.11  (InternalIP)   │ ── the nodes' shared network
//	└────────────────────────────────────┘
//
// Pod-to-pod traffic keeps its source address everywhere: a pod on another
// node sees the real pod IP. Only traffic to addresses outside the cluster
// CIDR is masqueraded behind the node's address.
//
// # The node's namespace
//
// Everything the package changes on the node — the bridge and veths the
// plugins create, routes, iptables rules, sysctls — happens in the node's
// network namespace, Config.NetNS. On a real machine that is the agent's
// own ("" ). The tests and the one-machine lab run each node agent in the
// machine's namespace but give it a network namespace of its own as its
// "node", so that nothing touches the machine's network; the agent then
// reaches the API server and containerd as usual, and reaches pods (probes)
// through Namespace.DialContext.
//
// # Restart safety
//
// SetupPod remembers each Pod's namespace and IP in a small state file.
// Called again for the same Pod — after an agent restart — it returns what
// the file says as long as the namespace is still there, and never runs
// CNI ADD a second time: the Pod keeps its IP and its open connections.
package network
