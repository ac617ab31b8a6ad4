// Package etcd runs the etcd that backs the API server: an embedded
// single-node etcd under the data dir (the default), or a client of an
// external cluster (--etcd-servers).
package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap/zapcore"
)

const (
	// startTimeout bounds how long an embedded etcd may take to become
	// ready (replaying a large WAL takes a while) when ctx allows longer.
	startTimeout = time.Minute
	// dialTimeout bounds establishing a client connection.
	dialTimeout = 5 * time.Second
	// connectTimeout bounds the reachability check of Connect when ctx
	// allows longer.
	connectTimeout = 10 * time.Second
	// logLevel keeps etcd quiet: its info level narrates every start-up step.
	logLevel = zapcore.ErrorLevel
)

// EmbeddedConfig says where an embedded etcd keeps its data and listens.
type EmbeddedConfig struct {
	DataDir   string
	ClientURL string // e.g. http://127.0.0.1:2379
	PeerURL   string // e.g. http://127.0.0.1:2380
	Name      string // member name; "" means etcd's "default"
	// Logger receives etcd's own errors; nil means slog.Default().
	Logger *slog.Logger
}

// Embedded is an etcd server running inside this process, with one client
// shared by everything that talks to it.
type Embedded struct {
	server    *embed.Etcd
	client    *clientv3.Client
	endpoints []string
	logger    *slog.Logger

	// failed carries the first error the running server reports.
	failed chan error
	// closing is set once Close starts: errors etcd logs after that are
	// its listeners shutting down, not failures.
	closing   atomic.Bool
	closeOnce sync.Once
}

// StartEmbedded starts an etcd server with cfg and waits until it serves
// clients. ctx bounds the start-up only; the server runs until Close.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	e := &Embedded{
		endpoints: []string{cfg.ClientURL},
		logger:    logger.With("component", "etcd"),
		failed:    make(chan error, 1),
	}
	etcdLogger := newZapLogger(e.logger, logLevel, e.closing.Load)

	embedCfg, err := newEmbedConfig(cfg)
	if err != nil {
		return nil, err
	}
	embedCfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(etcdLogger)

	e.server, err = embed.StartEtcd(embedCfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", cfg.DataDir, err)
	}
	if err := waitReady(ctx, e.server); err != nil {
		e.stopServer()
		return nil, fmt.Errorf("start embedded etcd in %s: %w", cfg.DataDir, err)
	}

	e.client, err = clientv3.New(clientv3.Config{
		Endpoints:   e.endpoints,
		DialTimeout: dialTimeout,
		Logger:      etcdLogger.Named("client"),
	})
	if err != nil {
		e.stopServer()
		return nil, fmt.Errorf("connect to embedded etcd at %s: %w", cfg.ClientURL, err)
	}

	go e.watchErrors()
	e.logger.Info("embedded etcd ready", "dataDir", cfg.DataDir, "clientURL", cfg.ClientURL)
	return e, nil
}

// newEmbedConfig turns our small config into etcd's: one member, one data
// dir, one client and one peer URL.
func newEmbedConfig(cfg EmbeddedConfig) (*embed.Config, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("embedded etcd: DataDir is required")
	}
	clientURL, err := url.Parse(cfg.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: client URL %q: %w", cfg.ClientURL, err)
	}
	peerURL, err := url.Parse(cfg.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: peer URL %q: %w", cfg.PeerURL, err)
	}

	c := embed.NewConfig()
	if cfg.Name != "" {
		c.Name = cfg.Name
	}
	c.Dir = cfg.DataDir
	c.ListenClientUrls = []url.URL{*clientURL}
	c.AdvertiseClientUrls = []url.URL{*clientURL}
	c.ListenPeerUrls = []url.URL{*peerURL}
	c.AdvertisePeerUrls = []url.URL{*peerURL}
	c.InitialCluster = c.InitialClusterFromName(c.Name)
	c.LogLevel = logLevel.String()
	return c, nil
}

// waitReady waits until server serves clients, fails, or ctx (capped at
// startTimeout) ends.
func waitReady(ctx context.Context, server *embed.Etcd) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	select {
	case <-server.Server.ReadyNotify():
		return nil
	case err := <-server.Err():
		return fmt.Errorf("server failed while starting: %w", err)
	case <-ctx.Done():
		return fmt.Errorf("not ready: %w", context.Cause(ctx))
	}
}

// watchErrors logs the errors a running server reports and passes the
// first one on to Failed. etcd closes Err() once it has shut down.
func (e *Embedded) watchErrors() {
	for err := range e.server.Err() {
		if err == nil || e.closing.Load() {
			continue
		}
		e.logger.Error("embedded etcd failed", "err", err)
		select {
		case e.failed <- err:
		default: // the first error is the one worth reporting
		}
	}
}

// Failed delivers the first error the running server reports, so that its
// owner can shut down rather than serve from a dead store.
func (e *Embedded) Failed() <-chan error { return e.failed }

// Client returns the client shared by every user of this etcd. Do not close
// it: Close does.
func (e *Embedded) Client() *clientv3.Client { return e.client }

// Endpoints returns the client URLs, for components that dial on their own.
func (e *Embedded) Endpoints() []string { return append([]string(nil), e.endpoints...) }

// Close closes the shared client, then stops the server. Closing the client
// first ends its watches, which would otherwise hold up the server's
// graceful stop for seconds. Close is safe to call more than once (etcd's
// own Close is not).
func (e *Embedded) Close() {
	e.closeOnce.Do(func() {
		e.closing.Store(true)
		if err := e.client.Close(); err != nil && !errors.Is(err, context.Canceled) {
			e.logger.Warn("closing etcd client", "err", err)
		}
		e.server.Close()
		e.logger.Info("embedded etcd stopped")
	})
}

// stopServer stops a server that never became usable.
func (e *Embedded) stopServer() {
	e.closing.Store(true)
	e.server.Close()
}

// Connect returns a client of the external etcd cluster at endpoints, once
// one of them answered a Status call within ctx (capped at connectTimeout).
// The endpoints are asked at once, so a dead first member costs no time.
func Connect(ctx context.Context, endpoints []string) (*clientv3.Client, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("connect to etcd: no endpoints given")
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: dialTimeout,
		Logger:      newZapLogger(slog.Default().With("component", "etcd-client"), logLevel, nil),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %v: %w", endpoints, err)
	}

	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel() // also stops the Status calls still waiting
	results := make(chan error, len(endpoints))
	for _, endpoint := range endpoints {
		go func() {
			if _, err := client.Status(ctx, endpoint); err != nil {
				results <- fmt.Errorf("%s: %w", endpoint, err)
				return
			}
			results <- nil
		}()
	}
	var errs []error
	for range endpoints {
		err := <-results
		if err == nil {
			return client, nil
		}
		errs = append(errs, err)
	}
	client.Close()
	return nil, fmt.Errorf("connect to etcd: no endpoint reachable: %w", errors.Join(errs...))
}
