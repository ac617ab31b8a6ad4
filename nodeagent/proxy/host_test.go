package proxy

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"kubelite/nodeagent/proxy/iptables"
)

// The announcer only ever removes addresses it added, and still knows
// them after the agent restarts (the "eth0:lb" label is its record).
func TestAnnouncerKeepsItsRecordAcrossRestarts(t *testing.T) {
	l := newLab(t, false)
	handle, err := netlinkHandle(nsPath(l.node))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(handle.Close)
	ctx := context.Background()
	addrs := func() string { return l.run("ip", "-n", l.node, "-4", "addr", "show", "dev", labNodeIface) }

	first := newNetlinkAnnouncer(handle, labNodeIface)
	if err := first.Announce(ctx, []netip.Addr{netip.MustParseAddr("192.168.56.200"), netip.MustParseAddr("192.168.56.201")}); err != nil {
		t.Fatal(err)
	}
	if got := addrs(); !strings.Contains(got, "192.168.56.200/32 scope global eth0:lb") || !strings.Contains(got, "192.168.56.201/32") {
		t.Fatalf("addresses not announced:\n%s", got)
	}
	// Somebody else's address on the same interface.
	l.ip(l.node, "addr", "add", "192.168.56.77/32", "dev", labNodeIface)

	restarted := newNetlinkAnnouncer(handle, labNodeIface)
	if err := restarted.Announce(ctx, []netip.Addr{netip.MustParseAddr("192.168.56.201")}); err != nil {
		t.Fatal(err)
	}
	got := addrs()
	if strings.Contains(got, "192.168.56.200") {
		t.Errorf("an address the earlier run added and nobody announces survived:\n%s", got)
	}
	for _, keep := range []string{"192.168.56.201/32", "192.168.56.77/32", labNodeIP + "/24"} {
		if !strings.Contains(got, keep) {
			t.Errorf("%s was removed:\n%s", keep, got)
		}
	}
}

func TestRunnerReportsTheFailingLine(t *testing.T) {
	l := newLab(t, false)
	runner, err := iptables.New(nsPath(l.node))
	if err != nil {
		t.Fatal(err)
	}
	bad := "*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j KUBE-NO-SUCH-CHAIN\nCOMMIT\n"
	err = runner.Restore(context.Background(), []byte(bad))
	var restoreErr *iptables.RestoreError
	if !errors.As(err, &restoreErr) {
		t.Fatalf("Restore of bad input: %v, want a *RestoreError", err)
	}
	if restoreErr.Line != "-A KUBE-SERVICES -j KUBE-NO-SUCH-CHAIN" && restoreErr.Line != "COMMIT" {
		t.Errorf("failing line %q; error: %v", restoreErr.Line, err)
	}
	// Nothing of the failed input was applied.
	if exists, err := runner.ChainExists(context.Background(), iptables.TableNAT, ServicesChain); err != nil || exists {
		t.Errorf("KUBE-SERVICES exists = %v (%v) after a failed restore", exists, err)
	}
}

// The backend that holds this node's canary wins; without one, the
// system's. Detecting creates no legacy table: iptables-save would then
// warn on every node that legacy tables are present.
func TestDetectBackend(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, false)
	detect := func() iptables.Backend {
		t.Helper()
		backend, err := iptables.Detect(ctx, nsPath(l.node), CanaryChain)
		if err != nil {
			t.Fatal(err)
		}
		return backend
	}
	if got := detect(); got != iptables.BackendNFT {
		t.Errorf("fresh node: %s, want nft (Debian's iptables)", got)
	}
	if out, err := l.inNS(l.node, "iptables-save"); err != nil || strings.Contains(out, "legacy tables present") {
		t.Errorf("iptables-save after detection (%v):\n%s", err, out)
	}
	legacy, err := iptables.NewWithBackend(nsPath(l.node), iptables.BackendLegacy)
	if err != nil {
		t.Fatal(err)
	}
	if err := legacy.Restore(ctx, []byte("*nat\n:"+CanaryChain+" - [0:0]\nCOMMIT\n")); err != nil {
		t.Fatal(err)
	}
	if got := detect(); got != iptables.BackendLegacy {
		t.Errorf("node with a legacy canary: %s, want legacy", got)
	}
}
