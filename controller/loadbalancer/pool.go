package loadbalancer

import (
	"fmt"
	"net/netip"
	"strings"
)

// Pool is a set of IPv4 addresses handed out to LoadBalancer Services: one
// or more CIDRs ("192.168.56.240/28", every address of which is used, as
// MetalLB does) or inclusive ranges ("192.168.56.240-192.168.56.250"),
// separated by commas. Addresses are handed out in the order written.
type Pool struct {
	text   string
	ranges []addrRange
}

type addrRange struct{ first, last netip.Addr }

// ParsePool parses a pool description.
func ParsePool(s string) (*Pool, error) {
	p := &Pool{text: s}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		r, err := parseRange(part)
		if err != nil {
			return nil, fmt.Errorf("load balancer pool %q: %w", s, err)
		}
		p.ranges = append(p.ranges, r)
	}
	if len(p.ranges) == 0 {
		return nil, fmt.Errorf("load balancer pool %q: no addresses", s)
	}
	return p, nil
}

func parseRange(s string) (addrRange, error) {
	if strings.Contains(s, "/") {
		prefix, err := netip.ParsePrefix(s)
		if err != nil {
			return addrRange{}, err
		}
		if !prefix.Addr().Is4() {
			return addrRange{}, fmt.Errorf("%s: only IPv4 is supported", s)
		}
		prefix = prefix.Masked()
		first := prefix.Addr()
		last := addAddr(first, (uint32(1)<<(32-prefix.Bits()))-1)
		return addrRange{first: first, last: last}, nil
	}
	from, to, ok := strings.Cut(s, "-")
	if !ok {
		ip, err := netip.ParseAddr(s) // a single address
		if err != nil {
			return addrRange{}, fmt.Errorf("%q is neither a CIDR, a range a-b nor an address", s)
		}
		from, to = ip.String(), ip.String()
	}
	first, err := netip.ParseAddr(strings.TrimSpace(from))
	if err != nil {
		return addrRange{}, err
	}
	last, err := netip.ParseAddr(strings.TrimSpace(to))
	if err != nil {
		return addrRange{}, err
	}
	if !first.Is4() || !last.Is4() {
		return addrRange{}, fmt.Errorf("%s: only IPv4 is supported", s)
	}
	if last.Less(first) {
		return addrRange{}, fmt.Errorf("%s: the range ends before it starts", s)
	}
	return addrRange{first: first, last: last}, nil
}

func addAddr(a netip.Addr, n uint32) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (p *Pool) String() string { return p.text }

// Contains reports whether ip is in the pool.
func (p *Pool) Contains(ip netip.Addr) bool {
	for _, r := range p.ranges {
		if !ip.Less(r.first) && !r.last.Less(ip) {
			return true
		}
	}
	return false
}

// First returns the first address of the pool for which free is true.
func (p *Pool) First(free func(netip.Addr) bool) (netip.Addr, bool) {
	for _, r := range p.ranges {
		for ip := r.first; ; ip = ip.Next() {
			if free(ip) {
				return ip, true
			}
			if ip == r.last {
				break
			}
		}
	}
	return netip.Addr{}, false
}
