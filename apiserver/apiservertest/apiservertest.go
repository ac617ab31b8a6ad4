// Package apiservertest starts a real API server over a real embedded etcd
// for other packages' tests: TLS, tokens and authorization as in production.
package apiservertest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kubelite/api/client"
	"kubelite/apiserver"
	"kubelite/apiserver/auth"
	"kubelite/apiserver/etcd/etcdtest"
	"kubelite/apiserver/storage"
)

// Options tune the test server.
type Options struct {
	// Etcd is an existing etcd client (to share one etcd between servers or
	// across a restart); nil starts a new embedded etcd.
	Etcd *clientv3.Client
	// Hooks are passed to apiserver.Config (e.g. the Service allocator).
	Hooks map[string]apiserver.Hook
	// Dir keeps certificates and tokens (to reuse across a restart); "" = a temp dir.
	Dir string
	// Proxies are passed to apiserver.Config: the subresources served by
	// other parts, e.g. "pods/log" and "pods/exec" (apiserver/podproxy).
	Proxies map[string]http.Handler
}

// Server is a running test API server.
type Server struct {
	URL    string
	CAPEM  []byte
	Tokens auth.ServerTokens
	Etcd   *clientv3.Client
	Store  *storage.Store
	// Admin is a client with the admin token; its warnings are collected.
	Admin    *client.Client
	Warnings *Warnings
	http     *httptest.Server
}

// Warnings collects the Warning headers the admin client received.
type Warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *Warnings) add(m string) { w.mu.Lock(); w.msgs = append(w.msgs, m); w.mu.Unlock() }

// All returns the warnings so far.
func (w *Warnings) All() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

// Start starts a server that stops at the end of the test.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	cli := opts.Etcd
	if cli == nil {
		cli = etcdtest.Start(t)
	}
	dir := opts.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	store := storage.New(cli, "/registry")
	pki, err := auth.EnsurePKI(filepath.Join(dir, "tls"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.EnsureServerTokens(filepath.Join(dir, "auth"), filepath.Join(dir, "node-token"), pki.CACertPEM)
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.NewAuthenticator(tokens.Users())
	if err != nil {
		t.Fatal(err)
	}
	srv := apiserver.New(apiserver.Config{
		Store:        store,
		Authenticate: authn.Middleware,
		Authorize:    auth.DefaultPolicy().AuthorizeRequest,
		Hooks:        opts.Hooks,
		Proxies:      opts.Proxies,
	})
	if err := srv.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.TLS = pki.ServingTLSConfig()
	ts.StartTLS()
	t.Cleanup(ts.Close)
	s := &Server{URL: ts.URL, CAPEM: pki.CACertPEM, Tokens: tokens, Etcd: cli, Store: store, Warnings: &Warnings{}, http: ts}
	s.Admin = s.Client(t, tokens.Admin)
	return s
}

// Client returns a client of this server with the given bearer token.
func (s *Server) Client(t testing.TB, token string) *client.Client {
	t.Helper()
	c, err := client.New(&client.Config{Server: s.URL, Token: token, CAData: s.CAPEM, OnWarning: s.Warnings.add})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Close stops serving (e.g. to simulate a server restart on the same etcd).
func (s *Server) Close() { s.http.Close() }
