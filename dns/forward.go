package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	miekg "github.com/miekg/dns"
)

// upstreamUDPSize is the EDNS0 buffer size offered to upstream resolvers:
// the size the DNS Flag Day 2020 settled on, which avoids IP fragmentation
// on real networks. Larger answers come back truncated and are fetched
// again over TCP.
const upstreamUDPSize = 1232

// forwarder resolves names outside the cluster zone through the upstream
// resolvers, keeping answers in a cache.
type forwarder struct {
	upstreams []string // "ip:port", tried in order
	udp, tcp  *miekg.Client
	cache     *responseCache // nil: no caching
	metrics   *metrics
	logger    *slog.Logger
}

func newForwarder(cfg Config, m *metrics) *forwarder {
	f := &forwarder{
		upstreams: cfg.Upstreams,
		udp:       &miekg.Client{Net: "udp", Timeout: cfg.UpstreamTimeout, UDPSize: upstreamUDPSize},
		tcp:       &miekg.Client{Net: "tcp", Timeout: cfg.UpstreamTimeout},
		metrics:   m,
		logger:    cfg.Logger,
	}
	if cfg.CacheSize > 0 {
		f.cache = newResponseCache(cfg.CacheSize, cfg.CacheMaxTTL)
	}
	return f
}

// resolve answers question q from the cache or an upstream resolver. The
// answer is the caller's own copy, without an EDNS0 OPT record; its
// question is the one sent upstream, not necessarily in q's case.
func (f *forwarder) resolve(ctx context.Context, q miekg.Question, dnssecOK, checkingDisabled bool) (*miekg.Msg, error) {
	if len(f.upstreams) == 0 {
		return nil, errNoUpstreams
	}
	key := cacheKey{name: strings.ToLower(q.Name), qtype: q.Qtype, qclass: q.Qclass, dnssecOK: dnssecOK, checkingDisabled: checkingDisabled}
	if f.cache != nil {
		if msg, ok := f.cache.get(key, time.Now()); ok {
			f.metrics.cacheHits.Inc()
			return msg, nil
		}
		f.metrics.cacheMisses.Inc()
	}

	query := new(miekg.Msg)
	query.SetQuestion(q.Name, q.Qtype)
	query.Question[0].Qclass = q.Qclass
	query.RecursionDesired = true
	query.CheckingDisabled = checkingDisabled
	query.SetEdns0(upstreamUDPSize, dnssecOK)

	// Ask the upstreams in order, like the C library's resolver. A failure
	// answer (SERVFAIL, REFUSED) sends us on to the next, but is kept in
	// case no one does better.
	var (
		fallback *miekg.Msg
		errs     []error
	)
	for _, upstream := range f.upstreams {
		query.Id = miekg.Id()
		answer, err := f.exchange(ctx, query, upstream)
		if err != nil {
			f.metrics.upstreamFailure.WithLabelValues(upstream).Inc()
			errs = append(errs, fmt.Errorf("upstream %s: %w", upstream, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		removeOPT(answer)
		if answer.Rcode == miekg.RcodeServerFailure || answer.Rcode == miekg.RcodeRefused {
			f.metrics.upstreamFailure.WithLabelValues(upstream).Inc()
			fallback = answer
			continue
		}
		if f.cache != nil {
			f.cache.set(key, answer, time.Now())
		}
		return answer, nil
	}
	if fallback != nil {
		return fallback, nil
	}
	return nil, fmt.Errorf("forwarding %s %s: %w", q.Name, miekg.TypeToString[q.Qtype], errors.Join(errs...))
}

// exchange asks one upstream over UDP and, if the answer did not fit in a
// datagram (TC bit), again over TCP.
func (f *forwarder) exchange(ctx context.Context, query *miekg.Msg, upstream string) (*miekg.Msg, error) {
	answer, _, err := f.udp.ExchangeContext(ctx, query, upstream)
	if err != nil {
		return nil, fmt.Errorf("over UDP: %w", err)
	}
	if answer.Truncated {
		f.logger.Debug("upstream answer truncated; retrying over TCP", "upstream", upstream, "name", query.Question[0].Name)
		answer, _, err = f.tcp.ExchangeContext(ctx, query, upstream)
		if err != nil {
			return nil, fmt.Errorf("over TCP: %w", err)
		}
	}
	if len(answer.Question) != 1 || !strings.EqualFold(answer.Question[0].Name, query.Question[0].Name) ||
		answer.Question[0].Qtype != query.Question[0].Qtype {
		return nil, fmt.Errorf("answer is for another question: %v", answer.Question)
	}
	return answer, nil
}

// removeOPT drops the EDNS0 OPT pseudo-record: it describes one hop
// (upstream → us), not the data; the client gets our own.
func removeOPT(msg *miekg.Msg) {
	extra := msg.Extra[:0]
	for _, rr := range msg.Extra {
		if rr.Header().Rrtype != miekg.TypeOPT {
			extra = append(extra, rr)
		}
	}
	msg.Extra = extra
}
