// Package nodeagent is kubelite's kubelet: it turns the Pods bound to its
// node into containers with IPs, and tells the API server about the node
// and its Pods.
//
// # What a node agent does
//
//   - It registers its Node: addresses (InternalIP, Hostname), capacity
//     (cpu, memory, pods), nodeInfo (kernel, OS, containerd, its version).
//   - It heartbeats: a Lease in kube-node-lease renewed every 10 s, and
//     the Node's Ready condition written when it changes (and every
//     minute). The Node is Ready once the container runtime, the pod
//     network and the components wired in (service proxy, DNS) are up.
//   - It runs containerd (its own, supervised, unless one is given) and
//     imports the image tarballs of its images folder.
//   - It builds the pod network once the node controller has given the
//     Node a podCIDR: CNI bridge and host-local IPAM per Pod, routes to
//     every other node's podCIDR through that node (host-gw), masquerade
//     for traffic leaving the cluster (package network).
//   - It runs each Pod bound to it with a worker of its own: network
//     namespace, images, containers, restarts with back-off, probes,
//     status, graceful deletion (package podworker, package probe).
//   - It survives its own restart: containers keep running and are
//     adopted, Pods keep their IPs, and whatever belongs to a Pod deleted
//     meanwhile is cleaned up.
//
// # Running an agent
//
// `kubelite agent` and the agent inside `kubelite server` build a Config
// and call New, then Run:
//
//	agent, err := nodeagent.New(nodeagent.Config{
//		ServerURL: "https://192.168.56.10:6443",
//		Token:     token,  // the node token
//		CAData:    caPEM,  // the cluster's CA
//		NodeName:  "node1",
//		NodeIP:    "192.168.56.11", // optional; see Config.NodeIP
//		DataDir:   "/var/lib/kubelite/agent",
//		ImagesDir: "/var/lib/kubelite/agent/images",
//		Components: []nodeagent.Component{
//			{Name: "service proxy", Run: runProxy}, // call ready() once serving
//			{Name: "cluster DNS", Run: runDNS},
//		},
//	})
//	if err != nil { ... }
//	err = agent.Run(ctx) // until ctx ends; containers keep running after
//
// The logs, exec and attach server uses Agent.Runtime and
// Agent.ContainerFor to find a Pod's container and its log file.
//
// # The node's network namespace
//
// Config.NetNS puts the node's pod network — bridge, veths, routes,
// iptables rules — into a network namespace of the node's own while the
// agent, containerd and the API server stay in the machine's. Production
// leaves it empty. The end-to-end tests and the one-machine lab set it:
// each "node" is a namespace on a shared lab switch, nothing touches the
// machine's own network, and the agent still reaches the API server on
// 127.0.0.1. Probes dial pods from the node's namespace. This keeps the
// production code free of test plumbing: the one option is a path.
package nodeagent
