// Package iptablestest provides an in-memory iptables for tests of code that
// takes an iptables.Interface, in the spirit of kube-proxy's
// pkg/util/iptables/testing.
//
// The fake keeps real state: Restore applies its input with
// `iptables-restore --noflush` semantics (declared chains are created or
// flushed, rules appended, -X deletes), refuses what the kernel would refuse
// (a rule in an undeclared chain, a jump to a chain that does not exist,
// deleting a chain that is still referenced), and applies nothing of a
// table whose input fails. Every call is recorded.
package iptablestest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"kubelite/nodeagent/proxy/iptables"
)

// builtinChains are the chains each table starts with, in iptables-save's order.
var builtinChains = map[iptables.Table][]string{
	iptables.TableNAT:    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	iptables.TableFilter: {"INPUT", "FORWARD", "OUTPUT"},
}

// builtinTargets are the -j targets that are not chains.
var builtinTargets = map[string]bool{
	"ACCEPT": true, "DROP": true, "RETURN": true, "REJECT": true, "DNAT": true,
	"SNAT": true, "MASQUERADE": true, "MARK": true, "LOG": true,
}

// Fake is an in-memory iptables. The zero value is not usable; call New.
type Fake struct {
	mu           sync.Mutex
	tables       map[iptables.Table]map[string][]string // table → chain → rules ("-A CHAIN ..." lines)
	calls        []string
	restores     [][]byte
	restoreError error
}

var _ iptables.Interface = (*Fake)(nil)

// New returns a Fake with empty nat and filter tables.
func New() *Fake {
	f := &Fake{tables: make(map[iptables.Table]map[string][]string)}
	for table, chains := range builtinChains {
		f.tables[table] = make(map[string][]string)
		for _, chain := range chains {
			f.tables[table][chain] = nil
		}
	}
	return f
}

func (f *Fake) record(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// EnsureChain implements iptables.Interface.
func (f *Fake) EnsureChain(ctx context.Context, table iptables.Table, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("ensure-chain %s %s", table, chain)
	chains, err := f.table(table)
	if err != nil {
		return err
	}
	if _, ok := chains[chain]; !ok {
		chains[chain] = nil
	}
	return nil
}

// EnsureRule implements iptables.Interface.
func (f *Fake) EnsureRule(ctx context.Context, table iptables.Table, chain string, rule ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("ensure-rule %s %s %s", table, chain, strings.Join(rule, " "))
	chains, err := f.table(table)
	if err != nil {
		return err
	}
	rules, ok := chains[chain]
	if !ok {
		return fmt.Errorf("iptables: chain %s does not exist in table %s", chain, table)
	}
	line := ruleLine(chain, rule)
	if target := jumpTarget(line); target != "" && !builtinTargets[target] {
		if _, ok := chains[target]; !ok {
			return fmt.Errorf("iptables: jump to %s, which does not exist in table %s", target, table)
		}
	}
	if !slices.Contains(rules, line) {
		chains[chain] = append([]string{line}, rules...)
	}
	return nil
}

// ChainExists implements iptables.Interface.
func (f *Fake) ChainExists(ctx context.Context, table iptables.Table, chain string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("chain-exists %s %s", table, chain)
	chains, err := f.table(table)
	if err != nil {
		return false, err
	}
	_, ok := chains[chain]
	return ok, nil
}

// Save implements iptables.Interface, in iptables-nft-save's layout:
// built-in chains first, then the others sorted by name.
func (f *Fake) Save(ctx context.Context, table iptables.Table) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("save %s", table)
	chains, err := f.table(table)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "*%s\n", table)
	order := f.chainOrder(table)
	for _, chain := range order {
		if slices.Contains(builtinChains[table], chain) {
			fmt.Fprintf(&buf, ":%s ACCEPT [0:0]\n", chain)
		} else {
			fmt.Fprintf(&buf, ":%s - [0:0]\n", chain)
		}
	}
	for _, chain := range order {
		for _, rule := range chains[chain] {
			buf.WriteString(rule + "\n")
		}
	}
	buf.WriteString("COMMIT\n")
	return buf.Bytes(), nil
}

// Restore implements iptables.Interface.
func (f *Fake) Restore(ctx context.Context, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("restore")
	f.restores = append(f.restores, bytes.Clone(data))
	if f.restoreError != nil {
		err := f.restoreError
		f.restoreError = nil
		return err
	}
	return f.apply(data)
}

// apply runs restore input. Each table's part is applied to a copy that
// replaces the table at COMMIT, so a failing table changes nothing.
func (f *Fake) apply(data []byte) error {
	var (
		table    iptables.Table
		working  map[string][]string
		declared map[string]bool
	)
	scanner := bufio.NewScanner(bytes.NewReader(data))
	scanner.Buffer(nil, 1<<20)
	for lineNo := 1; scanner.Scan(); lineNo++ {
		line := scanner.Text()
		fail := func(format string, args ...any) error {
			return fmt.Errorf("iptables-restore: line %d failed (%s): %s", lineNo, fmt.Sprintf(format, args...), line)
		}
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			table = iptables.Table(line[1:])
			current, err := f.table(table)
			if err != nil {
				return fail("%v", err)
			}
			working = maps.Clone(current)
			declared = make(map[string]bool)
		case working == nil:
			return fail("no table selected")
		case strings.HasPrefix(line, ":"):
			chain, _, _ := strings.Cut(line[1:], " ")
			if !slices.Contains(builtinChains[table], chain) {
				working[chain] = nil // --noflush: create, or flush an existing chain
			}
			declared[chain] = true
		case strings.HasPrefix(line, "-A "):
			chain, _, _ := strings.Cut(line[len("-A "):], " ")
			if _, ok := working[chain]; !ok {
				return fail("chain %s does not exist", chain)
			}
			if target := jumpTarget(line); target != "" && !builtinTargets[target] {
				if _, ok := working[target]; !ok {
					return fail("jump to %s, which does not exist", target)
				}
			}
			working[chain] = append(slices.Clip(working[chain]), line)
		case strings.HasPrefix(line, "-I "):
			// "-I CHAIN N rule": stored as iptables-save prints it.
			fields := strings.SplitN(line[len("-I "):], " ", 3)
			if len(fields) != 3 {
				return fail("-I needs a chain, a position and a rule")
			}
			chain, rule := fields[0], "-A "+fields[0]+" "+fields[2]
			pos, err := strconv.Atoi(fields[1])
			if _, ok := working[chain]; !ok || err != nil || pos < 1 || pos > len(working[chain])+1 {
				return fail("bad chain or position")
			}
			if target := jumpTarget(rule); target != "" && !builtinTargets[target] {
				if _, ok := working[target]; !ok {
					return fail("jump to %s, which does not exist", target)
				}
			}
			working[chain] = slices.Insert(slices.Clone(working[chain]), pos-1, rule)
		case strings.HasPrefix(line, "-X "):
			chain := strings.TrimSpace(line[len("-X "):])
			if _, ok := working[chain]; !ok {
				return fail("chain %s does not exist", chain)
			}
			if len(working[chain]) > 0 {
				return fail("chain %s is not empty", chain)
			}
			for other, rules := range working {
				for _, rule := range rules {
					if jumpTarget(rule) == chain {
						return fail("chain %s is still referenced from %s", chain, other)
					}
				}
			}
			delete(working, chain)
		case line == "COMMIT":
			f.tables[table] = working
			working = nil
		default:
			return fail("unsupported line")
		}
	}
	if working != nil {
		return fmt.Errorf("iptables-restore: table %s: COMMIT expected", table)
	}
	return scanner.Err()
}

func (f *Fake) table(table iptables.Table) (map[string][]string, error) {
	chains, ok := f.tables[table]
	if !ok {
		return nil, fmt.Errorf("iptables: table %s does not exist", table)
	}
	return chains, nil
}

// chainOrder is built-in chains, then the rest sorted.
func (f *Fake) chainOrder(table iptables.Table) []string {
	builtins := builtinChains[table]
	var others []string
	for chain := range f.tables[table] {
		if !slices.Contains(builtins, chain) {
			others = append(others, chain)
		}
	}
	slices.Sort(others)
	return append(slices.Clone(builtins), others...)
}

// Rules returns the rules of chain ("-A CHAIN ..." lines), nil if it does
// not exist or is empty.
func (f *Fake) Rules(table iptables.Table, chain string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.tables[table][chain])
}

// Chains returns the chains of table, built-in ones first.
func (f *Fake) Chains(table iptables.Table) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.chainOrder(table)
}

// Restores returns the input of every Restore call so far.
func (f *Fake) Restores() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.restores)
}

// Calls returns every call so far, one line each ("restore",
// "ensure-rule nat PREROUTING -m comment ...").
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// FailNextRestore makes the next Restore return err and change nothing.
func (f *Fake) FailNextRestore(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restoreError = err
}

// Wipe removes every rule and non-built-in chain of table, as
// `iptables -t table -F; iptables -t table -X` would.
func (f *Fake) Wipe(table iptables.Table) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tables[table] = make(map[string][]string)
	for _, chain := range builtinChains[table] {
		f.tables[table][chain] = nil
	}
}

// ruleLine renders rule arguments as iptables-save would show them.
func ruleLine(chain string, rule []string) string {
	parts := []string{"-A", chain}
	for _, arg := range rule {
		if strings.ContainsAny(arg, " \t") {
			arg = `"` + arg + `"`
		}
		parts = append(parts, arg)
	}
	return strings.Join(parts, " ")
}

// jumpTarget returns the -j target of a rule line, or "".
func jumpTarget(line string) string {
	_, after, ok := strings.Cut(line, " -j ")
	if !ok {
		return ""
	}
	target, _, _ := strings.Cut(after, " ")
	return target
}
