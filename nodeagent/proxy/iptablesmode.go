package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"kubelite/nodeagent/proxy/iptables"
)

// iptablesDataplane is kube-proxy's iptables mode: the whole rule set is
// rendered on every sync (BuildRules), but after the first sync only the
// chains whose rules changed are sent to iptables-restore (KEP-3453's
// partial sync). On the nf_tables backend rewriting 100,000 rules takes
// minutes; rewriting the three chains that one endpoint change touches
// takes a fraction of a second whatever the size of the rest.
type iptablesDataplane struct {
	ipt     iptables.Interface
	backend string
	logger  *slog.Logger

	// applied is the rule set the kernel holds since the last successful
	// sync, chain for chain; nil when unknown (at start, after a failure).
	applied *RuleSet
}

func newIPTablesDataplane(ipt iptables.Interface, logger *slog.Logger) *iptablesDataplane {
	backend := "unknown"
	if r, ok := ipt.(interface{ Backend() iptables.Backend }); ok {
		backend = string(r.Backend())
	}
	return &iptablesDataplane{ipt: ipt, backend: backend, logger: logger}
}

func (d *iptablesDataplane) describe() (Mode, string) { return ModeIPTables, d.backend }

// sync implements dataplane.
func (d *iptablesDataplane) sync(ctx context.Context, in RuleInput, ports []servicePort, full bool) (syncStats, error) {
	rules := buildRules(in, ports, d.applied)
	stats := syncStats{total: map[string]int{
		string(iptables.TableFilter): rules.RuleCount(iptables.TableFilter),
		string(iptables.TableNAT):    rules.RuleCount(iptables.TableNAT),
	}}

	if full || d.applied == nil {
		d.applied = nil
		stats.full = true
		written, err := d.fullSync(ctx, rules)
		stats.written = written
		if err != nil {
			return stats, err
		}
		d.applied = rules
		return stats, nil
	}

	changed := rules.changedChains(d.applied)
	obsolete := obsoleteChains(perServiceChains(d.applied), rules)
	if len(changed) == 0 && len(obsolete) == 0 {
		return stats, nil // nothing to write
	}
	for table, chains := range changed {
		for _, chain := range chains {
			stats.written += len(rules.table(table).byName[chain].rules)
		}
	}
	if err := d.ipt.Restore(ctx, rules.restoreInput(changed, obsolete, nil)); err != nil {
		// The restore may have failed half-way (one table applied, the
		// other not): the next sync is full.
		d.applied = nil
		return stats, err
	}
	d.applied = rules
	return stats, nil
}

// fullSync trusts nothing it wrote before. It reads both tables back, once
// each, and compares them with rules chain by chain: every chain whose
// rules differ from what they should be (or that is missing, canaries
// included) is rewritten, and the per-Service chains rules no longer has
// are deleted, whoever made them (an earlier run of the agent, say). The
// result is what rewriting everything would give, but a node whose rules
// are intact (an agent restart, the hourly resync) is checked without
// rewriting 100,000 rules, which takes minutes on the nf_tables backend.
//
// The jumps from the built-in chains are looked up in the same copy, and
// the missing ones inserted by the same restore: no command of its own
// (on the legacy backend each costs as much as the whole table), and no
// jump into our chains before they are filled (on the nf_tables backend,
// every rule added to chains reachable from a hook costs a walk of them).
// It returns the number of rules written.
func (d *iptablesDataplane) fullSync(ctx context.Context, rules *RuleSet) (int, error) {
	saved := make(map[iptables.Table]savedTable)
	existing := make(chainSet)
	for _, table := range []iptables.Table{iptables.TableFilter, iptables.TableNAT} {
		out, err := d.ipt.Save(ctx, table)
		if err != nil {
			return 0, err
		}
		for _, st := range parseSave(out) {
			if st.name == string(table) {
				saved[table] = st
			}
		}
		for _, chain := range saved[table].order {
			if isPerServiceChain(chain) {
				existing[table] = append(existing[table], chain)
			}
		}
	}

	write := make(chainSet)
	written := 0
	for _, t := range []*table{rules.filter, rules.nat} {
		inKernel := saved[t.name]
		declared := make(map[string]bool, len(inKernel.order))
		for _, chain := range inKernel.order {
			declared[chain] = true
		}
		for _, c := range t.chains {
			if !declared[c.name] || !slices.Equal(inKernel.rules[c.name], c.rules) {
				write[t.name] = append(write[t.name], c.name)
				written += len(c.rules)
			}
		}
	}
	inserts := make(map[iptables.Table][]string)
	for _, jump := range baseJumps {
		if !slices.Contains(saved[jump.table].rules[jump.from], jump.saveLine()) {
			inserts[jump.table] = append(inserts[jump.table], jump.insertLine())
			written++
		}
	}
	obsolete := obsoleteChains(existing, rules)
	if len(write) == 0 && len(obsolete) == 0 && len(inserts) == 0 {
		return 0, nil
	}
	if err := d.ipt.Restore(ctx, rules.restoreInput(write, obsolete, inserts)); err != nil {
		return 0, err
	}
	return written, nil
}

// tidy implements dataplane: iptables-restore deletes unused chains in
// the same transaction, cheaply, so nothing waits.
func (d *iptablesDataplane) tidy(context.Context) error { return nil }

// canaryTables are the tables the proxier writes; each holds a CanaryChain.
var canaryTables = []iptables.Table{iptables.TableNAT, iptables.TableFilter}

// intact implements dataplane: every canary chain still exists.
func (d *iptablesDataplane) intact(ctx context.Context) bool {
	for _, table := range canaryTables {
		exists, err := d.ipt.ChainExists(ctx, table, CanaryChain)
		if err != nil {
			d.logger.Warn("cannot check canary chain", "table", table, "err", err)
			continue
		}
		if !exists {
			return false
		}
	}
	return true
}

// baseJump is a rule in a built-in chain that leads into ours. These are
// the only rules the proxier adds one by one, and it never deletes them.
type baseJump struct {
	table   iptables.Table
	from    string // built-in chain
	to      string // our chain
	comment string
	match   []string // before the comment
}

// baseJumps are kube-proxy's, listed so that inserting each at the head of
// its chain leaves them in kube-proxy's order.
var baseJumps = []baseJump{
	{iptables.TableFilter, "INPUT", ExternalServicesChain, "kubernetes externally-visible service portals", []string{"-m", "conntrack", "--ctstate", "NEW"}},
	{iptables.TableFilter, "FORWARD", ExternalServicesChain, "kubernetes externally-visible service portals", []string{"-m", "conntrack", "--ctstate", "NEW"}},
	{iptables.TableFilter, "FORWARD", ServicesChain, "kubernetes service portals", []string{"-m", "conntrack", "--ctstate", "NEW"}},
	{iptables.TableFilter, "OUTPUT", ServicesChain, "kubernetes service portals", []string{"-m", "conntrack", "--ctstate", "NEW"}},
	{iptables.TableFilter, "FORWARD", ForwardChain, "kubernetes forwarding rules", nil},
	{iptables.TableNAT, "OUTPUT", ServicesChain, "kubernetes service portals", nil},
	{iptables.TableNAT, "PREROUTING", ServicesChain, "kubernetes service portals", nil},
	{iptables.TableNAT, "POSTROUTING", PostroutingChain, "kubernetes postrouting rules", nil},
}

// saveLine is the jump as iptables-save prints it.
func (j baseJump) saveLine() string {
	return "-A " + j.from + " " + j.spec()
}

// insertLine is the restore line that puts the jump at the head of its
// chain.
func (j baseJump) insertLine() string {
	return "-I " + j.from + " 1 " + j.spec()
}

func (j baseJump) spec() string {
	args := append(slices.Clone(j.match), comment(j.comment)...)
	return strings.Join(append(args, "-j", j.to), " ")
}

// obsoleteChains are the chains of existing that rules no longer has.
func obsoleteChains(existing map[iptables.Table][]string, rules *RuleSet) map[iptables.Table][]string {
	obsolete := make(map[iptables.Table][]string)
	for table, chains := range existing {
		for _, chain := range chains {
			if _, wanted := rules.table(table).byName[chain]; !wanted {
				obsolete[table] = append(obsolete[table], chain)
			}
		}
		slices.Sort(obsolete[table])
	}
	return obsolete
}

// perServiceChains are the chains of rules the proxier may later delete.
func perServiceChains(rules *RuleSet) map[iptables.Table][]string {
	chains := make(map[iptables.Table][]string)
	for _, table := range []iptables.Table{iptables.TableFilter, iptables.TableNAT} {
		for _, chain := range rules.Chains(table) {
			if isPerServiceChain(chain) {
				chains[table] = append(chains[table], chain)
			}
		}
	}
	return chains
}

// savedChains returns the chain names declared in iptables-save output.
func savedChains(saved []byte) []string {
	var chains []string
	scanner := bufio.NewScanner(bytes.NewReader(saved))
	scanner.Buffer(nil, 1<<20)
	for scanner.Scan() {
		if line := scanner.Text(); strings.HasPrefix(line, ":") {
			name, _, _ := strings.Cut(line[1:], " ")
			chains = append(chains, name)
		}
	}
	return chains
}

// cleanupIPTables removes what an iptables-mode run left on the node, so
// that a node switched to nftables mode does not apply both: our chains
// are flushed, the per-Service chains and the canaries deleted. The
// built-in chains' jumps stay, leading into empty chains; kube-proxy's
// --cleanup goes further, but nothing here depends on it.
func cleanupIPTables(ctx context.Context, ipt iptables.Interface) error {
	var input bytes.Buffer
	for _, table := range []iptables.Table{iptables.TableFilter, iptables.TableNAT} {
		saved, err := ipt.Save(ctx, table)
		if err != nil {
			return err
		}
		var flush, remove []string
		for _, chain := range savedChains(saved) {
			switch {
			case isPerServiceChain(chain) || chain == CanaryChain:
				remove = append(remove, chain)
			case slices.Contains(baseChains, chain):
				flush = append(flush, chain)
			}
		}
		if len(flush) == 0 && len(remove) == 0 {
			continue
		}
		fmt.Fprintf(&input, "*%s\n", table)
		for _, chain := range append(flush, remove...) {
			fmt.Fprintf(&input, ":%s - [0:0]\n", chain)
		}
		for _, chain := range remove {
			fmt.Fprintf(&input, "-X %s\n", chain)
		}
		input.WriteString("COMMIT\n")
	}
	if input.Len() == 0 {
		return nil
	}
	return ipt.Restore(ctx, input.Bytes())
}

// baseChains are the chains of ours that every node has.
var baseChains = []string{ServicesChain, NodePortsChain, PostroutingChain, MarkMasqChain, ExternalServicesChain, ForwardChain}
