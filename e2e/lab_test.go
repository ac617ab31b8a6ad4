package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// commandTimeout bounds any single command, so a hung one fails its step
// instead of hanging the run.
const commandTimeout = 90 * time.Second

// Lab facts, as scripts/lab.sh builds it.
var (
	nodeNames = []string{"node1", "node2", "node3"}
	nodeIPs   = map[string]string{"node1": "192.168.56.11", "node2": "192.168.56.12", "node3": "192.168.56.13"}
	// nftablesNodes run the service proxy in nftables mode; the others in
	// iptables mode, the tutorial's. A mixed cluster, as one migrating
	// node by node would be: every Service must work through either.
	nftablesNodes = map[string]bool{"node3": true}
)

// proxyModes is KUBELITE_PROXY_MODES for scripts/lab.sh.
func proxyModes() string {
	var modes []string
	for _, node := range nodeNames {
		if nftablesNodes[node] {
			modes = append(modes, node+"=nftables")
		}
	}
	return strings.Join(modes, " ")
}

const (
	podCIDR          = "10.244.0.0/16"
	serviceCIDR      = "10.96.0.0/12"
	loadBalancerPool = "192.168.56.240/28"
	itWorks          = "It works!"
)

// lab is the cluster under test, driven through scripts/lab.sh and
// kubectl-lite.
type lab struct {
	repo        string // the repository's root
	binDir      string // kubelite and kubectl-lite
	builtBinDir string // binDir, when the test built it (removed at the end)
	dir         string // the lab's state folder
	apiPort     string // the forwarder's port on 127.0.0.1
	kubeconfig  string // the lab kubeconfig, through the forwarder

	// machineNetworkBefore is the machine's own network before the lab
	// came up, to show that the lab added nothing to it.
	machineNetworkBefore machineNetwork
}

// env is the environment of every command: the lab's settings, and the
// binaries under test first in PATH.
func (l *lab) env() []string {
	return append(os.Environ(),
		"KUBELITE_LAB_DIR="+l.dir,
		"KUBELITE_LAB_API_PORT="+l.apiPort,
		"KUBELITE_BIN="+filepath.Join(l.binDir, "kubelite"),
		"KUBELITE_PROXY_MODES="+proxyModes(),
		"KUBECONFIG="+l.kubeconfig,
		"PATH="+l.binDir+":"+os.Getenv("PATH")+":/usr/sbin:/sbin",
	)
}

// run runs a command with the lab's environment and returns its combined
// output.
func (l *lab) run(ctx context.Context, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = l.env()
	cmd.Dir = l.repo
	cmd.WaitDelay = 5 * time.Second // output pipes held by a child never block us
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s did not finish in %s: %w", name, timeout, ctx.Err())
	}
	return string(out), err
}

// script runs scripts/lab.sh.
func (l *lab) script(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	return l.run(ctx, timeout, filepath.Join(l.repo, "scripts", "lab.sh"), args...)
}

// kubectl runs kubectl-lite from the machine's own namespace, with the lab
// kubeconfig, as a reader of docs/lab.md does.
func (l *lab) kubectl(args ...string) (string, error) {
	return l.run(context.Background(), commandTimeout, filepath.Join(l.binDir, "kubectl-lite"), args...)
}

// on runs a command on a lab node ("node1".."node3", or "client").
func (l *lab) on(node string, args ...string) (string, error) {
	return l.script(context.Background(), commandTimeout, append([]string{"exec", node}, args...)...)
}

// mustKubectl runs kubectl-lite and fails the test when it fails.
func mustKubectl(t *testing.T, l *lab, args ...string) string {
	t.Helper()
	out, err := l.kubectl(args...)
	if err != nil {
		t.Fatalf("kubectl-lite %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// mustOn runs a command on a node and fails the test when it fails.
func mustOn(t *testing.T, l *lab, node string, args ...string) string {
	t.Helper()
	out, err := l.on(node, args...)
	if err != nil {
		t.Fatalf("on %s: %s: %v\n%s", node, strings.Join(args, " "), err, out)
	}
	return out
}

// kubectlJSON runs `kubectl-lite ... -o json` into v.
func kubectlJSON(l *lab, v any, args ...string) error {
	out, err := l.kubectl(append(args, "-o", "json")...)
	if err != nil {
		return fmt.Errorf("kubectl-lite %s -o json: %w\n%s", strings.Join(args, " "), err, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("kubectl-lite %s -o json: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// eventually calls check every second until it reports done, and fails the
// test if that has not happened within timeout. The deadlines are generous:
// they catch what never happens, they do not measure speed. check returns
// what it saw, for the failure message.
func eventually(t *testing.T, timeout time.Duration, what string, check func() (done bool, seen string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, seen := check()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s; last seen:\n%s", timeout, what, seen)
		}
		time.Sleep(time.Second)
	}
}

// printDiagnostics prints what explains a failure: the lab's state, the
// objects, one node's nat table and the tails of every log.
func (l *lab) printDiagnostics() {
	section := func(title, body string) {
		fmt.Printf("\n===== %s\n%s\n", title, strings.TrimRight(body, "\n"))
	}
	show := func(title string, out string, err error) {
		if err != nil {
			out += "\n(" + err.Error() + ")"
		}
		section(title, out)
	}
	fmt.Println("\n=============== e2e diagnostics ===============")
	out, err := l.script(context.Background(), commandTimeout, "status")
	show("scripts/lab.sh status", out, err)
	for _, args := range [][]string{
		{"get", "nodes", "-o", "wide"},
		{"get", "pods", "-A", "-o", "wide"},
		{"get", "deployments", "-A"},
		{"get", "services", "-A"},
		{"get", "endpoints", "-A"},
		{"get", "events", "-A"},
	} {
		out, err := l.kubectl(args...)
		show("kubectl-lite "+strings.Join(args, " "), out, err)
	}
	for _, node := range nodeNames {
		if nftablesNodes[node] {
			out, err := l.on(node, "nft", "list", "table", "ip", "kubelite")
			show("nft list table ip kubelite on "+node, out, err)
			continue
		}
		out, err := l.on(node, "iptables-save", "-t", "nat")
		show("iptables-save -t nat on "+node, kubeLines(out), err)
	}
	logs, _ := filepath.Glob(filepath.Join(l.dir, "*.log"))
	for _, log := range logs {
		section("last lines of "+log, tail(log, 40))
	}
	fmt.Println("=============== end of diagnostics ===============")
}

// kubeLines keeps the nat table lines that concern Services.
func kubeLines(iptablesSave string) string {
	var kept []string
	for _, line := range strings.Split(iptablesSave, "\n") {
		if strings.Contains(line, "KUBE-") || strings.HasPrefix(line, "*") || strings.HasPrefix(line, "COMMIT") {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}

func tail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// table is kubectl's tabular output: a header row, then one row per object.
type table struct {
	columns []string
	rows    []map[string]string
}

// parseTable reads kubectl's columns by the header's positions, so cells
// with spaces ("1 (5s ago)") and empty ones stay in their column. Columns
// are separated by at least two spaces; a name may hold one ("NOMINATED NODE").
func parseTable(out string) (table, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) == "" {
		return table{}, errors.New("no header")
	}
	header := lines[0]
	var starts []int
	var tb table
	for i := 0; i < len(header); {
		if header[i] == ' ' {
			i++
			continue
		}
		start := i
		for i < len(header) && !(header[i] == ' ' && (i+1 >= len(header) || header[i+1] == ' ')) {
			i++
		}
		starts = append(starts, start)
		tb.columns = append(tb.columns, header[start:i])
	}
	for _, line := range lines[1:] {
		if strings.TrimSpace(line) == "" {
			continue
		}
		row := map[string]string{}
		for c, start := range starts {
			end := len(line)
			if c+1 < len(starts) && starts[c+1] < end {
				end = starts[c+1]
			}
			if start < len(line) {
				row[tb.columns[c]] = strings.TrimSpace(line[start:end])
			}
		}
		tb.rows = append(tb.rows, row)
	}
	return tb, nil
}

// row returns the row whose first column is name.
func (tb table) row(name string) (map[string]string, bool) {
	for _, r := range tb.rows {
		if len(tb.columns) > 0 && r[tb.columns[0]] == name {
			return r, true
		}
	}
	return nil, false
}
