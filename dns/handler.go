package dns

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	miekg "github.com/miekg/dns"

	"kubelite/api"
)

// SchemaVersion is the version of the Kubernetes DNS specification that the
// server implements, published as "dns-version.<zone>. TXT".
const SchemaVersion = "1.0.1"

// The Service whose cluster IP is the zone's nameserver, "ns.dns.<zone>.".
const (
	nameserverNamespace = "kube-system"
	nameserverService   = "kube-dns"
)

// SOA timers. Nothing transfers the zone, so only the last one matters: it
// is how long resolvers cache negative answers (RFC 2308), and it is the TTL.
const (
	soaRefresh = 7200
	soaRetry   = 1800
	soaExpire  = 86400
)

// maxUDPSize bounds the EDNS0 buffer size the server honours and advertises:
// a client may ask for up to this much in one UDP answer.
const maxUDPSize = 4096

// maxCNAMEChain bounds how many aliases an answer follows, so that
// ExternalName Services pointing at each other cannot loop.
const maxCNAMEChain = 8

// handler answers DNS queries: names in the cluster zone from the Store,
// PTR queries for cluster IPs from the Store's reverse index, and anything
// else through the upstream resolvers.
type handler struct {
	zone    string // canonical: lower-case, fully qualified
	ttl     uint32
	pods    PodRecords
	serial  uint32 // of the zone's SOA record
	store   Store
	forward *forwarder
	metrics *metrics
	logger  *slog.Logger
}

// newHandler builds a handler; cfg must be complete.
func newHandler(cfg Config, store Store, m *metrics) *handler {
	return &handler{
		zone:    cfg.Zone,
		ttl:     cfg.ttlSeconds(),
		pods:    cfg.Pods,
		serial:  uint32(time.Now().Unix()),
		store:   store,
		forward: newForwarder(cfg, m),
		metrics: m,
		logger:  cfg.Logger,
	}
}

// ServeDNS answers the query r on w. ctx bounds the trips to upstream
// resolvers.
func (h *handler) ServeDNS(ctx context.Context, w miekg.ResponseWriter, r *miekg.Msg) {
	start := time.Now()
	reply, source := h.answer(ctx, r)
	writeReply(w, r, reply)

	var qtype uint16
	if len(r.Question) > 0 {
		qtype = r.Question[0].Qtype
	}
	h.metrics.observe(qtype, reply.Rcode, source, time.Since(start))
}

// answer builds the reply to r and says where it came from.
func (h *handler) answer(ctx context.Context, r *miekg.Msg) (*miekg.Msg, string) {
	if r.Opcode != miekg.OpcodeQuery {
		return errorReply(r, miekg.RcodeNotImplemented), sourceCluster
	}
	if len(r.Question) != 1 {
		return errorReply(r, miekg.RcodeFormatError), sourceCluster
	}
	q := r.Question[0]
	// DNS names are case-insensitive (RFC 4343): look up in lower case,
	// answer with the case the client used.
	name := strings.ToLower(q.Name)

	if h.inZone(name) {
		return h.answerCluster(ctx, r, name), sourceCluster
	}
	if q.Qtype == miekg.TypePTR {
		if ip, ok := parseReverseName(name); ok {
			if !h.store.HasSynced() {
				return errorReply(r, miekg.RcodeServerFailure), sourceCluster
			}
			if owners := h.store.ReverseLookup(ip); len(owners) > 0 {
				return h.answerPTR(r, owners), sourceCluster
			}
			// Not a cluster address: the upstream resolvers may know it
			// (CoreDNS's "fallthrough in-addr.arpa ip6.arpa").
		}
	}
	return h.answerForward(ctx, r), sourceForward
}

// inZone reports whether the lower-case name is the zone or below it.
func (h *handler) inZone(name string) bool {
	return name == h.zone || (strings.HasSuffix(name, h.zone) && name[len(name)-len(h.zone)-1] == '.')
}

// answerCluster answers for a name in the cluster zone, with the
// authoritative server's algorithm (RFC 1034 §4.3.2): a name that does not
// exist gets NXDOMAIN; a name that is an alias gets its CNAME; a name that
// has records of the asked type gets them; an existing name without them
// gets an empty answer (NODATA). Negative answers carry the zone's SOA, whose
// TTL tells resolvers how long they may remember them.
func (h *handler) answerCluster(ctx context.Context, r *miekg.Msg, name string) *miekg.Msg {
	q := r.Question[0]
	m := authoritativeReply(r)
	if q.Qclass != miekg.ClassINET && q.Qclass != miekg.ClassANY {
		m.Rcode = miekg.RcodeRefused // the cluster zone is Internet-class only
		return m
	}

	cn := parseClusterName(name, h.zone)
	if cn.needsStore() && !h.store.HasSynced() {
		// Whatever is missing may only be missing from a cache still
		// loading: say "try again", not "does not exist".
		m.Rcode = miekg.RcodeServerFailure
		return m
	}
	n, exists := h.lookup(cn)
	if !exists {
		return h.negative(m, miekg.RcodeNameError)
	}
	m.Answer, m.Extra = h.records(q, n)
	if len(m.Answer) == 0 {
		return h.negative(m, miekg.RcodeSuccess)
	}
	if n.cname != "" && q.Qtype != miekg.TypeCNAME {
		h.followAlias(ctx, m, n.cname, q, 1)
	}
	return m
}

// negative turns m into NXDOMAIN (rcode NameError) or NODATA (rcode
// Success, no answer), with the SOA in the authority section.
func (h *handler) negative(m *miekg.Msg, rcode int) *miekg.Msg {
	m.Rcode = rcode
	m.Answer = nil
	m.Ns = []miekg.RR{h.soa(h.zone)}
	return m
}

// node is what the zone holds at one name. Owner names are added when
// the records are written, in the case of the query.
type node struct {
	addrs []netip.Addr // A (IPv4) and AAAA (IPv6) records
	cname string       // an alias; a name with a CNAME has no other records
	srv   []srvRecord
	txt   []string
	apex  bool // the zone's own name: SOA and NS records
}

// srvRecord is one SRV record: a port on a target host, and the target's
// addresses, sent along in the additional section to save a round trip.
type srvRecord struct {
	port        uint16
	target      string
	targetAddrs []netip.Addr
}

// lookup finds what the zone holds at a name, and whether the name exists.
func (h *handler) lookup(cn clusterName) (node, bool) {
	switch cn.kind {
	case nameApex:
		return node{apex: true}, true
	case nameDNSVersion:
		return node{txt: []string{SchemaVersion}}, true
	case nameEmptyNonTerminal:
		// "svc.<zone>." and the like: no records, but names below them
		// exist, so they exist too (an NXDOMAIN would tell resolvers that
		// follow RFC 8020 that nothing below exists).
		return node{}, true
	case nameNameserver:
		var n node
		if svc, ok := h.store.Service(nameserverNamespace, nameserverService); ok {
			n.addrs = clusterIPs(svc)
		}
		return n, true
	case nameNamespace:
		return node{}, h.store.HasServices(cn.namespace)
	case namePod:
		return node{addrs: []netip.Addr{cn.podIP}}, h.pods == PodsInsecure
	case nameService, nameEndpoint, nameProtocol, namePortProtocol:
		return h.lookupService(cn)
	}
	return node{}, false // nameImpossible
}

// lookupService finds a Service's names: the Service itself, its
// endpoints, and its SRV names.
func (h *handler) lookupService(cn clusterName) (node, bool) {
	svc, ok := h.store.Service(cn.namespace, cn.service)
	if !ok {
		return node{}, false
	}
	switch {
	case isExternalName(svc):
		// An ExternalName Service is an alias for another name, and only
		// that: nothing exists below it.
		if cn.kind != nameService || svc.Spec.ExternalName == "" {
			return node{}, false
		}
		return node{cname: miekg.CanonicalName(svc.Spec.ExternalName)}, true
	case svc.IsHeadless():
		eps, _ := h.store.Endpoints(cn.namespace, cn.service)
		return h.lookupHeadless(cn, svc, eps)
	default:
		return h.lookupClusterIP(cn, svc)
	}
}

// lookupClusterIP: a Service with a cluster IP has an A (or AAAA) record
// for it, and an SRV record for each named port, pointing at the Service.
func (h *handler) lookupClusterIP(cn clusterName, svc *api.Service) (node, bool) {
	ips := clusterIPs(svc)
	switch cn.kind {
	case nameService:
		return node{addrs: ips}, true
	case nameProtocol:
		for _, p := range svc.Spec.Ports {
			if p.Name != "" && strings.EqualFold(p.Protocol, cn.protocol) {
				return node{}, true
			}
		}
	case namePortProtocol:
		for _, p := range svc.Spec.Ports {
			if strings.EqualFold(p.Name, cn.port) && strings.EqualFold(p.Protocol, cn.protocol) {
				return node{srv: []srvRecord{{port: uint16(p.Port), target: h.serviceName(svc.Namespace, svc.Name), targetAddrs: ips}}}, true
			}
		}
	}
	return node{}, false
}

// lookupHeadless: a headless Service's name has an A record per serving
// endpoint, each endpoint has a name of its own below the Service's, and
// the SRV records point at those. With no endpoints to serve, the Service
// has no names at all.
func (h *handler) lookupHeadless(cn clusterName, svc *api.Service, eps *api.Endpoints) (node, bool) {
	endpoints := servingEndpoints(svc, eps)
	if len(endpoints) == 0 {
		return node{}, false
	}
	var n node
	switch cn.kind {
	case nameService:
		for _, e := range endpoints {
			n.addrs = appendUnique(n.addrs, e.ip)
		}
	case nameEndpoint:
		for _, e := range endpoints {
			if strings.EqualFold(e.hostname, cn.hostname) {
				n.addrs = appendUnique(n.addrs, e.ip)
			}
		}
	case nameProtocol:
		for _, subset := range eps.Subsets {
			for _, p := range subset.Ports {
				if p.Name != "" && strings.EqualFold(p.Protocol, cn.protocol) && len(servingAddresses(svc, subset)) > 0 {
					return node{}, true
				}
			}
		}
	case namePortProtocol:
		for _, subset := range eps.Subsets {
			for _, p := range subset.Ports {
				if !strings.EqualFold(p.Name, cn.port) || !strings.EqualFold(p.Protocol, cn.protocol) {
					continue
				}
				for _, e := range servingAddresses(svc, subset) {
					target := e.hostname + "." + h.serviceName(svc.Namespace, svc.Name)
					n.srv = append(n.srv, srvRecord{port: uint16(p.Port), target: target, targetAddrs: []netip.Addr{e.ip}})
				}
			}
		}
	}
	exists := len(n.addrs) > 0 || len(n.srv) > 0
	return n, exists
}

// records writes the records of node n that answer question q, and the
// additional records that go with them.
func (h *handler) records(q miekg.Question, n node) (answer, extra []miekg.RR) {
	if n.cname != "" {
		// Whatever the type asked, an alias answers with its CNAME
		// (RFC 1034 §3.6.2); the resolver then asks for the target.
		return []miekg.RR{&miekg.CNAME{Hdr: h.header(q.Name, miekg.TypeCNAME), Target: n.cname}}, nil
	}
	switch q.Qtype {
	case miekg.TypeA:
		answer = h.addressRecords(q.Name, n.addrs, false)
	case miekg.TypeAAAA:
		answer = h.addressRecords(q.Name, n.addrs, true)
	case miekg.TypeSRV:
		answer, extra = h.srvRecords(q.Name, n.srv)
	case miekg.TypeTXT:
		answer = h.txtRecords(q.Name, n.txt)
	case miekg.TypeSOA:
		if n.apex {
			answer = []miekg.RR{h.soa(q.Name)}
		}
	case miekg.TypeNS:
		if n.apex {
			answer, extra = h.nsRecords(q.Name)
		}
	case miekg.TypeANY:
		// RFC 8482 lets a server answer ANY with any subset; give what
		// the name holds.
		answer = append(h.addressRecords(q.Name, n.addrs, false), h.addressRecords(q.Name, n.addrs, true)...)
		srv, _ := h.srvRecords(q.Name, n.srv)
		answer = append(answer, srv...)
		answer = append(answer, h.txtRecords(q.Name, n.txt)...)
		if n.apex {
			answer = append(answer, h.soa(q.Name))
		}
	}
	return answer, extra
}

func (h *handler) addressRecords(owner string, addrs []netip.Addr, ipv6 bool) []miekg.RR {
	var out []miekg.RR
	for _, ip := range addrs {
		switch {
		case ip.Is4() && !ipv6:
			out = append(out, &miekg.A{Hdr: h.header(owner, miekg.TypeA), A: ip.AsSlice()})
		case ip.Is6() && ipv6:
			out = append(out, &miekg.AAAA{Hdr: h.header(owner, miekg.TypeAAAA), AAAA: ip.AsSlice()})
		}
	}
	return out
}

// srvRecords writes SRV records (priority 0, the weight shared out evenly,
// as CoreDNS does) and the targets' addresses for the additional section.
func (h *handler) srvRecords(owner string, records []srvRecord) (answer, extra []miekg.RR) {
	if len(records) == 0 {
		return nil, nil
	}
	weight := uint16(max(100/len(records), 1))
	for _, r := range records {
		answer = append(answer, &miekg.SRV{Hdr: h.header(owner, miekg.TypeSRV), Priority: 0, Weight: weight, Port: r.port, Target: r.target})
		extra = append(extra, h.addressRecords(r.target, r.targetAddrs, false)...)
		extra = append(extra, h.addressRecords(r.target, r.targetAddrs, true)...)
	}
	return answer, extra
}

func (h *handler) txtRecords(owner string, txt []string) []miekg.RR {
	if len(txt) == 0 {
		return nil
	}
	return []miekg.RR{&miekg.TXT{Hdr: h.header(owner, miekg.TypeTXT), Txt: txt}}
}

// nsRecords names the zone's nameserver, "ns.dns.<zone>.", with its
// address (the kube-dns Service's cluster IP) when the caches know it.
func (h *handler) nsRecords(owner string) (answer, extra []miekg.RR) {
	nameserver := "ns.dns." + h.zone
	answer = []miekg.RR{&miekg.NS{Hdr: h.header(owner, miekg.TypeNS), Ns: nameserver}}
	if h.store.HasSynced() {
		n, _ := h.lookup(clusterName{kind: nameNameserver})
		extra = append(h.addressRecords(nameserver, n.addrs, false), h.addressRecords(nameserver, n.addrs, true)...)
	}
	return answer, extra
}

// soa is the zone's SOA record, owned by owner (the zone, in some case).
func (h *handler) soa(owner string) *miekg.SOA {
	return &miekg.SOA{
		Hdr:     h.header(owner, miekg.TypeSOA),
		Ns:      "ns.dns." + h.zone,
		Mbox:    "hostmaster." + h.zone,
		Serial:  h.serial,
		Refresh: soaRefresh,
		Retry:   soaRetry,
		Expire:  soaExpire,
		Minttl:  h.ttl,
	}
}

func (h *handler) header(owner string, rrtype uint16) miekg.RR_Header {
	return miekg.RR_Header{Name: owner, Rrtype: rrtype, Class: miekg.ClassINET, Ttl: h.ttl}
}

// serviceName is a Service's DNS name: "<svc>.<ns>.svc.<zone>.".
func (h *handler) serviceName(namespace, service string) string {
	return service + "." + namespace + ".svc." + h.zone
}

// followAlias adds to m what target (the end of a CNAME chain) holds for
// q's type, so that the client gets the whole chain in one answer, as stub
// resolvers expect. Targets in the zone are looked up here; others are
// asked of the upstream resolvers. The reply's rcode becomes that of the
// last name in the chain (RFC 6604).
func (h *handler) followAlias(ctx context.Context, m *miekg.Msg, target string, q miekg.Question, depth int) {
	if depth > maxCNAMEChain {
		return
	}
	if h.inZone(target) {
		n, exists := h.lookup(parseClusterName(target, h.zone))
		if !exists {
			m.Rcode = miekg.RcodeNameError
			m.Ns = []miekg.RR{h.soa(h.zone)}
			return
		}
		answer, extra := h.records(miekg.Question{Name: target, Qtype: q.Qtype, Qclass: q.Qclass}, n)
		m.Answer = append(m.Answer, answer...)
		m.Extra = append(m.Extra, extra...)
		if n.cname != "" {
			h.followAlias(ctx, m, n.cname, q, depth+1)
		}
		return
	}
	resolved, err := h.forward.resolve(ctx, miekg.Question{Name: target, Qtype: q.Qtype, Qclass: miekg.ClassINET}, false, false)
	if err != nil {
		h.logger.Debug("cannot follow an ExternalName alias; answering with the CNAME alone", "target", target, "err", err)
		return
	}
	m.Answer = append(m.Answer, resolved.Answer...)
	m.Rcode = resolved.Rcode
}

// answerPTR answers a reverse query for a cluster address.
func (h *handler) answerPTR(r *miekg.Msg, owners []ReverseName) *miekg.Msg {
	m := authoritativeReply(r)
	owner := r.Question[0].Name
	for _, o := range owners {
		target := h.serviceName(o.Namespace, o.Service)
		if o.Hostname != "" {
			target = o.Hostname + "." + target
		}
		m.Answer = append(m.Answer, &miekg.PTR{Hdr: h.header(owner, miekg.TypePTR), Ptr: target})
	}
	return m
}

// answerForward answers a name outside the zone through the upstream
// resolvers (or their cached answer).
func (h *handler) answerForward(ctx context.Context, r *miekg.Msg) *miekg.Msg {
	q := r.Question[0]
	dnssecOK := false
	if opt := r.IsEdns0(); opt != nil {
		dnssecOK = opt.Do()
	}
	m, err := h.forward.resolve(ctx, q, dnssecOK, r.CheckingDisabled)
	switch {
	case errors.Is(err, errNoUpstreams):
		return errorReply(r, miekg.RcodeRefused)
	case err != nil:
		h.logger.Debug("forwarding failed", "name", q.Name, "type", miekg.TypeToString[q.Qtype], "err", err)
		return errorReply(r, miekg.RcodeServerFailure)
	}
	// The upstream's answer becomes ours: our ID and question, and the
	// client's spelling of the name wherever the upstream echoed it.
	m.Id = r.Id
	m.Question = []miekg.Question{q}
	m.RecursionDesired = r.RecursionDesired
	m.RecursionAvailable = true
	m.Authoritative = false
	for _, section := range [][]miekg.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range section {
			if strings.EqualFold(rr.Header().Name, q.Name) {
				rr.Header().Name = q.Name
			}
		}
	}
	return m
}

// authoritativeReply starts the reply to r for a name the server is the
// authority for.
func authoritativeReply(r *miekg.Msg) *miekg.Msg {
	m := new(miekg.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = true // for names outside the zone, through upstreams
	return m
}

func errorReply(r *miekg.Msg, rcode int) *miekg.Msg {
	m := new(miekg.Msg)
	m.SetRcode(r, rcode)
	m.RecursionAvailable = true
	return m
}

// writeReply sends m, the reply to r. A client that sent an EDNS0 OPT
// record (RFC 6891) gets one back, and may receive UDP answers as large as
// the buffer size it announced; others get at most 512 bytes over UDP
// (RFC 1035). An answer that does not fit is cut down to whole records with
// the TC bit set, and the client asks again over TCP, where the limit is
// 64 KiB.
func writeReply(w miekg.ResponseWriter, r, m *miekg.Msg) {
	size := miekg.MinMsgSize
	removeOPT(m)
	if opt := r.IsEdns0(); opt != nil {
		size = max(size, min(int(opt.UDPSize()), maxUDPSize))
		m.SetEdns0(maxUDPSize, opt.Do())
	}
	if _, overUDP := w.RemoteAddr().(*net.UDPAddr); !overUDP {
		size = miekg.MaxMsgSize // TCP frames carry up to 64 KiB
	}
	m.Truncate(size)
	_ = w.WriteMsg(m) // a client that went away is not our error
}

// appendUnique appends ip unless it is there already.
func appendUnique(ips []netip.Addr, ip netip.Addr) []netip.Addr {
	for _, have := range ips {
		if have == ip {
			return ips
		}
	}
	return append(ips, ip)
}
