package proxy

import (
	"context"
	"fmt"
)

// Mode is how the proxier writes Service rules into the kernel.
type Mode string

const (
	// ModeIPTables writes kube-proxy's iptables chains (KUBE-SERVICES,
	// KUBE-SVC-, KUBE-SEP-) with iptables-restore. It is the default,
	// because it is what the tutorial shows.
	ModeIPTables Mode = "iptables"
	// ModeNFTables writes one nftables table, "ip kubelite", whose
	// Service dispatch is a verdict map lookup, so that the data path and
	// the cost of an update do not grow with the number of Services.
	ModeNFTables Mode = "nftables"
)

// ParseMode checks a --proxy-mode value.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeIPTables, ModeNFTables:
		return Mode(s), nil
	case "":
		return ModeIPTables, nil
	}
	return "", fmt.Errorf("unknown proxy mode %q: use %q or %q", s, ModeIPTables, ModeNFTables)
}

// dataplane is one proxy mode. The Proxier decides when to sync and reads
// the desired state; the dataplane turns that state into rules and writes
// them, remembering what it wrote so that the next sync can write only
// what changed.
type dataplane interface {
	// sync makes the kernel implement ports (built from in). A full sync
	// forgets what the dataplane believes the kernel holds, re-creates
	// the base rules (jumps from built-in chains, canaries) and rewrites
	// everything; a partial one writes only what differs from the last
	// successful sync. Either way the result must be the same rules.
	// After an error the next sync is full.
	sync(ctx context.Context, in RuleInput, ports []servicePort, full bool) (syncStats, error)
	// tidy does the deferred part of the last syncs' work, which no packet
	// waits for (deleting chains nothing uses any more). The Proxier calls
	// it when syncs have settled; an error makes the next sync full.
	tidy(ctx context.Context) error
	// intact reports whether the rules written are still in place (the
	// canary check). An error checking counts as intact: better to wait
	// for the periodic resync than to rewrite everything on every hiccup.
	intact(ctx context.Context) bool
	// describe names the mode and backend for logs and metrics:
	// ("iptables", "nft"), ("iptables", "legacy"), ("nftables", "nft").
	describe() (mode Mode, backend string)
}

// syncStats reports what one sync did.
type syncStats struct {
	// full is whether everything was rewritten: asked for, or because the
	// previous sync failed and nothing is known of the kernel.
	full bool
	// written is the number of rules (and, in nftables mode, map and set
	// elements) the sync sent to the kernel; 0 when nothing changed.
	written int
	// total is the number of rules the node has afterwards, by table
	// ("filter", "nat"; "kubelite" in nftables mode).
	total map[string]int
}

// cleanupOtherMode removes the rules the other proxy mode may have left
// from an earlier run, so that packets do not meet both. Failures are
// logged: the other mode's leftovers do not stop this one from working.
func (p *Proxier) cleanupOtherMode(ctx context.Context) {
	mode, _ := p.dataplane.describe()
	var err error
	switch {
	case mode == ModeIPTables && p.host.NFTables != nil:
		err = cleanupNFTables(ctx, p.host.NFTables)
	case mode == ModeNFTables && p.host.IPTables != nil:
		err = cleanupIPTables(ctx, p.host.IPTables)
	}
	if err != nil {
		p.logger.Warn("cannot remove the rules of the other proxy mode", "err", err)
	}
}
