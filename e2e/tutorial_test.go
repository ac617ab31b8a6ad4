package e2e

import (
	"fmt"
	"maps"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Deadlines for things that take a while in a fresh lab: they only catch
// what never happens.
const (
	podsDeadline    = 3 * time.Minute // image import, containerd, CNI
	trafficDeadline = 90 * time.Second
	stateDeadline   = 60 * time.Second
)

// httpdSvcChain is the chain kube-proxy names for default/httpd-svc's
// unnamed TCP port: the tutorial prints the very same name, and kubelite
// uses kube-proxy's naming scheme.
const httpdSvcChain = "KUBE-SVC-RL3JAE4GN7VOGDGP"

// TestTutorial follows the tutorial step by step, as issue 7 lists the
// steps. Each step reads the cluster's state afresh, so a failed step does
// not hide what the later ones would show.
func TestTutorial(t *testing.T) {
	l := theLab
	steps := []struct {
		name string
		run  func(*testing.T, *lab)
	}{
		{"1_deployment_pods_spread_and_replaced", stepDeployment},
		{"2_service_cluster_ip_from_every_node", stepClusterIP},
		{"3_describe_lists_endpoints", stepDescribeEndpoints},
		{"4_iptables_rules_on_every_node", stepIptablesRules},
		{"5_dns_from_a_pod", stepDNS},
		{"6_namespaces_typo_and_cross_namespace_dns", stepNamespaces},
		{"7_run_interactive_busybox", stepRunInteractive},
		{"8_nodeport_from_outside", stepNodePort},
		{"9_loadbalancer_from_outside", stepLoadBalancer},
		{"9_loadbalancer_pending_without_pool", stepLoadBalancerWithoutPool},
		{"the_machines_own_network_untouched", stepMachineNetworkUntouched},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) { step.run(t, l) })
	}
}

// --- step 1 ------------------------------------------------------------------

func stepDeployment(t *testing.T, l *lab) {
	out := mustKubectl(t, l, "apply", "-f", "examples/httpd.yml")
	if !strings.Contains(out, "deployment.apps/httpd created") {
		t.Errorf("apply httpd.yml said %q, want deployment.apps/httpd created", out)
	}
	pods := waitForRunningPods(t, l, "default", "run=httpd", 3)

	nodes := map[string]bool{}
	for _, p := range pods {
		nodes[p.node] = true
	}
	// Three pods on three empty nodes: a scheduler that spreads uses more
	// than one (the tutorial's pods sit on two of its nodes).
	if len(nodes) < 2 {
		t.Errorf("all 3 pods run on %v, want them spread over the nodes", slices.Collect(maps.Keys(nodes)))
	}

	victim := pods[0]
	out = mustKubectl(t, l, "delete", "pod", victim.name)
	if want := fmt.Sprintf("pod %q deleted", victim.name); !strings.Contains(out, want) {
		t.Errorf("delete said %q, want %s", out, want)
	}
	oldIPs := map[string]bool{}
	for _, p := range pods {
		oldIPs[p.ip] = true
	}
	var replacement podRow
	eventually(t, podsDeadline, "a new pod to replace "+victim.name, func() (bool, string) {
		now, seen := runningPods(l, "default", "run=httpd")
		if len(now) != 3 {
			return false, seen
		}
		for _, p := range now {
			if p.name == victim.name {
				return false, seen
			}
			if !oldIPs[p.ip] {
				replacement = p
			}
		}
		return replacement.name != "", seen
	})
	t.Logf("%s (%s) was replaced by %s (%s on %s)", victim.name, victim.ip, replacement.name, replacement.ip, replacement.node)
}

// podRow is one line of `kubectl-lite get pods -o wide`.
type podRow struct {
	name, status, ip, node string
}

// runningPods lists the pods matching selector when all of them are Running
// and ready; otherwise it returns nil. The second result is the table seen.
func runningPods(l *lab, namespace, selector string) ([]podRow, string) {
	out, err := l.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "wide")
	if err != nil {
		return nil, fmt.Sprintf("%v\n%s", err, out)
	}
	tb, err := parseTable(out)
	if err != nil {
		return nil, out
	}
	var pods []podRow
	for _, r := range tb.rows {
		p := podRow{name: r["NAME"], status: r["STATUS"], ip: r["IP"], node: r["NODE"]}
		if p.status != "Running" || r["READY"] != "1/1" || p.ip == "" || p.ip == "<none>" || p.node == "" || p.node == "<none>" {
			return nil, out
		}
		pods = append(pods, p)
	}
	return pods, out
}

// waitForRunningPods waits for exactly n Running pods and checks their IPs:
// each in the pod network, all different.
func waitForRunningPods(t *testing.T, l *lab, namespace, selector string, n int) []podRow {
	t.Helper()
	var pods []podRow
	var table string
	eventually(t, podsDeadline, fmt.Sprintf("%d Running pods -l %s in %s", n, selector, namespace), func() (bool, string) {
		pods, table = runningPods(l, namespace, selector)
		return len(pods) == n, table
	})
	t.Logf("kubectl-lite get pods -n %s -l %s -o wide:\n%s", namespace, selector, table)
	seen := map[string]bool{}
	for _, p := range pods {
		if !inPrefix(p.ip, podCIDR) {
			t.Errorf("pod %s has IP %s, outside the pod network %s", p.name, p.ip, podCIDR)
		}
		if seen[p.ip] {
			t.Errorf("two pods have IP %s", p.ip)
		}
		seen[p.ip] = true
	}
	return pods
}

// --- step 2 ------------------------------------------------------------------

func stepClusterIP(t *testing.T, l *lab) {
	out := mustKubectl(t, l, "apply", "-f", "examples/httpd-svc.yml")
	if !strings.Contains(out, "service/httpd-svc created") {
		t.Errorf("apply httpd-svc.yml said %q, want service/httpd-svc created", out)
	}
	out = mustKubectl(t, l, "get", "svc")
	t.Logf("kubectl-lite get svc:\n%s", out)
	tb, err := parseTable(out)
	if err != nil {
		t.Fatalf("get svc: %v\n%s", err, out)
	}
	kubernetes, ok := tb.row("kubernetes")
	if !ok {
		t.Errorf("get svc does not list the kubernetes Service:\n%s", out)
	} else {
		expectCells(t, "kubernetes", kubernetes, map[string]string{"TYPE": "ClusterIP", "CLUSTER-IP": "10.96.0.1", "PORT(S)": "443/TCP"})
	}
	svc, ok := tb.row("httpd-svc")
	if !ok {
		t.Fatalf("get svc does not list httpd-svc:\n%s", out)
	}
	expectCells(t, "httpd-svc", svc, map[string]string{"TYPE": "ClusterIP", "EXTERNAL-IP": "<none>", "PORT(S)": "8080/TCP"})
	clusterIP := svc["CLUSTER-IP"]
	if !inPrefix(clusterIP, serviceCIDR) {
		t.Fatalf("httpd-svc's CLUSTER-IP %q is not in %s", clusterIP, serviceCIDR)
	}

	url := "http://" + clusterIP + ":8080/"
	for _, node := range nodeNames {
		eventually(t, trafficDeadline, "curl "+url+" on "+node+" to return the httpd page", func() (bool, string) {
			out, err := l.on(node, "curl", "-sS", "--max-time", "5", url)
			return err == nil && strings.Contains(out, itWorks), fmt.Sprintf("%v\n%s", err, out)
		})
	}
}

func expectCells(t *testing.T, what string, row map[string]string, want map[string]string) {
	t.Helper()
	for column, value := range want {
		if row[column] != value {
			t.Errorf("%s: %s is %q, want %q", what, column, row[column], value)
		}
	}
}

// --- step 3 ------------------------------------------------------------------

func stepDescribeEndpoints(t *testing.T, l *lab) {
	pods := waitForRunningPods(t, l, "default", "run=httpd", 3)
	var want []string
	for _, p := range pods {
		want = append(want, p.ip+":80")
	}
	slices.Sort(want)

	eventually(t, stateDeadline, "describe service httpd-svc to list the 3 pods as endpoints", func() (bool, string) {
		out, err := l.kubectl("describe", "service", "httpd-svc")
		if err != nil {
			return false, fmt.Sprintf("%v\n%s", err, out)
		}
		got := strings.Split(describeField(out, "Endpoints"), ",")
		slices.Sort(got)
		return slices.Equal(got, want) && describeField(out, "Selector") == "run=httpd" &&
			describeField(out, "TargetPort") == "80/TCP", out
	})
}

// describeField is the value of the first "Name:   value" line.
func describeField(describe, name string) string {
	for _, line := range strings.Split(describe, "\n") {
		if rest, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}

// --- step 4 ------------------------------------------------------------------

func stepIptablesRules(t *testing.T, l *lab) {
	clusterIP := serviceClusterIP(t, l, "default", "httpd-svc")
	pods := waitForRunningPods(t, l, "default", "run=httpd", 3)
	var podIPs []string
	for _, p := range pods {
		podIPs = append(podIPs, p.ip)
	}
	slices.Sort(podIPs)

	rulesByNode := map[string]string{}
	var iptablesNodes []string
	for _, node := range nodeNames {
		if nftablesNodes[node] {
			checkNFTablesRules(t, l, node, clusterIP, podIPs)
			continue
		}
		iptablesNodes = append(iptablesNodes, node)
		var rules serviceRules
		eventually(t, stateDeadline, "the nat table of "+node+" to hold httpd-svc's rules for its 3 pods", func() (bool, string) {
			out, err := l.on(node, "iptables-save", "-t", "nat")
			if err != nil {
				return false, fmt.Sprintf("%v\n%s", err, out)
			}
			rules = httpdSvcRules(out, clusterIP)
			return len(rules.problems(podIPs)) == 0, strings.Join(rules.problems(podIPs), "\n") + "\n" + kubeLines(out)
		})
		rulesByNode[node] = rules.text()
		if node == iptablesNodes[0] {
			t.Logf("httpd-svc's rules on %s:\n%s", node, rules.text())
		}
	}
	for _, node := range iptablesNodes[1:] {
		if rulesByNode[node] != rulesByNode[iptablesNodes[0]] {
			t.Errorf("%s's rules for httpd-svc differ from %s's:\n%s\n--- vs ---\n%s",
				node, iptablesNodes[0], rulesByNode[node], rulesByNode[iptablesNodes[0]])
		}
	}
	for _, node := range nodeNames {
		checkProxyMetrics(t, l, node)
	}
}

// checkProxyMetrics reads the node's proxy metrics (kube-proxy's port,
// on the node's loopback): its mode, and syncs recorded as histograms.
func checkProxyMetrics(t *testing.T, l *lab, node string) {
	t.Helper()
	info := `kubelite_proxy_info{backend="nft",mode="iptables"} 1`
	if nftablesNodes[node] {
		info = `kubelite_proxy_info{backend="nft",mode="nftables"} 1`
	}
	out, err := l.on(node, "curl", "-sS", "--max-time", "5", "http://127.0.0.1:10249/metrics")
	if err != nil {
		t.Errorf("metrics of %s: %v\n%s", node, err, out)
		return
	}
	for _, want := range []string{info, "kubelite_proxy_sync_full_proxy_rules_duration_seconds_count ",
		"kubelite_proxy_sync_partial_proxy_rules_duration_seconds_bucket", "kubelite_proxy_network_programming_duration_seconds_count",
		"kubelite_proxy_sync_proxy_rules_written_bucket"} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics of %s lack %q", node, want)
		}
	}
}

// proxyRules is `kubelite proxy rules --service default/httpd-svc` on a
// node: the learning view, from nftables or iptables, whichever the node uses.
func proxyRules(l *lab, node string) (string, error) {
	return l.on(node, filepath.Join(l.binDir, "kubelite"), "proxy", "rules", "--service", "default/httpd-svc")
}

// checkNFTablesRules checks a node in nftables mode: httpd-svc's cluster
// IP in the service-ips map, and its chain choosing among the 3 pods.
func checkNFTablesRules(t *testing.T, l *lab, node, clusterIP string, podIPs []string) {
	t.Helper()
	element := regexp.MustCompile(regexp.QuoteMeta(clusterIP+` . tcp . 8080 comment "default/httpd-svc:" : goto service-`) + `\S+-default/httpd-svc/tcp/ `)
	eventually(t, stateDeadline, node+"'s nftables table to hold httpd-svc's rules for its 3 pods", func() (bool, string) {
		out, err := proxyRules(l, node)
		if err != nil {
			return false, fmt.Sprintf("%v\n%s", err, out)
		}
		if !element.MatchString(out) || strings.Count(out, "numgen random mod") != 2 {
			return false, out
		}
		for _, ip := range podIPs {
			if !strings.Contains(out, "meta l4proto tcp dnat to "+ip+":80") {
				return false, out
			}
		}
		if saved, err := l.on(node, "iptables-save", "-t", "nat"); err != nil || strings.Contains(saved, httpdSvcChain) {
			return false, fmt.Sprintf("an nftables-mode node must have no iptables rules for httpd-svc (%v):\n%s", err, saved)
		}
		t.Logf("httpd-svc's rules on %s (nftables mode, kubelite proxy rules):\n%s", node, out)
		return true, out
	})
}

// serviceRules are the nat rules that make httpd-svc's cluster IP work.
type serviceRules struct {
	markMasq     string   // KUBE-SERVICES: outside the pod network → KUBE-MARK-MASQ
	jump         string   // KUBE-SERVICES: → KUBE-SVC-…
	markMasqRule string   // the KUBE-MARK-MASQ chain's rule
	svc          []string // the KUBE-SVC chain, in order
	seps         map[string][]string
}

var (
	statisticRule = regexp.MustCompile(`^-A \S+ -m statistic --mode random --probability ([0-9.]+) -j (KUBE-SEP-\w+)$`)
	lastRule      = regexp.MustCompile(`^-A \S+ -j (KUBE-SEP-\w+)$`)
	dnatRule      = regexp.MustCompile(`-j DNAT --to-destination ([0-9.]+):(\d+)$`)
)

func httpdSvcRules(iptablesSave, clusterIP string) serviceRules {
	comment := `-m comment --comment "default/httpd-svc: cluster IP"`
	wantMasq := fmt.Sprintf(`-A KUBE-SERVICES ! -s %s -d %s/32 -p tcp %s -m tcp --dport 8080 -j KUBE-MARK-MASQ`, podCIDR, clusterIP, comment)
	wantJump := fmt.Sprintf(`-A KUBE-SERVICES -d %s/32 -p tcp %s -m tcp --dport 8080 -j %s`, clusterIP, comment, httpdSvcChain)
	r := serviceRules{seps: map[string][]string{}}
	lines := strings.Split(iptablesSave, "\n")
	for _, line := range lines {
		switch {
		case line == wantMasq:
			r.markMasq = line
		case line == wantJump:
			r.jump = line
		case line == "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000":
			r.markMasqRule = line
		case strings.HasPrefix(line, "-A "+httpdSvcChain+" "):
			r.svc = append(r.svc, line)
		}
	}
	for _, rule := range r.svc {
		sep := rule[strings.LastIndex(rule, " ")+1:]
		for _, line := range lines {
			if strings.HasPrefix(line, "-A "+sep+" ") {
				r.seps[sep] = append(r.seps[sep], line)
			}
		}
	}
	return r
}

// problems says how the rules differ from the tutorial's shape for pods
// at podIPs (sorted); none when they match.
func (r serviceRules) problems(podIPs []string) []string {
	var problems []string
	if r.markMasq == "" {
		problems = append(problems, `no KUBE-SERVICES rule marking traffic from outside the pod network for masquerade ("default/httpd-svc: cluster IP" -j KUBE-MARK-MASQ)`)
	}
	if r.jump == "" {
		problems = append(problems, "no KUBE-SERVICES rule jumping from the cluster IP to "+httpdSvcChain)
	}
	if r.markMasqRule == "" {
		problems = append(problems, "no KUBE-MARK-MASQ rule setting mark 0x4000")
	}
	if len(r.svc) != len(podIPs) {
		return append(problems, fmt.Sprintf("%s has %d rules, want one per pod (%d)", httpdSvcChain, len(r.svc), len(podIPs)))
	}
	var dnatIPs []string
	for i, rule := range r.svc {
		var sep string
		if i == len(r.svc)-1 {
			m := lastRule.FindStringSubmatch(rule)
			if m == nil {
				problems = append(problems, "the last rule of "+httpdSvcChain+" is not an unconditional jump to a KUBE-SEP chain: "+rule)
				continue
			}
			sep = m[1]
		} else {
			m := statisticRule.FindStringSubmatch(rule)
			if m == nil {
				problems = append(problems, "not a random choice of a KUBE-SEP chain: "+rule)
				continue
			}
			p, _ := strconv.ParseFloat(m[1], 64)
			if want := 1 / float64(len(r.svc)-i); math.Abs(p-want) > 1e-4 {
				problems = append(problems, fmt.Sprintf("rule %d of %s has probability %s, want %.5f: %s", i+1, httpdSvcChain, m[1], want, rule))
			}
			sep = m[2]
		}
		var dnat []string
		for _, line := range r.seps[sep] {
			if m := dnatRule.FindStringSubmatch(line); m != nil {
				dnat = append(dnat, m[1])
				if m[2] != "80" {
					problems = append(problems, sep+" DNATs to port "+m[2]+", want the targetPort 80: "+line)
				}
			}
		}
		if len(dnat) != 1 {
			problems = append(problems, fmt.Sprintf("%s has %d DNAT rules, want 1", sep, len(dnat)))
		}
		dnatIPs = append(dnatIPs, dnat...)
	}
	slices.Sort(dnatIPs)
	if !slices.Equal(dnatIPs, podIPs) {
		problems = append(problems, fmt.Sprintf("the KUBE-SEP chains DNAT to %v, want the pods %v", dnatIPs, podIPs))
	}
	return problems
}

// text is the rules in a stable order, for comparing nodes.
func (r serviceRules) text() string {
	lines := []string{r.markMasq, r.jump, r.markMasqRule}
	lines = append(lines, r.svc...)
	for _, sep := range slices.Sorted(maps.Keys(r.seps)) {
		lines = append(lines, r.seps[sep]...)
	}
	return strings.Join(lines, "\n")
}

// --- step 5 ------------------------------------------------------------------

// probePod is a long-running busybox pod in default that the DNS steps
// look around from, as the tutorial's busybox pod does.
const probePod = "dns-probe"

func stepDNS(t *testing.T, l *lab) {
	out := mustKubectl(t, l, "get", "svc", "-n", "kube-system")
	t.Logf("kubectl-lite get svc -n kube-system:\n%s", out)
	tb, err := parseTable(out)
	if err != nil {
		t.Fatalf("get svc -n kube-system: %v\n%s", err, out)
	}
	dns, ok := tb.row("kube-dns")
	if !ok {
		t.Errorf("kube-system has no kube-dns Service:\n%s", out)
	} else {
		expectCells(t, "kube-dns", dns, map[string]string{"TYPE": "ClusterIP", "CLUSTER-IP": "10.96.0.10"})
		if ports := dns["PORT(S)"]; !strings.Contains(ports, "53/UDP") || !strings.Contains(ports, "53/TCP") {
			t.Errorf("kube-dns PORT(S) = %q, want 53/UDP and 53/TCP", ports)
		}
	}

	clusterIP := serviceClusterIP(t, l, "default", "httpd-svc")
	startProbePod(t, l)

	resolv := mustKubectl(t, l, "exec", probePod, "--", "cat", "/etc/resolv.conf")
	for _, want := range []string{"nameserver 10.96.0.10", "search default.svc.cluster.local svc.cluster.local cluster.local", "ndots:5"} {
		if !strings.Contains(resolv, want) {
			t.Errorf("the pod's /etc/resolv.conf lacks %q:\n%s", want, resolv)
		}
	}
	eventually(t, trafficDeadline, "httpd-svc.default.svc.cluster.local to resolve to "+clusterIP+" in a pod", func() (bool, string) {
		out, err := l.kubectl("exec", probePod, "--", "nslookup", "httpd-svc.default.svc.cluster.local")
		return err == nil && strings.Contains(out, clusterIP), fmt.Sprintf("%v\n%s", err, out)
	})
	for _, name := range []string{"httpd-svc", "httpd-svc.default"} {
		expectPageFromProbe(t, l, name+":8080")
	}
}

func startProbePod(t *testing.T, l *lab) {
	t.Helper()
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  labels:
    app: %s
spec:
  containers:
  - name: busybox
    image: busybox
    command: ["sleep", "3600"]
`, probePod, probePod)
	path := filepath.Join(t.TempDir(), "probe.yml")
	if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	mustKubectl(t, l, "apply", "-f", path)
	waitForRunningPods(t, l, "default", "app="+probePod, 1)
}

// expectPageFromProbe fetches the page from the probe pod, as the
// tutorial does from its busybox pod. (No -T: Debian's busybox-static wget
// crashes with it; commandTimeout bounds a hang.)
func expectPageFromProbe(t *testing.T, l *lab, hostPort string) {
	t.Helper()
	eventually(t, trafficDeadline, "wget "+hostPort+" in a pod to return the httpd page", func() (bool, string) {
		out, err := l.kubectl("exec", probePod, "--", "wget", "-qO-", hostPort)
		return err == nil && strings.Contains(out, itWorks), fmt.Sprintf("%v\n%s", err, out)
	})
}

// --- step 6 ------------------------------------------------------------------

func stepNamespaces(t *testing.T, l *lab) {
	out := mustKubectl(t, l, "get", "namespace")
	t.Logf("kubectl-lite get namespace:\n%s", out)
	tb, err := parseTable(out)
	if err != nil {
		t.Fatalf("get namespace: %v\n%s", err, out)
	}
	for _, ns := range []string{"default", "kube-node-lease", "kube-public", "kube-system"} {
		row, ok := tb.row(ns)
		if !ok || row["STATUS"] != "Active" {
			t.Errorf("namespace %s is not listed as Active:\n%s", ns, out)
		}
	}

	// The tutorial's file, typo included: the Deployment is refused with
	// the field's path and the likely fix, the Service beside it applies.
	out, err = l.kubectl("apply", "-f", "examples/httpd2.yml")
	t.Logf("kubectl-lite apply -f examples/httpd2.yml:\n%s", out)
	if err == nil {
		t.Errorf("apply httpd2.yml succeeded; want the port: typo refused")
	}
	for _, want := range []string{`containers[0].port`, `did you mean "ports"`, "service/httpd2-svc created"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply httpd2.yml did not say %q", want)
		}
	}
	if out, err := l.kubectl("get", "deployment", "httpd2", "-n", "kube-public"); err == nil || !strings.Contains(out, "not found") {
		t.Errorf("after the refused apply, get deployment httpd2 -n kube-public = %v:\n%s\nwant not found: nothing of the bad document may exist", err, out)
	}
	if out, err := l.kubectl("get", "pods", "-n", "kube-public"); err != nil || strings.Contains(out, "httpd2") {
		t.Errorf("after the refused apply, kube-public has pods (%v):\n%s", err, out)
	}

	out = mustKubectl(t, l, "apply", "-f", "examples/httpd2-fixed.yml")
	if !strings.Contains(out, "deployment.apps/httpd2 created") {
		t.Errorf("apply httpd2-fixed.yml said %q, want deployment.apps/httpd2 created", out)
	}
	waitForRunningPods(t, l, "kube-public", "run=httpd2", 3)
	out = mustKubectl(t, l, "get", "svc", "-n", "kube-public")
	t.Logf("kubectl-lite get svc -n kube-public:\n%s", out)

	// From a pod in default: the namespace must be named.
	waitForRunningPods(t, l, "default", "app="+probePod, 1)
	expectPageFromProbe(t, l, "httpd2-svc.kube-public:8080")
	out, err = l.kubectl("exec", probePod, "--", "wget", "-qO-", "httpd2-svc:8080")
	if err == nil || strings.Contains(out, itWorks) {
		t.Errorf("wget httpd2-svc:8080 from default answered (%v):\n%s\nwant no such name outside kube-public", err, out)
	}
	if !strings.Contains(out, "bad address") {
		t.Errorf("wget httpd2-svc:8080 from default said %q, want busybox's \"bad address\" (the name does not resolve)", out)
	}
}

// --- step 8 ------------------------------------------------------------------

func stepNodePort(t *testing.T, l *lab) {
	clusterIP := serviceClusterIP(t, l, "default", "httpd-svc")

	// The tutorial edits httpd-svc.yml, adding type: NodePort.
	original, err := os.ReadFile(filepath.Join(l.repo, "examples", "httpd-svc.yml"))
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(original), "spec:\n", "spec:\n  type: NodePort\n", 1)
	path := filepath.Join(t.TempDir(), "httpd-svc.yml")
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	out := mustKubectl(t, l, "apply", "-f", path)
	if !strings.Contains(out, "service/httpd-svc configured") {
		t.Errorf("apply with type: NodePort said %q, want service/httpd-svc configured", out)
	}
	nodePort := checkNodePortService(t, l, clusterIP, 0)
	reachFromOutside(t, l, nodePort)

	// nodePort: 31000, as the tutorial asks for it.
	out = mustKubectl(t, l, "apply", "-f", "examples/httpd-svc-nodeport.yml")
	if !strings.Contains(out, "service/httpd-svc configured") {
		t.Errorf("apply httpd-svc-nodeport.yml said %q, want service/httpd-svc configured", out)
	}
	checkNodePortService(t, l, clusterIP, 31000)
	reachFromOutside(t, l, 31000)
}

var nodePortPorts = regexp.MustCompile(`^8080:(\d+)/TCP$`)

// checkNodePortService checks `get service httpd-svc` and every node's
// KUBE-NODEPORTS rules; want 0 accepts any port in 30000-32767.
func checkNodePortService(t *testing.T, l *lab, clusterIP string, want int) int {
	t.Helper()
	var nodePort int
	eventually(t, stateDeadline, "get service httpd-svc to show a NodePort", func() (bool, string) {
		out, err := l.kubectl("get", "service", "httpd-svc")
		if err != nil {
			return false, fmt.Sprintf("%v\n%s", err, out)
		}
		tb, err := parseTable(out)
		if err != nil {
			return false, out
		}
		row, ok := tb.row("httpd-svc")
		if !ok || row["TYPE"] != "NodePort" {
			return false, out
		}
		m := nodePortPorts.FindStringSubmatch(row["PORT(S)"])
		if m == nil {
			return false, out
		}
		nodePort, _ = strconv.Atoi(m[1])
		if want != 0 && nodePort != want {
			return false, out
		}
		t.Logf("kubectl-lite get service httpd-svc:\n%s", out)
		expectCells(t, "httpd-svc", row, map[string]string{"CLUSTER-IP": clusterIP, "EXTERNAL-IP": "<none>"})
		return true, out
	})
	if nodePort < 30000 || nodePort > 32767 {
		t.Errorf("node port %d is outside 30000-32767", nodePort)
	}

	wantRule := fmt.Sprintf(`-A KUBE-NODEPORTS -p tcp -m comment --comment "default/httpd-svc:" -m tcp --dport %d -j %s`, nodePort, httpdSvcChain)
	wantElement := fmt.Sprintf(`tcp . %d comment "default/httpd-svc:" : goto external-`, nodePort)
	for _, node := range nodeNames {
		if nftablesNodes[node] {
			eventually(t, stateDeadline, node+"'s service-nodeports map to send port "+strconv.Itoa(nodePort)+" to httpd-svc", func() (bool, string) {
				out, err := proxyRules(l, node)
				return err == nil && strings.Contains(out, wantElement), fmt.Sprintf("want: %s\n%v\n%s", wantElement, err, out)
			})
			continue
		}
		eventually(t, stateDeadline, node+"'s KUBE-NODEPORTS to send port "+strconv.Itoa(nodePort)+" to "+httpdSvcChain, func() (bool, string) {
			out, err := l.on(node, "iptables-save", "-t", "nat")
			return err == nil && slices.Contains(strings.Split(out, "\n"), wantRule), "want: " + wantRule + "\n" + kubeLines(out)
		})
	}
	return nodePort
}

// reachFromOutside fetches the page from the outside client on every
// node's IP.
func reachFromOutside(t *testing.T, l *lab, port int) {
	t.Helper()
	for _, node := range nodeNames {
		url := fmt.Sprintf("http://%s:%d/", nodeIPs[node], port)
		eventually(t, trafficDeadline, "the outside client to fetch "+url, func() (bool, string) {
			out, err := l.on("client", "curl", "-sS", "--max-time", "5", url)
			return err == nil && strings.Contains(out, itWorks), fmt.Sprintf("%v\n%s", err, out)
		})
	}
}

// --- step 9 ------------------------------------------------------------------

func stepLoadBalancer(t *testing.T, l *lab) {
	out := mustKubectl(t, l, "apply", "-f", "examples/httpd-svc-loadbalancer.yml")
	if !strings.Contains(out, "service/httpd-lb created") {
		t.Errorf("apply httpd-svc-loadbalancer.yml said %q, want service/httpd-lb created", out)
	}
	var externalIP string
	eventually(t, stateDeadline, "httpd-lb to get an EXTERNAL-IP from the pool "+loadBalancerPool, func() (bool, string) {
		out, err := l.kubectl("get", "service", "httpd-lb")
		if err != nil {
			return false, fmt.Sprintf("%v\n%s", err, out)
		}
		tb, err := parseTable(out)
		if err != nil {
			return false, out
		}
		row, ok := tb.row("httpd-lb")
		if !ok || !inPrefix(row["EXTERNAL-IP"], loadBalancerPool) {
			return false, out
		}
		externalIP = row["EXTERNAL-IP"]
		t.Logf("kubectl-lite get service httpd-lb:\n%s", out)
		expectCells(t, "httpd-lb", row, map[string]string{"TYPE": "LoadBalancer"})
		if !nodePortPorts.MatchString(row["PORT(S)"]) {
			t.Errorf("httpd-lb PORT(S) = %q, want 8080:<node port>/TCP", row["PORT(S)"])
		}
		return true, out
	})
	url := "http://" + externalIP + ":8080/"
	eventually(t, trafficDeadline, "the outside client to fetch "+url, func() (bool, string) {
		out, err := l.on("client", "curl", "-sS", "--max-time", "5", url)
		return err == nil && strings.Contains(out, itWorks), fmt.Sprintf("%v\n%s", err, out)
	})
}

// --- helpers -----------------------------------------------------------------

// serviceClusterIP reads a Service's cluster IP.
func serviceClusterIP(t *testing.T, l *lab, namespace, name string) string {
	t.Helper()
	var svc struct {
		Spec struct {
			ClusterIP string `json:"clusterIP"`
		} `json:"spec"`
	}
	if err := kubectlJSON(l, &svc, "get", "service", name, "-n", namespace); err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP == "" {
		t.Fatalf("service %s/%s has no cluster IP", namespace, name)
	}
	return svc.Spec.ClusterIP
}

func inPrefix(ip, prefix string) bool {
	addr, err := netip.ParseAddr(ip)
	return err == nil && netip.MustParsePrefix(prefix).Contains(addr)
}
