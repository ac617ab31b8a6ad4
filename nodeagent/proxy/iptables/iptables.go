// Package iptables is the small part of iptables the service proxy needs:
// check that a chain exists, read a table with iptables-save, and write
// many chains at once with iptables-restore, with either backend
// (iptables-nft or iptables-legacy).
//
// The proxier takes the Interface, so its tests use the in-memory fake in
// iptablestest. Runner is the real thing; it can act inside another network
// namespace, which is how tests and the one-machine lab give every "node"
// its own iptables without touching the machine's.
package iptables

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	goiptables "github.com/coreos/go-iptables/iptables"

	"kubelite/nodeagent/proxy/netns"
)

// Table is an iptables table.
type Table string

// The tables the proxier writes.
const (
	TableNAT    Table = "nat"
	TableFilter Table = "filter"
)

// Interface is what the proxier needs from iptables.
type Interface interface {
	// ChainExists reports whether chain exists in table.
	ChainExists(ctx context.Context, table Table, chain string) (bool, error)
	// Save returns `iptables-save -t table`.
	Save(ctx context.Context, table Table) ([]byte, error)
	// Restore applies data with `iptables-restore --noflush`: the chains
	// data declares are created or flushed and refilled, every other chain
	// is left as it is.
	Restore(ctx context.Context, data []byte) error
}

// lockWaitSeconds is how long a command waits for the xtables lock that
// serialises iptables commands on a machine (all namespaces share it).
const lockWaitSeconds = 5

// Backend is the kernel interface behind the iptables commands. Debian's
// `iptables` is iptables-nft, which translates every rule into nf_tables;
// iptables-legacy drives the older x_tables. Both sets of commands exist
// side by side, and rules written with one are invisible to the other, so a
// node's components must agree on one.
type Backend string

const (
	// BackendNFT is iptables-nft (nf_tables). Rewriting a large rule set
	// is slow with it, which is why the proxier's partial syncs matter.
	BackendNFT Backend = "nft"
	// BackendLegacy is iptables-legacy (x_tables): every change replaces
	// a whole table in the kernel, fast to write in bulk but costly for
	// one rule in a large table.
	BackendLegacy Backend = "legacy"
)

// ParseBackend checks an --iptables-backend value; "" and "auto" mean
// detect (Detect).
func ParseBackend(s string) (Backend, error) {
	switch s {
	case "", "auto":
		return "", nil
	case string(BackendNFT), string(BackendLegacy):
		return Backend(s), nil
	}
	return "", fmt.Errorf("unknown iptables backend %q: use %q, %q or \"auto\"", s, BackendLegacy, BackendNFT)
}

// commands are the three programs of one backend.
type commands struct {
	iptables, save, restore string
}

// lookCommands finds the programs of backend: iptables-nft, iptables-nft-save
// and iptables-nft-restore (or -legacy-). A system that has only plain
// `iptables` uses it if its version line names the same backend.
func lookCommands(backend Backend) (commands, error) {
	var c commands
	var err error
	names := [3]string{"iptables-" + string(backend), "iptables-" + string(backend) + "-save", "iptables-" + string(backend) + "-restore"}
	for i, target := range []*string{&c.iptables, &c.save, &c.restore} {
		if *target, err = exec.LookPath(names[i]); err != nil {
			break
		}
	}
	if err == nil {
		return c, nil
	}
	if def, defErr := systemBackend(); defErr == nil && def == backend {
		return plainCommands()
	}
	return commands{}, fmt.Errorf("the %s iptables backend needs %s, %s and %s (Debian: apt-get install iptables): %w", backend, names[0], names[1], names[2], err)
}

func plainCommands() (commands, error) {
	var c commands
	for name, target := range map[string]*string{"iptables": &c.iptables, "iptables-save": &c.save, "iptables-restore": &c.restore} {
		path, err := exec.LookPath(name)
		if err != nil {
			return commands{}, fmt.Errorf("iptables: %w (Debian: apt-get install iptables)", err)
		}
		*target = path
	}
	return c, nil
}

// systemBackend is the backend of the plain `iptables` command, from its
// version line: "iptables v1.8.9 (nf_tables)" or "iptables v1.8.9 (legacy)".
func systemBackend() (Backend, error) {
	out, err := exec.Command("iptables", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("iptables --version: %w", err)
	}
	if strings.Contains(string(out), "nf_tables") {
		return BackendNFT, nil
	}
	return BackendLegacy, nil
}

// Detect chooses the backend for the node in netnsPath ("" for the caller's
// own), as Kubernetes' iptables wrappers do: the backend that already holds
// hintChain in the nat table (rules this node wrote before, with whichever
// backend it used), or else the backend of the system's `iptables`.
//
// It reads with the save commands, which list only the tables that exist:
// asking iptables-legacy about a chain would create the legacy nat table,
// after which every iptables-save on the node warns that legacy tables are
// present.
func Detect(ctx context.Context, netnsPath, hintChain string) (Backend, error) {
	var holders []Backend
	for _, backend := range []Backend{BackendLegacy, BackendNFT} {
		c, err := lookCommands(backend)
		if err != nil {
			continue
		}
		var saved []byte
		err = netns.Do(netnsPath, func() error {
			var err error
			saved, err = exec.CommandContext(ctx, c.save).Output()
			return err
		})
		if err == nil && bytes.Contains(saved, []byte("\n:"+hintChain+" ")) {
			holders = append(holders, backend)
		}
	}
	if len(holders) == 1 {
		return holders[0], nil
	}
	return systemBackend()
}

// Runner runs the iptables commands of one backend, optionally inside a
// network namespace. It is safe for concurrent use.
type Runner struct {
	netnsPath string
	backend   Backend
	ipt       *goiptables.IPTables
	cmds      commands
}

var _ Interface = (*Runner)(nil)

// New returns a Runner for the network namespace bound at netnsPath ("" for
// the caller's own) using the system's `iptables` and its backend. It
// fails if iptables, iptables-save or iptables-restore is missing.
func New(netnsPath string) (*Runner, error) {
	backend, err := systemBackend()
	if err != nil {
		return nil, fmt.Errorf("iptables: %w", err)
	}
	return NewWithBackend(netnsPath, backend)
}

// NewWithBackend returns a Runner that uses backend's commands.
func NewWithBackend(netnsPath string, backend Backend) (*Runner, error) {
	cmds, err := lookCommands(backend)
	if err != nil {
		return nil, fmt.Errorf("iptables: %w", err)
	}
	ipt, err := goiptables.New(goiptables.Path(cmds.iptables), goiptables.Timeout(lockWaitSeconds))
	if err != nil {
		return nil, fmt.Errorf("iptables: %w", err)
	}
	return &Runner{netnsPath: netnsPath, backend: backend, ipt: ipt, cmds: cmds}, nil
}

// Backend is the backend the Runner writes to.
func (r *Runner) Backend() Backend { return r.backend }

// inNamespace runs fn in the runner's network namespace. go-iptables
// starts its processes from the calling thread, so they run there too.
func (r *Runner) inNamespace(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return netns.Do(r.netnsPath, fn)
}

// ChainExists implements Interface.
func (r *Runner) ChainExists(ctx context.Context, table Table, chain string) (bool, error) {
	var exists bool
	err := r.inNamespace(ctx, func() error {
		var err error
		exists, err = r.ipt.ChainExists(string(table), chain)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("checking chain %s in table %s: %w", chain, table, err)
	}
	return exists, nil
}

// Save implements Interface.
func (r *Runner) Save(ctx context.Context, table Table) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	err := r.inNamespace(ctx, func() error {
		cmd := exec.CommandContext(ctx, r.cmds.save, "-t", string(table))
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		return cmd.Run()
	})
	if err != nil {
		return nil, fmt.Errorf("iptables-save -t %s: %w: %s", table, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// Restore implements Interface. It runs one `iptables-restore -w 5
// --noflush`. Counters are not restored (--counters): the proxier's input
// carries none, and rewriting a chain resets its rules' counters anyway.
func (r *Runner) Restore(ctx context.Context, data []byte) error {
	var stderr bytes.Buffer
	err := r.inNamespace(ctx, func() error {
		cmd := exec.CommandContext(ctx, r.cmds.restore, "-w", strconv.Itoa(lockWaitSeconds), "--noflush")
		cmd.Stdin = bytes.NewReader(data)
		cmd.Stderr = &stderr
		return cmd.Run()
	})
	if err != nil {
		return &RestoreError{Err: err, Stderr: strings.Join(strings.Fields(stderr.String()), " "), Line: failedLine(stderr.String(), data)}
	}
	return nil
}

// RestoreError is a failed iptables-restore, with the input line it
// complained about when it named one. iptables-restore applies a table's
// part all or nothing: a table it failed on is as it was.
type RestoreError struct {
	Err    error
	Stderr string
	Line   string // the failing input line, "" if unknown
}

func (e *RestoreError) Error() string {
	msg := fmt.Sprintf("iptables-restore: %v: %s", e.Err, e.Stderr)
	if e.Line != "" {
		msg += fmt.Sprintf(" (input line: %s)", e.Line)
	}
	return msg
}

func (e *RestoreError) Unwrap() error { return e.Err }

// failedLinePattern matches iptables-restore's "line 12 failed" (legacy)
// and "Error occurred at line: 12" (nf_tables, which checks jumps only at
// COMMIT and then names that line).
var failedLinePattern = regexp.MustCompile(`line:? (\d+)`)

// failedLine returns the input line that stderr names, or "".
func failedLine(stderr string, input []byte) string {
	m := failedLinePattern.FindStringSubmatch(stderr)
	if m == nil {
		return ""
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n < 1 {
		return ""
	}
	lines := strings.Split(string(input), "\n")
	if n > len(lines) {
		return ""
	}
	return lines[n-1]
}
