package proxy

import (
	"bytes"
	"slices"
	"strings"
)

// A sync writes the table with nft transactions: scripts that nft sends to
// the kernel as a whole, so that packets see either the old rules or the
// new ones, never a mix.

// fullScript is the transaction of a full sync: it replaces whatever the
// table holds, or creates it. "add table" first makes the "delete table"
// valid when there is no table yet. Deleting the table, rather than
// flushing it as kube-proxy does, also removes chains and sets that are no
// longer needed without having to list them first; with that listing
// counted, both ways cost the same (10,000 Services: 4.2 s, against 3.8 s
// plus 0.4 s of listing; see nft_bench_test.go). Affinity sets lose their
// entries, so clients may move to another endpoint after a full sync.
func (rs *NFTRuleSet) fullScript() []byte {
	head := "add table " + nftFamily + " " + nftTable + "\ndelete table " + nftFamily + " " + nftTable + "\n"
	var buf bytes.Buffer
	buf.Grow(len(head) + rs.size())
	buf.WriteString(head)
	buf.Write(rs.Bytes())
	return buf.Bytes()
}

// nftTransaction is one nft script, command by command.
type nftTransaction struct {
	commands []nftCommand
	// written counts the rules and elements the commands add or delete.
	written int
}

// nftCommand is one command: verb ("add", "flush", "delete"), object
// ("chain", "set", "map", "element") and the chain or set it acts on.
type nftCommand struct {
	verb, object, name string
	hook               string       // add chain: a base chain's hook line
	rules              []string     // add chain: rules to append
	spec               []string     // add set/map: its definition
	elements           []nftElement // add map (elements to add), delete element (only keys are written)
}

// update returns the transactions that turn the table prev (as the last
// sync wrote it) into rs, writing only what differs. It compares only the
// fragments that are not the very same (buildNFTRules reuses the fragments
// of unchanged ports), so its cost follows the size of the change, not of
// the table.
//
// change makes the new rules take effect: new chains are added, chains
// whose rules changed are flushed and refilled, gone chains are flushed,
// map elements are deleted and added (an element whose verdict or comment
// changed is deleted and added again). Its commands come in the order
// that keeps every reference valid when the kernel checks it:
//
//  1. add the new chains, empty, so that anything below may refer to them;
//  2. add the new sets, and declare again the sets that rules below use;
//  3. flush the chains to rewrite or delete, which drops their references;
//  4. delete, then add again, the (affinity) sets whose definition changed;
//  5. delete and add map elements;
//  6. fill the new and rewritten chains.
//
// cleanup then deletes the chains and sets that are gone, which nothing
// refers to any more. It is a second transaction because of what nft
// 1.0.6 (Debian 12) does before any delete: it loads the names of every
// chain in the kernel, 0.3 s at 40,000 chains, while adding and flushing
// need no such load when written as below. The change is in effect
// without it; the empty chains it deletes are only clutter. (Kernels
// before 6.2 notice only a moment later that a deleted map element no
// longer refers to a chain and refuse the delete; the sync then fails and
// the next, full sync succeeds. kube-proxy waits a second instead.)
//
// ok is false when only a full sync can make the change (a base chain's
// hook or a map's definition changed, which no sync of one program does).
func (rs *NFTRuleSet) update(prev *NFTRuleSet) (change, cleanup *nftTransaction, ok bool) {
	// The fragments to compare: old and new version of each changed,
	// added or removed port, and the base fragments if they differ.
	var oldFrags, newFrags []*nftFragment
	if rs.base != prev.base {
		oldFrags, newFrags = append(oldFrags, prev.base), append(newFrags, rs.base)
	}
	for _, f := range rs.fragments {
		if old := prev.byKey[f.key]; old != f {
			newFrags = append(newFrags, f)
			if old != nil {
				oldFrags = append(oldFrags, old)
			}
		}
	}
	for _, old := range prev.fragments {
		if rs.byKey[old.key] == nil {
			oldFrags = append(oldFrags, old)
		}
	}

	oldChains, newChains := chainsOf(oldFrags), chainsOf(newFrags)
	oldSets, newSets := setsOf(oldFrags), setsOf(newFrags)

	var added, recreated []*nftSet
	for _, s := range newSets.list {
		switch old := oldSets.byName[s.name]; {
		case old == nil:
			added = append(added, s)
		case old.isMap || s.isMap:
			if old.isMap != s.isMap || !slices.Equal(old.spec, s.spec) {
				return nil, nil, false // its elements would have to be written again
			}
		case !slices.Equal(old.spec, s.spec):
			recreated = append(recreated, s) // an affinity set with a new timeout
		}
	}
	var fill, flush []*nftChain // chains to fill with rules, and to flush first
	var addChains []*nftChain   // new chains
	for _, c := range newChains.list {
		switch old := oldChains.byName[c.name]; {
		case old == nil:
			addChains = append(addChains, c)
			fill = append(fill, c)
		case old.hook != c.hook:
			return nil, nil, false
		case !slices.Equal(old.rules, c.rules) || usesAnySet(old.rules, recreated):
			flush = append(flush, c)
			fill = append(fill, c)
		}
	}
	var goneChains []*nftChain
	for _, old := range oldChains.list {
		if newChains.byName[old.name] == nil {
			goneChains = append(goneChains, old)
			flush = append(flush, old)
		}
	}
	var goneSets []*nftSet
	for _, old := range oldSets.list {
		if newSets.byName[old.name] == nil {
			goneSets = append(goneSets, old)
		}
	}

	change = &nftTransaction{}
	// 1.
	for _, c := range addChains {
		change.add(nftCommand{verb: "add", object: "chain", name: c.name, hook: c.hook})
	}
	// 2. nft 1.0.6 knows only the sets a script declares: a rule that
	// uses one it does not know fails, so the script declares again
	// (which changes nothing) every set its rules use.
	declared := make(map[string]bool)
	for _, s := range added {
		change.addSet(s, nil)
		declared[s.name] = true
	}
	for _, s := range recreated {
		declared[s.name] = true // added below
	}
	for _, c := range fill {
		for _, rule := range c.rules {
			for _, name := range nftSetReferences(rule) {
				if declared[name] {
					continue
				}
				s := newSets.byName[name] // an affinity set of the same port, most likely
				if s == nil {
					s = rs.lookupSet(name)
				}
				change.addSet(s, nil)
				declared[name] = true
			}
		}
	}
	// 3.
	for _, c := range flush {
		change.add(nftCommand{verb: "flush", object: "chain", name: c.name})
	}
	// 4.
	for _, s := range recreated {
		change.add(nftCommand{verb: "delete", object: s.kind(), name: s.name})
		change.addSet(s, nil)
	}
	// 5.
	gone, fresh := rs.elementChanges(prev, oldFrags, newFrags)
	for _, set := range setNames(gone) {
		change.add(nftCommand{verb: "delete", object: "element", name: set, elements: gone[set]})
	}
	for _, set := range setNames(fresh) {
		change.addSet(rs.lookupSet(set), fresh[set])
	}
	// 6.
	for _, c := range fill {
		if len(c.rules) > 0 {
			change.add(nftCommand{verb: "add", object: "chain", name: c.name, hook: c.hook, rules: c.rules})
		}
	}

	cleanup = &nftTransaction{}
	for _, c := range goneChains {
		cleanup.add(nftCommand{verb: "delete", object: "chain", name: c.name})
	}
	for _, s := range goneSets {
		cleanup.add(nftCommand{verb: "delete", object: s.kind(), name: s.name})
	}
	return change, cleanup, true
}

// elementChanges compares what the maps hold for every key the changed
// fragments mention: gone are the elements to delete (removed, or about
// to be replaced), fresh the ones to add, by map.
func (rs *NFTRuleSet) elementChanges(prev *NFTRuleSet, oldFrags, newFrags []*nftFragment) (gone, fresh map[string][]nftElement) {
	gone, fresh = make(map[string][]nftElement), make(map[string][]nftElement)
	seen := make(map[nftElementKey]bool)
	for _, f := range append(slices.Clone(oldFrags), newFrags...) {
		for _, e := range f.elements {
			if seen[e.id()] {
				continue
			}
			seen[e.id()] = true
			before, had := prev.elements[e.id()]
			after, has := rs.elements[e.id()]
			if had && has && before == after {
				continue
			}
			if had {
				gone[e.set] = append(gone[e.set], before)
			}
			if has {
				fresh[e.set] = append(fresh[e.set], after)
			}
		}
	}
	return gone, fresh
}

// namedChains and namedSets index the chains or sets of some fragments.
type namedChains struct {
	list   []*nftChain
	byName map[string]*nftChain
}

type namedSets struct {
	list   []*nftSet
	byName map[string]*nftSet
}

func chainsOf(frags []*nftFragment) namedChains {
	n := namedChains{byName: make(map[string]*nftChain)}
	for _, f := range frags {
		for _, c := range f.chains {
			n.list = append(n.list, c)
			n.byName[c.name] = c
		}
	}
	return n
}

func setsOf(frags []*nftFragment) namedSets {
	n := namedSets{byName: make(map[string]*nftSet)}
	for _, f := range frags {
		for _, s := range f.sets {
			n.list = append(n.list, s)
			n.byName[s.name] = s
		}
	}
	return n
}

// lookupSet finds a set or map of the table by name: the maps are in the
// base fragment, an affinity set in the fragment of its port, whose name
// it contains.
func (rs *NFTRuleSet) lookupSet(name string) *nftSet {
	for _, s := range rs.base.sets {
		if s.name == name {
			return s
		}
	}
	for _, f := range rs.fragments {
		for _, s := range f.sets {
			if s.name == name {
				return s
			}
		}
	}
	return nil
}

func setNames(bySet map[string][]nftElement) []string {
	names := make([]string, 0, len(bySet))
	for name := range bySet {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// usesAnySet reports whether any of rules refers to one of sets.
func usesAnySet(rules []string, sets []*nftSet) bool {
	for _, rule := range rules {
		for _, name := range nftSetReferences(rule) {
			if slices.ContainsFunc(sets, func(s *nftSet) bool { return s.name == name }) {
				return true
			}
		}
	}
	return false
}

func (tx *nftTransaction) add(c nftCommand) {
	tx.commands = append(tx.commands, c)
	tx.written += len(c.rules) + len(c.elements)
}

// addSet declares a set (which changes nothing if it exists with that
// definition), adding elements to it.
func (tx *nftTransaction) addSet(s *nftSet, elements []nftElement) {
	tx.add(nftCommand{verb: "add", object: s.kind(), name: s.name, spec: s.spec, elements: elements})
}

// empty reports whether the transaction has nothing to do.
func (tx *nftTransaction) empty() bool { return len(tx.commands) == 0 }

// Bytes renders the transaction as an nft script, one command per line.
// Chains are added and filled, and elements added, with the block forms
// ("add chain … { rule; rule; }", "add map … { type …; elements = { … }; }"),
// for which nft 1.0.6 loads nothing from the kernel but the table names:
//
//	add chain ip kubelite endpoint-…
//	flush chain ip kubelite service-…
//	delete element ip kubelite service-ips { 10.96.0.1 . tcp . 443 }
//	add chain ip kubelite service-… { ip daddr … jump mark-for-masquerade; numgen random mod 2 0 goto endpoint-…; goto endpoint-…; }
func (tx *nftTransaction) Bytes() []byte {
	var buf bytes.Buffer
	for _, c := range tx.commands {
		buf.WriteString(c.verb + " " + c.object + " " + nftFamily + " " + nftTable + " " + c.name)
		var body []string
		switch {
		case c.verb == "delete" && c.object == "element":
			keys := make([]string, len(c.elements))
			for i, e := range c.elements {
				keys[i] = e.key
			}
			buf.WriteString(" { " + strings.Join(keys, ", ") + " }")
		case c.verb == "add" && c.object == "chain":
			if c.hook != "" {
				body = append(body, strings.TrimSuffix(c.hook, ";"))
			}
			body = append(body, c.rules...)
		case c.verb == "add":
			body = append(body, c.spec...)
			if len(c.elements) > 0 {
				var elements bytes.Buffer
				for i, e := range c.elements {
					if i > 0 {
						elements.WriteString(", ")
					}
					e.render(&elements)
				}
				body = append(body, "elements = { "+elements.String()+" }")
			}
		}
		if len(body) > 0 {
			buf.WriteString(" { " + strings.Join(body, "; ") + "; }")
		}
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}
