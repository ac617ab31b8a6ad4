package netns

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"testing"
)

func interfaceNames(t *testing.T) []string {
	t.Helper()
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, iface := range ifaces {
		names = append(names, iface.Name)
	}
	return names
}

func TestDoRunsInTheNamespaceAndOnlyThere(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test creates a network namespace and must run as root")
	}
	name := fmt.Sprintf("kpx-netns-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del: %v: %s", err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", name, "link", "add", "kpx0", "type", "veth", "peer", "name", "kpx1").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v: %s", err, out)
	}

	before := interfaceNames(t)
	var inside []string
	if err := Do("/run/netns/"+name, func() error {
		inside = interfaceNames(t)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(inside)
	if !slices.Equal(inside, []string{"kpx0", "kpx1", "lo"}) {
		t.Errorf("interfaces inside = %v, want [kpx0 kpx1 lo]", inside)
	}
	for range 20 { // whichever thread the goroutine runs on now
		if after := interfaceNames(t); !slices.Equal(after, before) {
			t.Fatalf("the caller's namespace changed: %v, was %v", after, before)
		}
	}

	if err := Do("/run/netns/no-such-namespace-kpx", func() error { return nil }); err == nil {
		t.Error("Do into a missing namespace succeeded")
	}
	wantErr := fmt.Errorf("from inside")
	if err := Do("/run/netns/"+name, func() error { return wantErr }); err != wantErr {
		t.Errorf("Do returned %v, want fn's error", err)
	}
	if err := Do("", func() error { return wantErr }); err != wantErr {
		t.Errorf("Do(\"\") returned %v, want fn's error", err)
	}
}
