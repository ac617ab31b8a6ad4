// Package e2e runs the Services tutorial (../shared/seed/services-tutorial.zh.md,
// issue 7) end to end on the one-machine lab that scripts/lab.sh builds:
// three nodes and an outside client, each a network namespace, with real
// etcd, containerd, runc, CNI plugins and iptables.
//
// The tests drive the cluster the way a reader of the tutorial does — by
// running kubectl-lite, curl, wget and iptables-save — and assert on what
// those commands print. They need root and the packages that
// scripts/install-deps.sh installs, and FAIL (never skip) when something is
// missing. They never touch the machine's own network: all traffic stays
// on loopback and inside the lab's namespaces.
//
//	sudo go test -count=1 -timeout 15m ./e2e/
//
// The test builds kubelite from this tree; KUBELITE_BIN=/path/to/kubelite
// tests a given binary instead (kubectl-lite must sit beside it).
package e2e
