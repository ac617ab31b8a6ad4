// Package allocator hands out Service cluster IPs and node ports without
// races, as Kubernetes' Service registry does, however many API servers
// share one etcd cluster.
//
// Every allocated value is one etcd key whose value names its owner:
//
//	/registry/ranges/serviceips/10.96.0.10        {"owner":"kube-system/kube-dns",...}
//	/registry/ranges/servicenodeports/31000       {"owner":"default/httpd-svc",...}
//
// so `etcdctl get --prefix /registry/ranges/` shows who holds what.
// Allocating is an etcd transaction that creates the key only if it does
// not exist yet; of two API servers that pick the same value at the same
// moment, exactly one succeeds and the other picks again. Releasing deletes
// the key only while it still names the releasing Service.
//
// The package has three layers:
//
//   - ranges.go, the pure part: parsing the service CIDR and the node port
//     range, and choosing a free value (at random, then by a scan).
//   - store.go: one range in etcd (claim a value, claim any value, release,
//     snapshot).
//   - service.go: ServiceHook, the API server's hook for Services, which
//     gives each Service its cluster IP and node ports on create and update
//     and gives them back when a write fails, an update lets them go or the
//     Service is deleted; and repair.go, the loop that mends what a crash
//     left behind.
package allocator
