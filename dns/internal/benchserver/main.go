// Command benchserver serves a made-up cluster with kubelite's DNS server,
// for scripts/bench-dns.sh. From the same made-up cluster it also writes a
// dnsperf query file and an unbound configuration that serves the same
// names, and it compares two servers' answers, so that the benchmark
// compares like with like.
//
//	benchserver serve -listen 127.0.0.1:15353
//	benchserver queries > queries.txt
//	benchserver unbound-conf -listen 127.0.0.1:15354 -dir /tmp/x -threads 1 > unbound.conf
//	benchserver compare -queries queries.txt 127.0.0.1:15353 127.0.0.1:15354
//	benchserver wait 127.0.0.1:15353
//
// It never forwards: names outside the zone are refused.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	miekg "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"kubelite/api"
	"kubelite/dns"
)

const (
	zone      = "cluster.local."
	namespace = "bench"
	ttl       = 5
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchserver:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: benchserver serve|queries|unbound-conf|compare|wait [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	services := fs.Int("services", 1000, "ClusterIP Services in the made-up cluster")
	headless := fs.Int("headless", 100, "headless Services, with 3 endpoints each")
	listen := fs.String("listen", "127.0.0.1:15353", "address to serve on (serve, unbound-conf)")
	dir := fs.String("dir", os.TempDir(), "unbound's working directory (unbound-conf)")
	threads := fs.Int("threads", 1, "unbound's threads (unbound-conf)")
	queries := fs.String("queries", "queries.txt", "dnsperf query file to check (compare)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the server to this file (serve)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	c := newCluster(*services, *headless)

	switch args[0] {
	case "serve":
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		return serve(c, *listen)
	case "queries":
		return c.writeQueries(os.Stdout)
	case "unbound-conf":
		return c.writeUnboundConf(os.Stdout, *listen, *dir, *threads)
	case "compare":
		if fs.NArg() != 2 {
			return errors.New("compare wants two server addresses")
		}
		return compare(*queries, fs.Arg(0), fs.Arg(1))
	case "wait":
		if fs.NArg() != 1 {
			return errors.New("wait wants a server address")
		}
		return waitForServer(fs.Arg(0), 10*time.Second)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// cluster is the made-up cluster: ClusterIP Services svc<i> with a named
// port, and headless Services hdls<i> with three ready endpoints, one of
// them with a hostname.
type cluster struct {
	services  map[string]*api.Service
	endpoints map[string]*api.Endpoints
	reverse   map[netip.Addr][]dns.ReverseName
	names     []string // Service names, in order
}

func newCluster(services, headless int) *cluster {
	c := &cluster{
		services:  make(map[string]*api.Service),
		endpoints: make(map[string]*api.Endpoints),
		reverse:   make(map[netip.Addr][]dns.ReverseName),
	}
	for i := range services {
		name := fmt.Sprintf("svc%d", i)
		ip := fmt.Sprintf("10.96.%d.%d", 1+i/250, 1+i%250)
		svc := &api.Service{Spec: api.ServiceSpec{
			Type: api.ServiceTypeClusterIP, ClusterIP: ip, ClusterIPs: []string{ip},
			Ports: []api.ServicePort{{Name: "http", Port: 80, Protocol: api.ProtocolTCP}},
		}}
		svc.Namespace, svc.Name = namespace, name
		c.services[name] = svc
		c.names = append(c.names, name)
		c.reverse[netip.MustParseAddr(ip)] = []dns.ReverseName{{Namespace: namespace, Service: name}}
	}
	for i := range headless {
		name := fmt.Sprintf("hdls%d", i)
		svc := &api.Service{Spec: api.ServiceSpec{
			Type: api.ServiceTypeClusterIP, ClusterIP: api.ClusterIPNone,
			Ports: []api.ServicePort{{Name: "http", Port: 80, Protocol: api.ProtocolTCP}},
		}}
		svc.Namespace, svc.Name = namespace, name
		eps := &api.Endpoints{Subsets: []api.EndpointSubset{{
			Addresses: []api.EndpointAddress{
				{IP: fmt.Sprintf("10.244.%d.1", i), Hostname: "web-0"},
				{IP: fmt.Sprintf("10.244.%d.2", i)},
				{IP: fmt.Sprintf("10.244.%d.3", i)},
			},
			Ports: []api.EndpointPort{{Name: "http", Port: 80, Protocol: api.ProtocolTCP}},
		}}}
		eps.Namespace, eps.Name = namespace, name
		c.services[name] = svc
		c.endpoints[name] = eps
		c.names = append(c.names, name)
	}
	return c
}

// The cluster is its own dns.Store: everything is loaded from the start.
func (c *cluster) HasSynced() bool { return true }

func (c *cluster) Service(ns, name string) (*api.Service, bool) {
	svc, ok := c.services[name]
	return svc, ok && ns == namespace
}

func (c *cluster) Endpoints(ns, name string) (*api.Endpoints, bool) {
	eps, ok := c.endpoints[name]
	return eps, ok && ns == namespace
}

func (c *cluster) HasServices(ns string) bool { return ns == namespace && len(c.services) > 0 }

func (c *cluster) ReverseLookup(ip netip.Addr) []dns.ReverseName { return c.reverse[ip] }

func serve(c *cluster, listen string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := dns.NewServer(dns.Config{
		Zone:        zone,
		ListenAddrs: []string{listen},
		ResolvConf:  os.DevNull, // no upstreams: the benchmark must not send anything anywhere
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		Registerer:  prometheus.NewRegistry(), // metrics are kept, as in production
	}, c)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// writeQueries writes dnsperf's input: for each Service an A query, for
// some an AAAA (NODATA), an SRV, a PTR and a search-path miss (NXDOMAIN);
// for headless Services A, SRV and an endpoint's own name.
func (c *cluster) writeQueries(out io.Writer) error {
	w := bufio.NewWriter(out)
	for i, name := range c.names {
		svc := c.services[name]
		fqdn := name + "." + namespace + ".svc." + zone
		fmt.Fprintf(w, "%s A\n", fqdn)
		if svc.IsHeadless() {
			fmt.Fprintf(w, "_http._tcp.%s SRV\n", fqdn)
			fmt.Fprintf(w, "web-0.%s A\n", fqdn)
			continue
		}
		switch i % 4 {
		case 0:
			fmt.Fprintf(w, "%s AAAA\n", fqdn)
		case 1:
			fmt.Fprintf(w, "_http._tcp.%s SRV\n", fqdn)
		case 2:
			rev, _ := miekg.ReverseAddr(svc.Spec.ClusterIP)
			fmt.Fprintf(w, "%s PTR\n", rev)
		case 3:
			fmt.Fprintf(w, "%s%s.svc.%s A\n", fqdn, namespace, zone) // ndots:5 search-path junk
		}
	}
	return w.Flush()
}

// writeUnboundConf writes an unbound configuration serving the same
// records from local-data, authoritative-style: "static" zones answer
// NXDOMAIN or NODATA for what they do not hold, and nothing is ever asked
// of the outside world.
func (c *cluster) writeUnboundConf(out io.Writer, listen, dir string, threads int) error {
	addr, err := netip.ParseAddrPort(listen)
	if err != nil {
		return fmt.Errorf("listen address: %w", err)
	}
	w := bufio.NewWriter(out)
	fmt.Fprintf(w, `server:
	interface: %s@%d
	port: %d
	do-daemonize: no
	username: ""
	chroot: ""
	directory: "%s"
	pidfile: ""
	logfile: ""
	use-syslog: no
	verbosity: 0
	num-threads: %d
	do-ip6: no
	access-control: 127.0.0.0/8 allow
	# Never recurse: every name is local, and nothing leaves the machine.
	local-zone: "." refuse
	module-config: "iterator"
	local-zone: "%s" static
	local-data: "%s %d IN SOA ns.dns.%s hostmaster.%s 1 7200 1800 86400 %d"
	local-zone: "10.in-addr.arpa." static
`, addr.Addr(), addr.Port(), addr.Port(), dir, threads, zone, zone, ttl, zone, zone, ttl)
	for _, name := range c.names {
		svc := c.services[name]
		fqdn := name + "." + namespace + ".svc." + zone
		if !svc.IsHeadless() {
			fmt.Fprintf(w, "\tlocal-data: \"%s %d IN A %s\"\n", fqdn, ttl, svc.Spec.ClusterIP)
			fmt.Fprintf(w, "\tlocal-data: \"_http._tcp.%s %d IN SRV 0 100 80 %s\"\n", fqdn, ttl, fqdn)
			fmt.Fprintf(w, "\tlocal-data-ptr: \"%s %d %s\"\n", svc.Spec.ClusterIP, ttl, fqdn)
			continue
		}
		addrs := c.endpoints[name].Subsets[0].Addresses
		for _, a := range addrs {
			host := a.Hostname
			if host == "" {
				host = strings.ReplaceAll(a.IP, ".", "-")
			}
			fmt.Fprintf(w, "\tlocal-data: \"%s %d IN A %s\"\n", fqdn, ttl, a.IP)
			fmt.Fprintf(w, "\tlocal-data: \"%s.%s %d IN A %s\"\n", host, fqdn, ttl, a.IP)
			fmt.Fprintf(w, "\tlocal-data: \"_http._tcp.%s %d IN SRV 0 %d 80 %s.%s\"\n", fqdn, ttl, 100/len(addrs), host, fqdn)
			fmt.Fprintf(w, "\tlocal-data-ptr: \"%s %d %s.%s\"\n", a.IP, ttl, host, fqdn)
		}
	}
	return w.Flush()
}

// compare asks both servers every query of the file and reports the first
// difference in rcode or answer records.
func compare(queryFile, a, b string) error {
	f, err := os.Open(queryFile)
	if err != nil {
		return err
	}
	defer f.Close()
	client := &miekg.Client{Net: "udp", Timeout: 2 * time.Second, UDPSize: 4096}
	ask := func(server, name string, qtype uint16) (string, error) {
		q := new(miekg.Msg).SetQuestion(name, qtype).SetEdns0(4096, false)
		reply, _, err := client.Exchange(q, server)
		if err != nil {
			return "", fmt.Errorf("%s %s to %s: %w", name, miekg.TypeToString[qtype], server, err)
		}
		var records []string
		for _, rr := range reply.Answer {
			records = append(records, rr.String())
		}
		sort.Strings(records)
		return miekg.RcodeToString[reply.Rcode] + "\n" + strings.Join(records, "\n"), nil
	}
	scanner := bufio.NewScanner(f)
	count := 0
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) != 2 {
			continue
		}
		qtype := miekg.StringToType[fields[1]]
		fromA, err := ask(a, fields[0], qtype)
		if err != nil {
			return err
		}
		fromB, err := ask(b, fields[0], qtype)
		if err != nil {
			return err
		}
		if fromA != fromB {
			return fmt.Errorf("%s %s: the servers disagree:\n%s:\n%s\n%s:\n%s", fields[0], fields[1], a, fromA, b, fromB)
		}
		count++
	}
	if err := scanner.Err(); err != nil {
		return err
	}
	fmt.Printf("both servers gave the same %d answers\n", count)
	return nil
}

// waitForServer asks addr for dns-version until it answers.
func waitForServer(addr string, timeout time.Duration) error {
	client := &miekg.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	deadline := time.Now().Add(timeout)
	for {
		q := new(miekg.Msg).SetQuestion("svc0."+namespace+".svc."+zone, miekg.TypeA)
		reply, _, err := client.Exchange(q, addr)
		if err == nil && slices.Contains([]int{miekg.RcodeSuccess, miekg.RcodeNameError}, reply.Rcode) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not answering after %v (last error: %v)", addr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
