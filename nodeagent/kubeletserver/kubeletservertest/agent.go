package kubeletservertest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"testing"

	"kubelite/api"
	"kubelite/nodeagent/kubeletserver"
)

// Agent is a kubeletserver serving on 127.0.0.1 in front of a fake Runtime.
type Agent struct {
	Server  *kubeletserver.Server
	Runtime *Runtime
	// Token is the bearer token the agent accepts.
	Token string
	// Addr is host:port, URL https://host:port.
	Addr, URL string
	Port      int
}

// Start starts an agent that stops at the end of the test. token "" picks
// a random one.
func Start(t testing.TB, token string) *Agent {
	t.Helper()
	if token == "" {
		token = RandomToken(t)
	}
	rt := NewRuntime(t.TempDir())
	t.Cleanup(rt.Close) // after the server has stopped: cleanups run last-in first-out
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := kubeletserver.New(kubeletserver.Config{
		Token:   token,
		CertDir: t.TempDir(),
		Hosts:   []string{"127.0.0.1"},
		Logger:  logger,
	}, rt, rt)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("kubelet server: %v", err)
		}
	})
	port := ln.Addr().(*net.TCPAddr).Port
	addr := ln.Addr().String()
	return &Agent{Server: srv, Runtime: rt, Token: token, Addr: addr, URL: "https://" + addr, Port: port}
}

// RandomToken is a fresh bearer token.
func RandomToken(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// Node is the Node object of this agent as the node agent registers it:
// InternalIP 127.0.0.1, the API's port, the serving certificate published.
func (a *Agent) Node(name string) *api.Node {
	return &api.Node{
		ObjectMeta: api.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{kubeletserver.ServingCertAnnotation: string(a.Server.CertPEM())},
		},
		Status: api.NodeStatus{
			Addresses:       []api.NodeAddress{{Type: api.NodeInternalIP, Address: "127.0.0.1"}},
			DaemonEndpoints: api.NodeDaemonEndpoints{KubeletEndpoint: api.DaemonEndpoint{Port: int32(a.Port)}},
			Conditions:      []api.NodeCondition{{Type: api.NodeReady, Status: api.ConditionTrue}},
		},
	}
}

// TLSConfig trusts the agent's certificate (and nothing else).
func (a *Agent) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(a.Server.CertPEM())
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// HTTPClient is a client that trusts the agent; it sends no token itself.
func (a *Agent) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: a.TLSConfig()}}
}

// ContainerURL is the URL of one of the API's container paths, e.g.
// ContainerURL("exec", "default", "web", "httpd").
func (a *Agent) ContainerURL(verb, namespace, pod, container string) string {
	return a.URL + "/" + verb + "/" + namespace + "/" + pod + "/" + container
}
