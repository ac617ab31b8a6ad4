// Package controller holds kubelite's control loops. Each one is
// level-triggered: watches (through the shared caches below) only enqueue
// "namespace/name" keys; a worker reads the desired and the actual state
// from the caches and closes the gap, idempotently; failures are retried with
// back-off; a periodic resync catches anything missed.
package controller

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/api/client/cache"
)

// Informers are the list+watch caches shared by every controller, one per
// resource, so that the server watches each resource once.
type Informers struct {
	Namespaces  *cache.Informer[api.Namespace, *api.Namespace]
	Nodes       *cache.Informer[api.Node, *api.Node]
	Pods        *cache.Informer[api.Pod, *api.Pod]
	Services    *cache.Informer[api.Service, *api.Service]
	Endpoints   *cache.Informer[api.Endpoints, *api.Endpoints]
	Deployments *cache.Informer[api.Deployment, *api.Deployment]
	ReplicaSets *cache.Informer[api.ReplicaSet, *api.ReplicaSet]
	Leases      *cache.Informer[api.Lease, *api.Lease]
}

// NewInformers builds the caches for all namespaces; resync is the period at
// which every object is re-delivered to handlers.
func NewInformers(c *client.Client, resync time.Duration) *Informers {
	all := client.ListOptions{}
	return &Informers{
		Namespaces:  cache.NewInformer(client.For[api.Namespace](c, ""), all, resync),
		Nodes:       cache.NewInformer(client.For[api.Node](c, ""), all, resync),
		Pods:        cache.NewInformer(client.For[api.Pod](c, ""), all, resync),
		Services:    cache.NewInformer(client.For[api.Service](c, ""), all, resync),
		Endpoints:   cache.NewInformer(client.For[api.Endpoints](c, ""), all, resync),
		Deployments: cache.NewInformer(client.For[api.Deployment](c, ""), all, resync),
		ReplicaSets: cache.NewInformer(client.For[api.ReplicaSet](c, ""), all, resync),
		Leases:      cache.NewInformer(client.For[api.Lease](c, api.NamespaceNodeLease), all, resync),
	}
}

// Run runs every cache until ctx ends; it returns when all have stopped.
// Register handlers before calling Run.
func (in *Informers) Run(ctx context.Context) {
	runs := []func(context.Context){
		in.Namespaces.Run, in.Nodes.Run, in.Pods.Run, in.Services.Run,
		in.Endpoints.Run, in.Deployments.Run, in.ReplicaSets.Run, in.Leases.Run,
	}
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Go(func() { run(ctx) })
	}
	wg.Wait()
}

// WaitForSync blocks until every cache has loaded, or ctx ends.
func (in *Informers) WaitForSync(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx, in.Namespaces, in.Nodes, in.Pods, in.Services,
		in.Endpoints, in.Deployments, in.ReplicaSets, in.Leases)
}

// EventRecorder records Events about objects, for `kubectl-lite describe`
// and `get events`. Controllers take this interface; tests pass a fake.
type EventRecorder interface {
	Event(obj api.Object, eventType, reason, message string)
}

// Logger is the logger of the controller named name: logger (nil:
// slog.Default()) with a "controller" field.
func Logger(logger *slog.Logger, name string) *slog.Logger {
	if logger == nil {
		logger = slog.Default()
	}
	return logger.With("controller", name)
}
