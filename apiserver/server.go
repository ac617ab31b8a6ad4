// Package apiserver serves the Kubernetes REST API over etcd.
//
// A request travels: authentication → path parsing (which resource, which
// namespace, which object, which subresource) → decode (strict, with
// version conversion) → defaulting → strategy (what a write may change) →
// validation → admission hooks (e.g. Service IP allocation) → storage.
package apiserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"kubelite/api"
	"kubelite/apiserver/storage"
)

// MaxBodyBytes is the largest request body accepted (Kubernetes uses 3 MiB).
const MaxBodyBytes = 3 << 20

// Config wires the API server to its storage and its neighbours.
type Config struct {
	Store  *storage.Store
	Scheme *api.Scheme
	// Authenticate wraps the handler; nil serves without authentication (tests only).
	Authenticate func(http.Handler) http.Handler
	// Authorize decides whether the request's user may do verb on resource; nil allows all.
	Authorize func(r *http.Request, verb, resource, namespace string) error
	// Hooks take part in writes of particular resources (keyed by plural).
	Hooks map[string]Hook
	// Subresources served by other parts (pods/log, pods/exec), keyed "pods/log".
	Proxies map[string]http.Handler
	// ExternalAddress is advertised in discovery (serverAddressByClientCIDRs).
	ExternalAddress string
	// Version is reported by /version.
	Version VersionInfo
	// Ready reports whether the server may answer /readyz with ok.
	Ready func() error
	// CACertPEM is served at /cacerts, unauthenticated, for joining nodes
	// to check against the hash in their join token.
	CACertPEM []byte
}

// Hook lets another part take part in the writes of one resource, as
// Kubernetes' registry strategies do for Services (IP and port allocation).
// Each call happens after defaulting and before validation; a hook that
// allocates something must undo it when the returned rollback is called
// (the write failed).
type Hook interface {
	BeforeCreate(ctx context.Context, obj api.Object) (rollback func(), err error)
	BeforeUpdate(ctx context.Context, obj, old api.Object) (rollback func(), err error)
	// AfterUpdate is told that the update was stored (release what old held).
	AfterUpdate(ctx context.Context, obj, old api.Object)
	// AfterDelete is told that obj was removed from storage.
	AfterDelete(ctx context.Context, obj api.Object)
}

// Server is the REST API server.
type Server struct {
	cfg    Config
	scheme *api.Scheme
	store  *storage.Store
	router chi.Router
}

// New builds the server and its routes.
func New(cfg Config) *Server {
	if cfg.Scheme == nil {
		cfg.Scheme = api.NewScheme()
	}
	s := &Server{cfg: cfg, scheme: cfg.Scheme, store: cfg.Store}
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Use(requestLogger)
	if cfg.Authenticate != nil {
		r.Use(cfg.Authenticate)
	}
	r.Get("/healthz", s.health)
	r.Get("/livez", s.health)
	r.Get("/readyz", s.ready)
	r.Get("/version", s.version)
	if len(cfg.CACertPEM) > 0 {
		r.Get("/cacerts", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-pem-file")
			_, _ = w.Write(cfg.CACertPEM)
		})
	}
	r.Get("/api", s.apiVersions)
	r.Get("/apis", s.apiGroups)
	r.Get("/api/{version}", s.resourceList)
	r.Get("/apis/{group}", s.apiGroup)
	r.Get("/apis/{group}/{version}", s.resourceList)
	r.HandleFunc("/api/{version}/*", s.serveResource)
	r.HandleFunc("/apis/{group}/{version}/*", s.serveResource)
	s.router = r
	return s
}

// Handler returns the HTTP handler of the API.
func (s *Server) Handler() http.Handler { return s.router }

// Serve serves the API on ln (a TLS listener in production) until ctx ends, then shuts down
// gracefully (watches are ended).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.router,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api server: %w", err)
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("api server shutdown: %w", err)
		}
		return nil
	}
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok"))
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	s.health(w, r)
}

// requestLogger logs each request at debug level with its duration.
func requestLogger(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		start := time.Now()
		next.ServeHTTP(ww, r)
		slog.Debug("request", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery,
			"status", ww.Status(), "duration", time.Since(start))
	})
}
