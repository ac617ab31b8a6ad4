package proxy

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"kubelite/api"
	"kubelite/nodeagent/proxy/nftables"
)

// TestBuildNFTRulesGolden renders each testdata/rules/<case>.yaml (the
// inputs of the iptables mode's goldens) and compares the table with
// testdata/nftrules/<case>.nft. Each golden is then applied with the real
// nft inside a namespace of the test's own, and must list back as written:
// the golden files are exactly what `nft list table ip kubelite` shows.
// Run `go test -run NFTRulesGolden -update` after an intended change.
func TestBuildNFTRulesGolden(t *testing.T) {
	nft := newNFTNamespace(t)
	for _, input := range goldenInputs(t) {
		name := strings.TrimSuffix(filepath.Base(input), ".yaml")
		t.Run(name, func(t *testing.T) {
			services, endpoints := loadObjects(t, input)
			rules := BuildNFTRules(goldenInput(services, endpoints))
			got := rules.Bytes()
			checkNFTReferences(t, rules)

			compareGolden(t, filepath.Join("testdata", "nftrules", name+".nft"), got)

			// The kernel accepts it, from nothing and over itself (a full
			// sync), and lists it back as written.
			ctx := context.Background()
			for range 2 {
				if err := nft.Apply(ctx, rules.fullScript()); err != nil {
					t.Fatalf("nft rejected the golden: %v", err)
				}
			}
			listed := listNFTTable(t, nft)
			if canonicalNFT(listed) != canonicalNFT(got) {
				t.Errorf("nft lists the table differently from the golden (%s):\n%s", nftVersion(), lineDiff(canonicalNFT(got), canonicalNFT(listed)))
			}
		})
	}
}

// The tutorial's Service, as the nftables mode writes it.
func TestBuildNFTRulesTutorial(t *testing.T) {
	services, endpoints := loadObjects(t, "testdata/rules/nodeport-random.yaml")
	got := BuildNFTRules(goldenInput(services, endpoints)).String()
	base := "P26LWKKU-default/httpd-svc/tcp/"
	for _, want := range []string{
		"10.102.120.255 . tcp . 8080 comment \"default/httpd-svc:\" : goto service-" + base,
		"tcp . 32312 comment \"default/httpd-svc:\" : goto external-" + base,
		"\tchain service-" + base + " {\n\t\tip daddr 10.102.120.255 tcp dport 8080 ip saddr != 10.244.0.0/16 jump mark-for-masquerade\n\t\tnumgen random mod 3 0 goto endpoint-",
		"\tchain external-" + base + " {\n\t\tjump mark-for-masquerade\n\t\tgoto service-" + base + "\n\t}",
		"__10.244.1.2/80 {\n\t\tip saddr 10.244.1.2 jump mark-for-masquerade\n\t\tmeta l4proto tcp dnat to 10.244.1.2:80\n\t}",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q", want)
		}
	}
}

// kube-proxy's nftables chain names for known ports (its
// servicePortChainNameBase and servicePortEndpointChainNameBase).
func TestNFTNames(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{nftPortName(ServicePortName{"ns1", "svc1", "p80"}, "TCP"), "ULMVA6XW-ns1/svc1/tcp/p80"},
		{nftEndpointName(ServicePortName{"ns1", "svc1", "p80"}, "tcp", netip.MustParseAddrPort("10.180.0.1:80")), "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"},
		{nftDuration(10800), "3h"},
		{nftDuration(86400), "1d"},
		{nftDuration(90), "1m30s"},
		{nftDuration(3661), "1h1m1s"},
		{nftPrefix(netip.MustParsePrefix("10.244.1.0/16")), "10.244.0.0/16"},
		{nftPrefix(netip.MustParsePrefix("10.244.1.7/32")), "10.244.1.7"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	long := nftHashedName(strings.Repeat("n", 300))
	if len(long) != nftNameMax || !strings.HasSuffix(long, "...") {
		t.Errorf("a long name is not cut to %d characters: %d", nftNameMax, len(long))
	}
}

// Two Services claiming the same external IP and port: the first keeps it,
// and the table stays writable.
func TestBuildNFTRulesDuplicateKeys(t *testing.T) {
	a := clusterIPService("default", "a", "10.96.0.21", tcpPort(80, 80))
	b := clusterIPService("default", "b", "10.96.0.22", tcpPort(80, 80))
	a.Spec.ExternalIPs = []string{"192.168.56.50"}
	b.Spec.ExternalIPs = []string{"192.168.56.50"}
	rules := BuildNFTRules(goldenInput([]*api.Service{b, a}, []*api.Endpoints{
		endpointsOf("default", "a", api.ProtocolTCP, 80, "10.244.1.2"),
		endpointsOf("default", "b", api.ProtocolTCP, 80, "10.244.1.3"),
	}))
	e := rules.elements[nftElementKey{nftServiceIPsMap, "192.168.56.50 . tcp . 80"}]
	if e.comment != "default/a:" {
		t.Errorf("192.168.56.50:80 goes to %q, want default/a:", e.comment)
	}
	checkNFTReferences(t, rules)
}

// checkNFTReferences fails the test if a rule or element sends packets to a
// chain, or uses a set, that the table does not declare.
func checkNFTReferences(t *testing.T, rules *NFTRuleSet) {
	t.Helper()
	chains, sets := make(map[string]bool), make(map[string]bool)
	for _, f := range rules.allFragments() {
		for _, c := range f.chains {
			if chains[c.name] {
				t.Errorf("chain %s declared twice", c.name)
			}
			chains[c.name] = true
		}
		for _, s := range f.sets {
			if sets[s.name] {
				t.Errorf("set %s declared twice", s.name)
			}
			sets[s.name] = true
		}
	}
	check := func(where, text string) {
		for _, target := range nftJumpTargets(text) {
			if !chains[target] {
				t.Errorf("%s: goto/jump to undeclared chain %s", where, target)
			}
		}
		for _, set := range nftSetReferences(text) {
			if !sets[set] {
				t.Errorf("%s: undeclared set %s", where, set)
			}
		}
	}
	for _, f := range rules.allFragments() {
		for _, c := range f.chains {
			for _, rule := range c.rules {
				check("chain "+c.name, rule)
			}
		}
	}
	for _, e := range rules.elements {
		if !sets[e.set] {
			t.Errorf("element %s of undeclared map %s", e.key, e.set)
		}
		check("map "+e.set, e.verdict)
	}
}

var nftNamespaceCounter atomic.Int32

// newNFTNamespace creates an empty network namespace for the test (deleted
// after it) and returns an nft Runner inside it.
func newNFTNamespace(t testing.TB) *nftables.Runner {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test creates network namespaces and must run as root")
	}
	name := fmt.Sprintf("knft%d-%d", os.Getpid(), nftNamespaceCounter.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	nft, err := nftables.New(nsPath(name))
	if err != nil {
		t.Fatal(err)
	}
	return nft
}

func listNFTTable(t testing.TB, nft nftables.Interface) []byte {
	t.Helper()
	out, err := nft.List(context.Background(), "table", nftFamily, nftTable)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// canonicalNFT puts a listing of the table into a canonical form: blocks
// sorted by kind and name, elements sorted, and the entries the kernel
// itself adds to dynamic (affinity) sets left out. That is all nft prints
// differently for the same content: map elements come in hash order, and
// chains in the order they were created, which after partial syncs is the
// order of history, not of the builder.
func canonicalNFT(listing []byte) string {
	t := parseNFTListing(listing)
	blocks := slices.Clone(t.blocks)
	slices.SortFunc(blocks, func(a, b *nftBlock) int {
		return strings.Compare(nftKindRank(a.kind)+a.name, nftKindRank(b.kind)+b.name)
	})
	var buf bytes.Buffer
	for _, line := range t.header {
		buf.WriteString(line + "\n")
	}
	for _, b := range blocks {
		c := *b
		c.elements = slices.Sorted(slices.Values(b.elements))
		if slices.Contains(b.lines, "flags dynamic,timeout") {
			c.elements = nil
		}
		c.render(&buf)
	}
	return buf.String()
}

func nftKindRank(kind string) string {
	if kind == "chain" {
		return "2"
	}
	return "1"
}

func nftVersion() string {
	out, err := exec.Command("nft", "--version").Output()
	if err != nil {
		return "nft version unknown"
	}
	return "goldens were written with nftables v1.0.6; this is " + strings.TrimSpace(string(out))
}
