package proxy

import (
	"bytes"
	"context"
	"flag"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"kubelite/api"
	"kubelite/nodeagent/proxy/iptables"
	"kubelite/nodeagent/proxy/iptables/iptablestest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ with the current output")

// goldenInput is the node every golden case is rendered for.
func goldenInput(services []*api.Service, endpoints []*api.Endpoints) RuleInput {
	return RuleInput{
		Services:    services,
		Endpoints:   endpoints,
		NodeName:    "node1",
		ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"),
		LocalDNS:    netip.MustParseAddrPort("10.244.1.1:53"),
	}
}

// TestBuildRulesGolden renders each testdata/rules/<case>.yaml (Services and
// Endpoints, as the API server stores them) and compares the restore text
// with <case>.golden. Run `go test -run Golden -update` after an intended
// change and read the diff.
func TestBuildRulesGolden(t *testing.T) {
	for _, input := range goldenInputs(t) {
		name := strings.TrimSuffix(filepath.Base(input), ".yaml")
		t.Run(name, func(t *testing.T) {
			services, endpoints := loadObjects(t, input)
			got := BuildRules(goldenInput(services, endpoints)).Bytes()
			checkJumpTargets(t, got)
			checkRestorable(t, got)
			compareGolden(t, strings.TrimSuffix(input, ".yaml")+".golden", got)
		})
	}
}

// goldenInputs are the cases under testdata/rules, shared by both modes.
func goldenInputs(t *testing.T) []string {
	t.Helper()
	inputs, err := filepath.Glob("testdata/rules/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no golden inputs found")
	}
	return inputs
}

// compareGolden compares got with the golden file, or with -update
// rewrites the file.
func compareGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run with -update if intended):\n%s", golden, lineDiff(string(want), string(got)))
	}
}

// The tutorial's excerpts, verbatim but for the probability, which the
// tutorial's older kube-proxy wrote with five digits (0.33332999982).
func TestBuildRulesMatchesTutorial(t *testing.T) {
	services, endpoints := loadObjects(t, "testdata/rules/nodeport-random.yaml")
	got := BuildRules(goldenInput(services, endpoints)).String()
	for _, want := range []string{
		`-A KUBE-SERVICES ! -s 10.244.0.0/16 -d 10.102.120.255/32 -p tcp -m comment --comment "default/httpd-svc: cluster IP" -m tcp --dport 8080 -j KUBE-MARK-MASQ`,
		`-A KUBE-SERVICES -d 10.102.120.255/32 -p tcp -m comment --comment "default/httpd-svc: cluster IP" -m tcp --dport 8080 -j KUBE-SVC-RL3JAE4GN7VOGDGP`,
		`-A KUBE-SVC-RL3JAE4GN7VOGDGP -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-`,
		`-A KUBE-SVC-RL3JAE4GN7VOGDGP -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-`,
		`-A KUBE-NODEPORTS -p tcp -m comment --comment "default/httpd-svc:" -m tcp --dport 32312 -j KUBE-MARK-MASQ`,
		`-A KUBE-NODEPORTS -p tcp -m comment --comment "default/httpd-svc:" -m tcp --dport 32312 -j KUBE-SVC-RL3JAE4GN7VOGDGP`,
		`-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`,
		`-A KUBE-SEP-`, `-s 10.244.1.2/32 -j KUBE-MARK-MASQ`,
		`-p tcp -m tcp -j DNAT --to-destination 10.244.1.2:80`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("rules lack %q", want)
		}
	}
}

// Both modes' builders: the order of their input does not matter, and
// they change nothing in it.
func TestBuildersAreDeterministicAndPure(t *testing.T) {
	var services []*api.Service
	var endpoints []*api.Endpoints
	for _, input := range goldenInputs(t) {
		s, e := loadObjects(t, input)
		services = append(services, s...)
		endpoints = append(endpoints, e...)
	}
	// Several cases reuse a name; keep one Service per name.
	services = slices.CompactFunc(sortedByKey(services), func(a, b *api.Service) bool { return a.Namespace+a.Name == b.Namespace+b.Name })
	endpoints = slices.CompactFunc(sortedByKey(endpoints), func(a, b *api.Endpoints) bool { return a.Namespace+a.Name == b.Namespace+b.Name })

	for name, build := range map[string]func(RuleInput) []byte{
		"iptables": func(in RuleInput) []byte { return BuildRules(in).Bytes() },
		"nftables": func(in RuleInput) []byte { return BuildNFTRules(in).Bytes() },
	} {
		t.Run(name, func(t *testing.T) {
			before := api.DeepCopy(services)
			want := build(goldenInput(services, endpoints))
			if !reflect.DeepEqual(before, services) {
				t.Fatal("the builder changed its input")
			}
			for range 5 {
				shuffled := slices.Clone(services)
				rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				if got := build(goldenInput(shuffled, endpoints)); !bytes.Equal(got, want) {
					t.Fatalf("the order of Services changed the rules:\n%s", lineDiff(string(want), string(got)))
				}
			}
			if name == "iptables" {
				checkJumpTargets(t, want)
				checkRestorable(t, want)
			}
		})
	}
}

func TestProbability(t *testing.T) {
	for n, want := range map[int]string{
		2: "0.50000000000", 3: "0.33333333349", 4: "0.25000000000", 5: "0.20000000019", 10: "0.10000000009",
	} {
		if got := probability(n); got != want {
			t.Errorf("probability(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestQuoteComment(t *testing.T) {
	for text, want := range map[string]string{
		"default/httpd-svc:":           `"default/httpd-svc:"`,
		"kubernetes service portals":   `"kubernetes service portals"`,
		"plain-word_1":                 "plain-word_1",
		`say "hi"`:                     `"say \"hi\""`,
		"kube-system/kube-dns:dns-tcp": `"kube-system/kube-dns:dns-tcp"`,
	} {
		if got := quoteComment(text); got != want {
			t.Errorf("quoteComment(%q) = %s, want %s", text, got, want)
		}
	}
}

func TestRestoreInputDeletesObsoleteChains(t *testing.T) {
	services, endpoints := loadObjects(t, "testdata/rules/clusterip-1-endpoint.yaml")
	rules := BuildRules(goldenInput(services, endpoints))
	got := string(rules.restoreInput(rules.allChains(), chainSet{
		iptables.TableNAT: {"KUBE-SEP-OLDOLDOLDOLDOLDO"},
	}, nil))
	declare := strings.Index(got, ":KUBE-SEP-OLDOLDOLDOLDOLDO - [0:0]\n")
	lastRule := strings.LastIndex(got, "\n-A ")
	remove := strings.Index(got, "-X KUBE-SEP-OLDOLDOLDOLDOLDO\n")
	if declare < 0 || remove < 0 || remove < lastRule || remove > strings.LastIndex(got, "COMMIT") {
		t.Fatalf("obsolete chain must be declared (flushed) and deleted after the rules of its table:\n%s", got)
	}
}

// checkJumpTargets fails the test if a rule jumps to a chain that is not
// declared in the same table (built-in targets aside).
func checkJumpTargets(t *testing.T, restore []byte) {
	t.Helper()
	builtin := map[string]bool{"ACCEPT": true, "DROP": true, "RETURN": true, "REJECT": true, "DNAT": true, "MASQUERADE": true, "MARK": true}
	var declared map[string]bool
	var jumps []string
	check := func() {
		for _, j := range jumps {
			if target := strings.Fields(j)[0]; !builtin[target] && !declared[target] {
				t.Errorf("jump to undeclared chain %s", target)
			}
		}
	}
	for _, line := range strings.Split(string(restore), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			declared, jumps = make(map[string]bool), nil
		case strings.HasPrefix(line, ":"):
			declared[strings.Fields(line[1:])[0]] = true
		case strings.HasPrefix(line, "-A "):
			if _, after, ok := strings.Cut(line, " -j "); ok {
				jumps = append(jumps, after)
			}
		case line == "COMMIT":
			check()
		}
	}
}

// checkRestorable applies the text to the fake iptables twice (the second
// time over the first, as every sync after the first does).
func checkRestorable(t *testing.T, restore []byte) {
	t.Helper()
	fake := iptablestest.New()
	for range 2 {
		if err := fake.Restore(context.Background(), restore); err != nil {
			t.Fatalf("restore input rejected: %v", err)
		}
	}
}

// loadObjects decodes the Services and Endpoints of a manifest file and
// defaults them, as the API server would have.
func loadObjects(t *testing.T, path string) ([]*api.Service, []*api.Endpoints) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := api.SplitYAMLDocuments(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	scheme := api.NewScheme()
	var services []*api.Service
	var endpoints []*api.Endpoints
	for _, doc := range docs {
		obj, _, err := scheme.Decode(doc, nil, api.DecodeOptions{Strict: true})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		api.Default(obj)
		switch o := obj.(type) {
		case *api.Service:
			services = append(services, o)
		case *api.Endpoints:
			endpoints = append(endpoints, o)
		default:
			t.Fatalf("%s: unexpected %T", path, obj)
		}
	}
	return services, endpoints
}

func sortedByKey[T api.Object](objs []T) []T {
	out := slices.Clone(objs)
	slices.SortStableFunc(out, func(a, b T) int {
		return strings.Compare(a.GetObjectMeta().Namespace+"/"+a.GetObjectMeta().Name, b.GetObjectMeta().Namespace+"/"+b.GetObjectMeta().Name)
	})
	return out
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	wantLines, gotLines := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range wantLines {
		if !slices.Contains(gotLines, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range gotLines {
		if !slices.Contains(wantLines, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	if b.Len() == 0 {
		return "(same lines, different order)"
	}
	return b.String()
}
