package allocator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Defaults, as kubeadm and k3s set them.
const (
	DefaultServiceCIDR   = "10.96.0.0/12"
	DefaultNodePortRange = "30000-32767"
)

// The two well-known Services whose cluster IPs are fixed by convention.
const (
	// KubernetesService gets the first address of the service CIDR (10.96.0.1).
	KubernetesService = "default/kubernetes"
	// DNSService gets the tenth address of the service CIDR (10.96.0.10).
	DNSService = "kube-system/kube-dns"
)

// Host numbers (offsets from the network address) of the reserved cluster IPs.
const (
	kubernetesHostNumber = 1
	dnsHostNumber        = 10
)

// Bounds of a service CIDR: Kubernetes refuses IPv4 ranges larger than /12,
// and a /31 or /32 has nothing left once the network and broadcast
// addresses are set aside.
const (
	largestServiceCIDRBits  = 12
	smallestServiceCIDRBits = 30
)

// randomTries is how many random picks are tried before scanning. Random
// picks spread concurrent allocators over the range, so they rarely race for
// the same value; the scan still finds the last free values of a nearly
// full range.
const randomTries = 20

// Errors of the allocation layer. The API layer turns them into
// Kubernetes' field errors.
var (
	// ErrFull means no value is left to hand out. The text is Kubernetes' own.
	ErrFull = errors.New("range is full")
	// ErrAllocated means someone else holds the requested value.
	ErrAllocated = errors.New("already allocated")
	// ErrNotInRange means the requested value lies outside the range (the
	// network and broadcast addresses of the service CIDR included).
	ErrNotInRange = errors.New("not in the valid range")
)

// ReservedError means a value kept for one well-known Service was asked for
// by another one.
type ReservedError struct {
	Value string // "10.96.0.10"
	Owner string // "kube-system/kube-dns"
}

func (e *ReservedError) Error() string {
	return fmt.Sprintf("%s is reserved for %s", e.Value, e.Owner)
}

// valueRange is a finite set of values numbered 0..size()-1: what the etcd
// layer needs to know about a range, whatever its values are.
type valueRange interface {
	fmt.Stringer
	size() int
	// valueAt is the canonical text of the i-th value, also its etcd key name.
	valueAt(i int) string
	// indexOf is the inverse of valueAt; false for values outside the range.
	indexOf(value string) (int, bool)
	// reservedFor names the only owner that may hold the i-th value, or "".
	reservedFor(i int) string
	// reserved lists the indexes that have an owner named by reservedFor.
	reserved() []int
}

// pickFree chooses a value of r that is neither taken nor reserved: at
// random up to randomTries times, then by a scan from a random offset.
// intN(n) returns a random number in [0, n).
func pickFree(r valueRange, taken map[int]bool, intN func(n int) int) (int, error) {
	n := r.size()
	free := func(i int) bool { return !taken[i] && r.reservedFor(i) == "" }
	for range randomTries {
		if i := intN(n); free(i) {
			return i, nil
		}
	}
	start := intN(n)
	for k := range n {
		if i := (start + k) % n; free(i) {
			return i, nil
		}
	}
	return 0, ErrFull
}

// IPRange is the set of cluster IPs one service CIDR hands out: every
// address of the CIDR but its network and broadcast addresses.
type IPRange struct {
	cidr  netip.Prefix
	first uint32 // the network address + 1, as a number
	count int
}

// ParseIPRange parses an IPv4 service CIDR such as "10.96.0.0/12".
func ParseIPRange(cidr string) (IPRange, error) {
	prefix, err := netip.ParsePrefix(strings.TrimSpace(cidr))
	if err != nil {
		return IPRange{}, fmt.Errorf("invalid service CIDR %q: want an IPv4 network such as %s", cidr, DefaultServiceCIDR)
	}
	if !prefix.Addr().Is4() {
		return IPRange{}, fmt.Errorf("invalid service CIDR %q: only IPv4 service CIDRs are supported", cidr)
	}
	if prefix.Masked() != prefix {
		return IPRange{}, fmt.Errorf("invalid service CIDR %q: the address has host bits set; did you mean %s?", cidr, prefix.Masked())
	}
	bits := prefix.Bits()
	if bits < largestServiceCIDRBits {
		return IPRange{}, fmt.Errorf("invalid service CIDR %q: too large, the prefix length must be /%d or longer", cidr, largestServiceCIDRBits)
	}
	if bits > smallestServiceCIDRBits {
		return IPRange{}, fmt.Errorf("invalid service CIDR %q: a /%d has no addresses besides its network and broadcast addresses; use /%d or shorter", cidr, bits, smallestServiceCIDRBits)
	}
	network := addrToUint32(prefix.Addr())
	return IPRange{
		cidr:  prefix,
		first: network + 1,
		count: 1<<(32-bits) - 2,
	}, nil
}

// String is the CIDR, e.g. "10.96.0.0/12".
func (r IPRange) String() string { return r.cidr.String() }

// Size is how many addresses the range hands out.
func (r IPRange) Size() int { return r.count }

// Contains reports whether ip may be handed out (the network and broadcast
// addresses may not).
func (r IPRange) Contains(ip netip.Addr) bool {
	_, ok := r.index(ip)
	return ok
}

// ReservedIP returns the cluster IP kept for owner ("default/kubernetes" or
// "kube-system/kube-dns"), if owner has one and the range is large enough.
func (r IPRange) ReservedIP(owner string) (netip.Addr, bool) {
	var host int
	switch owner {
	case KubernetesService:
		host = kubernetesHostNumber
	case DNSService:
		host = dnsHostNumber
	default:
		return netip.Addr{}, false
	}
	if i := host - 1; i < r.count {
		return r.at(i), true
	}
	return netip.Addr{}, false
}

func (r IPRange) at(i int) netip.Addr { return uint32ToAddr(r.first + uint32(i)) }

// index is ip's position in the range. An IPv4-mapped IPv6 address is not
// in the range: every value has exactly one spelling, its etcd key.
func (r IPRange) index(ip netip.Addr) (int, bool) {
	if !ip.Is4() {
		return 0, false
	}
	v := addrToUint32(ip)
	if v < r.first || v-r.first >= uint32(r.count) {
		return 0, false
	}
	return int(v - r.first), true
}

func (r IPRange) size() int            { return r.count }
func (r IPRange) valueAt(i int) string { return r.at(i).String() }

func (r IPRange) indexOf(value string) (int, bool) {
	ip, err := netip.ParseAddr(value)
	if err != nil {
		return 0, false
	}
	return r.index(ip)
}

func (r IPRange) reserved() []int {
	var indexes []int
	for _, host := range []int{kubernetesHostNumber, dnsHostNumber} {
		if i := host - 1; i < r.count {
			indexes = append(indexes, i)
		}
	}
	return indexes
}

func (r IPRange) reservedFor(i int) string {
	switch i + 1 { // host number
	case kubernetesHostNumber:
		return KubernetesService
	case dnsHostNumber:
		return DNSService
	}
	return ""
}

func addrToUint32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func uint32ToAddr(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// PortRange is an inclusive range of node ports, e.g. 30000-32767.
type PortRange struct {
	first, last int
}

// ParsePortRange parses "FIRST-LAST" (or a single port, a range of one).
func ParsePortRange(s string) (PortRange, error) {
	text := strings.TrimSpace(s)
	firstText, lastText, isRange := strings.Cut(text, "-")
	if !isRange {
		lastText = firstText
	}
	first, err1 := strconv.Atoi(strings.TrimSpace(firstText))
	last, err2 := strconv.Atoi(strings.TrimSpace(lastText))
	if err1 != nil || err2 != nil {
		return PortRange{}, fmt.Errorf("invalid node port range %q: want FIRST-LAST, such as %s", s, DefaultNodePortRange)
	}
	if first < 1 || last > 65535 {
		return PortRange{}, fmt.Errorf("invalid node port range %q: ports must be between 1 and 65535", s)
	}
	if first > last {
		return PortRange{}, fmt.Errorf("invalid node port range %q: the first port (%d) is greater than the last (%d)", s, first, last)
	}
	return PortRange{first: first, last: last}, nil
}

// String is "FIRST-LAST", as Kubernetes prints the range in its errors.
func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.first, r.last) }

// Size is how many ports the range holds.
func (r PortRange) Size() int { return r.last - r.first + 1 }

// Contains reports whether port is in the range.
func (r PortRange) Contains(port int) bool { return port >= r.first && port <= r.last }

func (r PortRange) size() int            { return r.Size() }
func (r PortRange) valueAt(i int) string { return strconv.Itoa(r.first + i) }

// No node port is kept for anyone.
func (r PortRange) reservedFor(int) string { return "" }
func (r PortRange) reserved() []int        { return nil }

func (r PortRange) indexOf(value string) (int, bool) {
	port, err := strconv.Atoi(value)
	if err != nil || strconv.Itoa(port) != value || !r.Contains(port) {
		return 0, false
	}
	return port - r.first, true
}
