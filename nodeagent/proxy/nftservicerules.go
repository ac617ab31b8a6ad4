package proxy

import (
	"bufio"
	"bytes"
	"slices"
	"strings"
)

// NFTServiceRules extracts from `nft list table ip kubelite` output what
// implements one Service: the map elements whose comment names it, then
// every per-Service chain they lead to (external-, service-, local-,
// endpoint-), in the order a packet meets them, then the affinity sets
// those chains use. It returns "" if nothing implements the Service.
//
// It backs `kubelite proxy rules --service ns/name` in nftables mode. The
// result reads like the listing it came from, cut down to one Service:
//
//	table ip kubelite {
//		map service-ips {
//			elements = { 10.102.120.255 . tcp . 8080 comment "default/httpd-svc:" : goto service-P26LWKKU-default/httpd-svc/tcp/ }
//		}
//
//		chain service-P26LWKKU-default/httpd-svc/tcp/ {
//			ip daddr 10.102.120.255 tcp dport 8080 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
//			numgen random mod 2 0 goto endpoint-YEFTAKC7-default/httpd-svc/tcp/__10.244.1.2/80
//			goto endpoint-5HDVRDUW-default/httpd-svc/tcp/__10.244.2.5/80
//		}
//		...
//	}
func NFTServiceRules(listing []byte, namespace, name string) string {
	table := parseNFTListing(listing)
	// Element comments start with the Service port name, "ns/name:port".
	marker := `comment "` + namespace + "/" + name + ":"

	var maps []*nftBlock // cut-down copies, with only this Service's elements
	var queue []string   // per-Service chains to print, in discovery order
	seen := make(map[string]bool)
	follow := func(text string) {
		for _, target := range nftJumpTargets(text) {
			if isNFTPerServiceName(target) && !seen[target] {
				seen[target] = true
				queue = append(queue, target)
			}
		}
	}
	// The dispatch maps, which a packet meets first, then the filter side.
	for _, m := range nftMapsInPacketOrder(table) {
		var elements []string
		for _, e := range m.elements {
			if strings.Contains(e, marker) {
				elements = append(elements, e)
				follow(e)
			}
		}
		if len(elements) > 0 {
			maps = append(maps, &nftBlock{kind: m.kind, name: m.name, elements: elements})
		}
	}
	if len(maps) == 0 {
		return ""
	}

	var chains, sets []*nftBlock
	for i := 0; i < len(queue); i++ {
		c := table.block("chain", queue[i])
		if c == nil {
			continue
		}
		chains = append(chains, c)
		for _, line := range c.lines {
			follow(line)
			for _, set := range nftSetReferences(line) {
				if s := table.block("set", set); s != nil && !slices.Contains(sets, s) {
					sets = append(sets, s)
				}
			}
		}
	}

	// The dispatch maps lead to the chains; the filter maps only refuse.
	var blocks []*nftBlock
	for _, m := range maps {
		if m.name == nftServiceIPsMap || m.name == nftServiceNodePortsMap {
			blocks = append(blocks, m)
		}
	}
	blocks = append(blocks, chains...)
	blocks = append(blocks, sets...)
	for _, m := range maps {
		if m.name != nftServiceIPsMap && m.name != nftServiceNodePortsMap {
			blocks = append(blocks, m)
		}
	}
	var out bytes.Buffer
	out.WriteString("table " + nftFamily + " " + nftTable + " {\n")
	for i, b := range blocks {
		if i > 0 {
			out.WriteByte('\n')
		}
		b.render(&out)
	}
	out.WriteString("}\n")
	return out.String()
}

// nftMapsInPacketOrder lists the maps of a listing, the NAT dispatch maps
// first.
func nftMapsInPacketOrder(t *nftListing) []*nftBlock {
	var first, rest []*nftBlock
	for _, b := range t.blocks {
		switch {
		case b.kind != "map":
		case b.name == nftServiceIPsMap || b.name == nftServiceNodePortsMap:
			first = append(first, b)
		default:
			rest = append(rest, b)
		}
	}
	return append(first, rest...)
}

// isNFTPerServiceName reports whether a chain is one the proxier makes per
// Service port or endpoint.
func isNFTPerServiceName(name string) bool {
	for _, prefix := range []string{nftServiceChainPrefix, nftLocalChainPrefix, nftExternalChainPrefix, nftEndpointChainPrefix} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// nftJumpTargets returns the chains a rule or element sends packets to
// ("goto X", "jump X", also inside a numgen vmap).
func nftJumpTargets(text string) []string {
	var targets []string
	fields := strings.Fields(text)
	for i := 0; i+1 < len(fields); i++ {
		if fields[i] == "goto" || fields[i] == "jump" {
			targets = append(targets, strings.TrimRight(fields[i+1], ",}"))
		}
	}
	return targets
}

// nftSetReferences returns the named sets a rule uses ("@affinity-...").
func nftSetReferences(rule string) []string {
	var sets []string
	for _, field := range strings.Fields(rule) {
		if name, ok := strings.CutPrefix(field, "@"); ok {
			sets = append(sets, name)
		}
	}
	return sets
}

// nftListing is one table of `nft list` output, split into its blocks.
type nftListing struct {
	header []string // lines before the first block: the table's comment
	blocks []*nftBlock
}

// nftBlock is one set, map or chain of a listing.
type nftBlock struct {
	kind     string // "set", "map" or "chain"
	name     string
	lines    []string // the body without the elements: definition lines, or a chain's hook line and rules
	elements []string // elements, one string each: `10.96.0.1 . tcp . 443 comment "..." : goto ...`
}

func (t *nftListing) block(kind, name string) *nftBlock {
	for _, b := range t.blocks {
		if b.name == name && (b.kind == kind || kind == "set" && b.kind == "map") {
			return b
		}
	}
	return nil
}

// parseNFTListing reads the first table of `nft list` output. It relies on
// the layout nft prints: a tab per level, one block per set, map or chain,
// elements after "elements = { ", split over lines after their commas.
func parseNFTListing(data []byte) *nftListing {
	t := &nftListing{}
	var current *nftBlock
	var elements strings.Builder // the text of an elements list, while it spans lines
	inElements := false
	scanner := bufio.NewScanner(bytes.NewReader(data))
	scanner.Buffer(nil, 16<<20)
	for scanner.Scan() {
		line := scanner.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case inElements:
			elements.WriteString(" " + trimmed)
			if strings.HasSuffix(trimmed, "}") {
				current.elements = splitNFTElements(elements.String())
				inElements = false
			}
		case strings.HasPrefix(line, "table "):
		case trimmed == "" || line == "}":
		case current == nil && strings.HasPrefix(line, "\t") && !strings.HasPrefix(line, "\t\t") && strings.HasSuffix(trimmed, "{"):
			kind, rest, _ := strings.Cut(strings.TrimSuffix(trimmed, "{"), " ")
			current = &nftBlock{kind: kind, name: strings.TrimSpace(rest)}
			t.blocks = append(t.blocks, current)
		case current == nil:
			t.header = append(t.header, trimmed)
		case line == "\t}":
			current = nil
		case strings.HasPrefix(trimmed, "elements = { "):
			elements.Reset()
			elements.WriteString(strings.TrimPrefix(trimmed, "elements = "))
			if strings.HasSuffix(trimmed, "}") {
				current.elements = splitNFTElements(elements.String())
			} else {
				inElements = true
			}
		default:
			current.lines = append(current.lines, trimmed)
		}
	}
	return t
}

// splitNFTElements splits "{ a, b : goto x, c comment "x, y" }" into its
// elements, minding quotes and nested braces.
func splitNFTElements(list string) []string {
	list = strings.TrimSpace(list)
	list = strings.TrimSuffix(strings.TrimPrefix(list, "{"), "}")
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(list); i++ {
		switch c := list[i]; {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '{':
			depth++
		case c == '}':
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(list[start:i]))
			start = i + 1
		}
	}
	if last := strings.TrimSpace(list[start:]); last != "" {
		out = append(out, last)
	}
	return out
}

// render writes the block as nft list prints it.
func (b *nftBlock) render(buf *bytes.Buffer) {
	buf.WriteString("\t" + b.kind + " " + b.name + " {\n")
	for _, line := range b.lines {
		buf.WriteString("\t\t" + line + "\n")
	}
	if len(b.elements) > 0 {
		buf.WriteString("\t\telements = { " + strings.Join(b.elements, ",\n\t\t\t     ") + " }\n")
	}
	buf.WriteString("\t}\n")
}
