package controllertest

import (
	"context"
	"log/slog"
	"testing"

	"kubelite/api/client"
	"kubelite/apiserver/apiservertest"
	"kubelite/controller"
)

// Cluster is what a controller integration test runs on: a real API
// server over a real embedded etcd, simulated nodes, the shared informers
// and an in-memory event recorder. Everything stops when the test ends.
type Cluster struct {
	Server    *apiservertest.Server
	Client    *client.Client // the admin client
	Informers *controller.Informers
	Nodes     *SimulatedNodes
	Recorder  *Recorder
	// Logger writes to the test's output; give it to the controllers.
	Logger *slog.Logger
}

// StartCluster starts an API server with nodeCount simulated nodes
// (node1..nodeN). Build the controllers with the cluster's client,
// informers and recorder, then call Run.
func StartCluster(t testing.TB, nodeCount int, opts ...NodeOption) *Cluster {
	t.Helper()
	server := apiservertest.Start(t, apiservertest.Options{})
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	opts = append([]NodeOption{WithLogger(logger)}, opts...)
	return &Cluster{
		Server: server,
		Client: server.Admin,
		// No periodic resync: tests show that changes alone drive the controllers.
		Informers: controller.NewInformers(server.Admin, 0),
		Nodes:     StartNodes(t, server.Admin, nodeCount, opts...),
		Recorder:  NewRecorder(),
		Logger:    logger,
	}
}

// Run starts the informers and the given controller loops (typically
// func(ctx context.Context) { c.Run(ctx, 2) }) for the rest of the test.
func (c *Cluster) Run(t testing.TB, loops ...func(ctx context.Context)) {
	t.Helper()
	Go(t, c.Informers.Run)
	for _, loop := range loops {
		Go(t, loop)
	}
}
