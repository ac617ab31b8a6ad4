package proxy

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"

	"kubelite/nodeagent/proxy/nftables"
)

// nftablesDataplane is the nftables proxy mode: it keeps the table
// "ip kubelite" equal to buildNFTRules of the current state.
//
// It remembers the table it last wrote. A partial sync compares the new
// table with that memory and sends only the difference, so that one
// endpoint change costs a handful of commands however many Services the
// node has; a full sync replaces the whole table in one transaction.
type nftablesDataplane struct {
	nft    nftables.Interface
	logger *slog.Logger

	// applied is the table as the last successful sync wrote it; nil when
	// unknown (before the first sync, after a failure), which makes the
	// next sync full. Only the goroutine calling sync and tidy uses it.
	applied *NFTRuleSet
	// stale are the chains and sets that partial syncs flushed and no
	// longer use, waiting for tidy to delete them.
	stale map[nftObject]nftCommand
}

// maxStaleObjects is how many unused chains and sets may wait for tidy
// before a sync deletes them itself.
const maxStaleObjects = 1000

// nftObject names a chain, set or map of the table.
type nftObject struct{ kind, name string }

var _ dataplane = (*nftablesDataplane)(nil)

func newNFTablesDataplane(nft nftables.Interface, logger *slog.Logger) *nftablesDataplane {
	if logger == nil {
		logger = slog.Default()
	}
	return &nftablesDataplane{nft: nft, logger: logger, stale: make(map[nftObject]nftCommand)}
}

// sync implements dataplane.
func (d *nftablesDataplane) sync(ctx context.Context, in RuleInput, ports []servicePort, full bool) (syncStats, error) {
	// A partial sync reuses what the last one built for unchanged ports,
	// and writes the difference (nothing at all when nothing changed). A
	// full one builds and writes everything, as does a partial one without
	// a last sync to compare with.
	prev := d.applied
	if full {
		prev = nil
	}
	rules := buildNFTRules(in, ports, prev)
	var change, cleanup *nftTransaction
	partial := false
	if prev != nil {
		change, cleanup, partial = rules.update(prev)
	}

	var written int
	var err error
	if partial {
		written = change.written
		if !change.empty() {
			err = d.nft.Apply(ctx, change.Bytes())
		}
	} else {
		written = rules.RuleCount() + rules.ElementCount()
		err = d.nft.Apply(ctx, rules.fullScript())
	}
	if err != nil {
		// Whatever the kernel holds now, the next sync starts from
		// scratch.
		d.applied = nil
		return syncStats{}, fmt.Errorf("writing table %s %s: %w", nftFamily, nftTable, err)
	}
	d.applied = rules
	if !partial {
		clear(d.stale) // the table was replaced whole
	} else {
		// A chain or set added back (an endpoint that returned) is in use
		// again; what the change stopped using waits for tidy.
		for _, c := range change.commands {
			if c.verb == "add" {
				delete(d.stale, nftObject{c.object, c.name})
			}
		}
		for _, c := range cleanup.commands {
			d.stale[nftObject{c.object, c.name}] = c
		}
		// Changes that never pause for tidyDelay must not pile up clutter.
		if len(d.stale) >= maxStaleObjects {
			if err := d.tidy(ctx); err != nil {
				return syncStats{}, err
			}
		}
	}
	return syncStats{full: !partial, written: written, total: map[string]int{nftTable: rules.RuleCount()}}, nil
}

// tidy implements dataplane: it deletes the chains and sets that partial
// syncs flushed and left unused. They wait because of what nft 1.0.6
// (Debian 12) does before any delete: it loads the names of every chain
// in the kernel, 0.3 s at 40,000 chains, where the change itself took a
// few dozen milliseconds. Empty and unreferenced, they only take memory
// meanwhile; deleting them a second later, together, is what kube-proxy's
// nftables mode does too.
func (d *nftablesDataplane) tidy(ctx context.Context) error {
	if len(d.stale) == 0 {
		return nil
	}
	tx := &nftTransaction{}
	// Chains first: a flushed affinity chain no longer uses its set, but
	// delete them in an order that never depends on that.
	for _, kind := range []string{"chain", "set", "map"} {
		var names []string
		for object := range d.stale {
			if object.kind == kind {
				names = append(names, object.name)
			}
		}
		slices.Sort(names)
		for _, name := range names {
			tx.add(d.stale[nftObject{kind, name}])
		}
	}
	clear(d.stale)
	if err := d.nft.Apply(ctx, tx.Bytes()); err != nil {
		d.applied = nil // the next sync replaces the table, leftovers and all
		return fmt.Errorf("deleting unused chains of table %s %s: %w", nftFamily, nftTable, err)
	}
	return nil
}

// intact implements dataplane. It lists one small chain of the table
// instead of the table itself, which at 10,000 Services is 10 MB of text
// and seconds of work: if the table was deleted (`nft flush ruleset`, as a
// firewall reload does) or flushed, the chain is gone or empty. Even so,
// nft 1.0.6 reads the names of all chains first: 0.12-0.18 s at 10,000
// Services.
func (d *nftablesDataplane) intact(ctx context.Context) bool {
	out, err := d.nft.List(ctx, "chain", nftFamily, nftTable, nftMarkMasqChain)
	if nftables.IsNotFound(err) {
		return false
	}
	if err != nil {
		d.logger.Warn("cannot check the nftables table", "err", err)
		return true
	}
	return bytes.Contains(out, []byte("meta mark set"))
}

// describe implements dataplane.
func (d *nftablesDataplane) describe() (Mode, string) {
	return ModeNFTables, "nft"
}

// cleanupNFTables deletes the table "ip kubelite" if it exists, so that the
// rules of an earlier run in nftables mode do not linger next to the
// iptables mode's (both would DNAT the same packets). "add table" before
// "delete table" makes the transaction valid whether or not the table
// exists; its net effect is that it does not.
func cleanupNFTables(ctx context.Context, nft nftables.Interface) error {
	script := "add table " + nftFamily + " " + nftTable + "\ndelete table " + nftFamily + " " + nftTable + "\n"
	if err := nft.Apply(ctx, []byte(script)); err != nil {
		return fmt.Errorf("deleting table %s %s: %w", nftFamily, nftTable, err)
	}
	return nil
}
