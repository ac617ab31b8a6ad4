package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	miekg "github.com/miekg/dns"
)

// shutdownGrace is how long Run waits for queries in flight when it stops.
const shutdownGrace = 3 * time.Second

// Server is the cluster DNS server: the handler served over UDP and TCP on
// each of the configured addresses.
type Server struct {
	cfg     Config
	handler *handler
	logger  *slog.Logger

	ready chan struct{} // closed once every listener serves
	mu    sync.Mutex
	addrs []netip.AddrPort // bound addresses, once ready
}

// NewServer checks cfg, fills in its defaults (reading the upstream
// resolvers from resolv.conf unless cfg names them) and builds a server
// that answers from store. Nothing listens until Run.
func NewServer(cfg Config, store Store) (*Server, error) {
	cfg, err := cfg.complete()
	if err != nil {
		return nil, fmt.Errorf("cluster DNS: %w", err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("cluster DNS: %w", err)
	}
	return &Server{
		cfg:     cfg,
		handler: newHandler(cfg, store, m),
		logger:  cfg.Logger.With("component", "dns"),
		ready:   make(chan struct{}),
	}, nil
}

// Upstreams returns the resolvers that names outside the zone go to.
func (s *Server) Upstreams() []string { return s.cfg.Upstreams }

// Ready is closed once the server answers on every address.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addrs returns the addresses the server answers on, over both UDP and TCP
// (with the ports chosen for port 0). It is empty before Ready.
func (s *Server) Addrs() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs
}

// Run binds every listen address, over UDP and TCP, and answers queries
// until ctx ends or a listener fails. It returns once every goroutine it
// started has ended; the error is nil after an orderly stop.
func (s *Server) Run(ctx context.Context) error {
	var servers []*miekg.Server
	closeAll := func() {
		for _, srv := range servers {
			if srv.PacketConn != nil {
				srv.PacketConn.Close()
			}
			if srv.Listener != nil {
				srv.Listener.Close()
			}
		}
	}
	serveDNS := miekg.HandlerFunc(func(w miekg.ResponseWriter, r *miekg.Msg) {
		s.handler.ServeDNS(ctx, w, r)
	})
	var bound []netip.AddrPort
	for _, addr := range s.cfg.ListenAddrs {
		packetConn, listener, err := listenUDPAndTCP(ctx, addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("cluster DNS: %w", err)
		}
		servers = append(servers,
			&miekg.Server{Net: "udp", PacketConn: packetConn, Handler: serveDNS, UDPSize: maxUDPSize},
			&miekg.Server{Net: "tcp", Listener: listener, Handler: serveDNS})
		bound = append(bound, packetConn.LocalAddr().(*net.UDPAddr).AddrPort())
	}

	// Each server runs in a goroutine of its own; Run waits for them all.
	var (
		wg      sync.WaitGroup
		failed  = make(chan error, len(servers))
		started = make([]chan struct{}, len(servers))
	)
	for i, srv := range servers {
		started[i] = make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started[i]) }
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.ActivateAndServe(); err != nil {
				failed <- fmt.Errorf("cluster DNS over %s: %w", srv.Net, err)
			}
		}()
	}
	for _, ch := range started {
		select {
		case <-ch:
		case err := <-failed:
			closeAll() // ends the servers that did start
			wg.Wait()
			return err
		}
	}

	s.mu.Lock()
	s.addrs = bound
	s.mu.Unlock()
	close(s.ready)
	s.logger.Info("cluster DNS serving", "addrs", bound, "zone", s.cfg.Zone, "upstreams", s.cfg.Upstreams)

	var err error
	select {
	case <-ctx.Done():
	case err = <-failed:
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	for _, srv := range servers {
		_ = srv.ShutdownContext(shutdownCtx) // fails only for a server that already stopped
	}
	wg.Wait()
	s.logger.Info("cluster DNS stopped")
	return err
}

// listenUDPAndTCP binds addr over UDP and TCP on the same port. With port
// 0, the kernel picks a free UDP port; if that port is taken for TCP, it
// tries again with another.
func listenUDPAndTCP(ctx context.Context, addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen address %q: %w", addr, err)
	}
	var lc net.ListenConfig
	const attempts = 10
	for range attempts {
		packetConn, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("listening on %s/udp: %w", addr, err)
		}
		udpPort := packetConn.LocalAddr().(*net.UDPAddr).Port
		tcpAddr := net.JoinHostPort(host, fmt.Sprint(udpPort))
		listener, err := lc.Listen(ctx, "tcp", tcpAddr)
		if err == nil {
			return packetConn, listener, nil
		}
		packetConn.Close()
		if port != "0" || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("listening on %s/tcp: %w", tcpAddr, err)
		}
	}
	return nil, nil, fmt.Errorf("listening on %s: no port free for both UDP and TCP after %d attempts", addr, attempts)
}
