package dns

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// ResolvConf returns the /etc/resolv.conf of a Pod in namespace that uses
// the cluster DNS server at nameserver, for the cluster zone (e.g.
// "cluster.local"):
//
//	nameserver 10.96.0.10
//	search default.svc.cluster.local svc.cluster.local cluster.local
//	options ndots:5
//
// The search path lets a Pod use "web" for a Service in its own namespace
// and "web.shop" for one in another. "ndots:5" makes the resolver try the
// search path first for any name with fewer than five dots, so that
// "web.shop.svc" works too; names outside the cluster pay with a few quick
// NXDOMAIN answers from the cluster zone before they are tried as given.
func ResolvConf(nameserver, namespace, zone string) []byte {
	zone = trimDot(zone)
	var b bytes.Buffer
	fmt.Fprintf(&b, "nameserver %s\n", nameserver)
	fmt.Fprintf(&b, "search %s.svc.%s svc.%s %s\n", namespace, zone, zone, zone)
	b.WriteString("options ndots:5\n")
	return b.Bytes()
}

// readNameservers returns the addresses of the "nameserver" lines of a
// resolv.conf file, in order.
func readNameservers(path string) ([]netip.Addr, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading upstream resolvers: %w", err)
	}
	defer f.Close()
	var out []netip.Addr
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue // comments ("#", ";"), search, options, …
		}
		if ip, err := netip.ParseAddr(fields[1]); err == nil {
			out = append(out, ip) // like the C library, skip what does not parse
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return out, nil
}
