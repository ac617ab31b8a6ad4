// Package kubeletserver is the node agent's own HTTPS API, the kubelet's
// API in kubelite: the API server reaches a Pod's containers through it.
//
//	GET /containerLogs/{namespace}/{pod}/{container}   ?follow ?tailLines ?previous ?timestamps
//	GET /exec/{namespace}/{pod}/{container}            ?command=...&stdin&stdout&stderr&tty
//	GET /attach/{namespace}/{pod}/{container}          ?stdin&stdout&stderr&tty
//
// Logs are the content lines of the container's CRI log file; exec and
// attach speak Kubernetes' remote command protocol over a WebSocket (see
// package remotecommand).
//
// An open exec port is a root shell for anyone on the network, so every
// request must carry "Authorization: Bearer <token>" with the token the
// agent was configured with — the cluster's node token, which the API
// server also holds — and the API is served only over TLS, with a key and
// a self-signed certificate the agent creates in its data directory on
// first start. The agent publishes that certificate on its Node
// (ServingCertAnnotation) and the API server pins it: no CA is involved.
package kubeletserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"kubelite/api"
	"kubelite/nodeagent/runtime"
)

// DefaultPort is the kubelet's port, the default of Config.Addr.
const DefaultPort = 10250

// ServingCertAnnotation is the Node annotation in which the agent
// publishes its serving certificate (PEM) for the API server to pin.
const ServingCertAnnotation = "kubelite.io/kubelet-serving-cert"

// ContainerLocator finds the container behind a Pod's container name; the
// node agent implements it. An error means the agent has no such container
// (yet): it is answered 404 with the error's message.
type ContainerLocator interface {
	ContainerFor(podNamespace, podName, container string) (id, logPath string, err error)
}

// PreviousLogLocator is implemented by a ContainerLocator that keeps the
// log of a container's previous instance (the one before its last
// restart), which previous=true asks for. Without it, previous=true is
// answered as Kubernetes answers when there is no previous container.
type PreviousLogLocator interface {
	PreviousLogFor(podNamespace, podName, container string) (logPath string, err error)
}

// StdinOnceLocator is implemented by a ContainerLocator that knows a
// container's stdinOnce (from the Pod spec): when it is true, the
// container's stdin is closed once the first attached client's stdin ends,
// so that `kubectl run -i --rm ... < script` ends. Without it, attaching
// never closes a container's stdin.
type StdinOnceLocator interface {
	StdinOnceFor(podNamespace, podName, container string) bool
}

// ExecRuntime is what the API needs of the container runtime;
// *runtime.Runtime implements it.
type ExecRuntime interface {
	// Exec runs a command in a running container and returns its exit code.
	Exec(ctx context.Context, id string, cfg runtime.ExecConfig) (int, error)
	// Attach streams a running container's output, and input to it, until
	// it exits.
	Attach(ctx context.Context, id string, cfg runtime.AttachConfig) error
	// Wait blocks until the container is not running, its output written
	// to its log file.
	Wait(ctx context.Context, id string) (runtime.ContainerStatus, error)
}

var _ ExecRuntime = (*runtime.Runtime)(nil)

// Config configures the API.
type Config struct {
	// Addr is where Run listens; default ":10250".
	Addr string
	// Token is the bearer token every request must carry: the cluster's
	// node token. Required.
	Token string
	// CertDir holds the serving key and certificate (created on first
	// start), e.g. <data-dir>/pki. Required.
	CertDir string
	// Hosts are the names and addresses the certificate is issued for (the
	// node's name and IP). The API server pins the certificate itself, so
	// they matter only to other clients.
	Hosts []string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Server is the node agent's HTTPS API.
type Server struct {
	addr      string
	tokenHash [sha256.Size]byte
	cert      *servingCert
	locator   ContainerLocator
	runtime   ExecRuntime
	log       *slog.Logger
	handler   http.Handler

	// requests counts the handlers running, hijacked streams included,
	// which http.Server.Shutdown does not wait for.
	requests sync.WaitGroup
}

// New prepares the API: it loads or creates the serving certificate in
// cfg.CertDir. It does not listen yet; see Run and Serve.
func New(cfg Config, locator ContainerLocator, rt ExecRuntime) (*Server, error) {
	if cfg.Token == "" {
		return nil, errors.New("kubelet server: a token is required: without one, anyone who reaches the port could exec into every container")
	}
	if locator == nil || rt == nil {
		return nil, errors.New("kubelet server: a container locator and a runtime are required")
	}
	if cfg.Addr == "" {
		cfg.Addr = fmt.Sprintf(":%d", DefaultPort)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger.With("component", "kubelet-server")
	cert, err := ensureServingCert(cfg.CertDir, cfg.Hosts, time.Now(), log)
	if err != nil {
		return nil, fmt.Errorf("kubelet server: %w", err)
	}
	s := &Server{
		addr:      cfg.Addr,
		tokenHash: sha256.Sum256([]byte(cfg.Token)),
		cert:      cert,
		locator:   locator,
		runtime:   rt,
		log:       log,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.serveContainerLogs)
	mux.HandleFunc("/exec/{namespace}/{pod}/{container}", s.serveExec)
	mux.HandleFunc("/attach/{namespace}/{pod}/{container}", s.serveAttach)
	s.handler = s.counted(s.authenticated(mux))
	return s, nil
}

// CertPEM is the serving certificate, for the agent to publish on its Node
// (ServingCertAnnotation) and the API server to pin.
func (s *Server) CertPEM() []byte { return append([]byte(nil), s.cert.certPEM...) }

// Run listens on Config.Addr and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("kubelet server: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves the API over TLS on ln until ctx ends, then ends every
// request — log streams, exec and attach sessions — and returns once they
// have returned.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	tlsConfig := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{s.cert.keyPair},
		// HTTP/1.1 only: exec and attach upgrade the connection to a
		// WebSocket, which HTTP/2 cannot hijack.
		NextProtos: []string{"http/1.1"},
	}
	// Every request's context ends with this one: that is what ends the
	// streams, hijacked ones included, which Shutdown does not wait for.
	ctx, stopRequests := context.WithCancel(ctx)
	defer stopRequests()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.log.Info("serving logs, exec and attach", "address", ln.Addr().String())
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(tls.NewListener(ln, tlsConfig)) }()

	var err error
	select {
	case err = <-serveErr:
		err = fmt.Errorf("kubelet server: %w", err)
		srv.Close()
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if srv.Shutdown(shutdownCtx) != nil {
			srv.Close() // requests that did not end in time are cut
		}
		<-serveErr
	}
	stopRequests()
	s.requests.Wait()
	return err
}

// counted tracks running handlers for Serve's shutdown.
func (s *Server) counted(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		defer s.requests.Done()
		next.ServeHTTP(w, r)
	})
}

// authenticated refuses requests without the configured bearer token.
func (s *Server) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.tokenValid(r.Header.Get("Authorization")) {
			s.log.Warn("refused a request without the node token", "remote", r.RemoteAddr, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="kubelite node agent"`)
			writeStatus(w, api.NewUnauthorized())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tokenValid compares in constant time; hashing first makes the time
// independent of the length of the token presented, too.
func (s *Server) tokenValid(authorization string) bool {
	token, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok || token == "" {
		return false
	}
	presented := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(presented[:], s.tokenHash[:]) == 1
}
