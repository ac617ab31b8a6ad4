package e2e

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLabUpAgain: `scripts/lab.sh up` on a running lab starts nothing new
// and still reports the nodes Ready.
func TestLabUpAgain(t *testing.T) {
	l := theLab
	before, err := l.script(context.Background(), commandTimeout, "status")
	if err != nil {
		t.Fatalf("scripts/lab.sh status: %v\n%s", err, before)
	}
	out, err := l.script(context.Background(), 5*time.Minute, "up")
	if err != nil {
		t.Fatalf("scripts/lab.sh up, a second time: %v\n%s", err, out)
	}
	for _, node := range nodeNames {
		if !strings.Contains(out, node+": already running") {
			t.Errorf("up again did not leave %s's running process alone:\n%s", node, out)
		}
	}
	if !strings.Contains(out, "all 3 nodes are Ready") {
		t.Errorf("up again did not report the nodes Ready:\n%s", out)
	}
	after, err := l.script(context.Background(), commandTimeout, "status")
	if err != nil {
		t.Fatalf("scripts/lab.sh status: %v\n%s", err, after)
	}
	if processLines(before) != processLines(after) {
		t.Errorf("the lab's processes changed:\n%s\n--- became ---\n%s", processLines(before), processLines(after))
	}
}

// processLines keeps status's lines about processes (not the node table,
// whose AGE column moves).
func processLines(status string) string {
	var kept []string
	for _, line := range strings.Split(status, "\n") {
		if strings.Contains(line, "pid ") || strings.Contains(line, "not running") {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}

// machineNetworkCommands show the machine's own network: interfaces,
// addresses, routes, iptables rules and nftables tables.
var machineNetworkCommands = [][]string{
	{"ip", "-o", "link"},
	{"ip", "-o", "addr"},
	{"ip", "route", "show", "table", "all"},
	{"iptables-save"},
	{"nft", "list", "tables"},
}

// machineNetwork is what machineNetworkCommands print, as a set of lines
// per command, without the parts that change by themselves (address
// lifetimes, rule counters, iptables-save's timestamps).
type machineNetwork map[string]map[string]bool

var changingParts = regexp.MustCompile(`(valid_lft|preferred_lft|expires) \S+|\[\d+:\d+\]`)

func readMachineNetwork(l *lab) (machineNetwork, error) {
	state := machineNetwork{}
	for _, cmd := range machineNetworkCommands {
		name := strings.Join(cmd, " ")
		out, err := l.run(context.Background(), commandTimeout, cmd[0], cmd[1:]...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w\n%s", name, err, out)
		}
		lines := map[string]bool{}
		for _, line := range strings.Split(out, "\n") {
			if !strings.HasPrefix(line, "#") {
				lines[changingParts.ReplaceAllString(line, "$1")] = true
			}
		}
		state[name] = lines
	}
	return state, nil
}

// stepMachineNetworkUntouched runs last in TestTutorial, when pods,
// NodePorts and a load-balancer address exist: nothing of it may show in
// the machine's own network namespace, where only the forwarder runs. It
// compares with what TestMain saw before the lab came up.
func stepMachineNetworkUntouched(t *testing.T, l *lab) {
	// What would betray the lab.
	marks := []string{"kl-", "192.168.56.", "10.244.", "10.96.", "KUBE-", "kubelite"}
	now, err := readMachineNetwork(l)
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range machineNetworkCommands {
		name := strings.Join(cmd, " ")
		for _, line := range slices.Sorted(maps.Keys(now[name])) {
			if l.machineNetworkBefore[name][line] {
				continue
			}
			for _, mark := range marks {
				if strings.Contains(line, mark) {
					t.Errorf("since the lab came up, the machine's own network has something of it (%q) in `%s` "+
						"(or of a cluster that `make up` started meanwhile):\n%s", mark, name, line)
					break
				}
			}
		}
	}
}
