// Package namespace finishes the deletion of namespaces.
//
// Deleting a namespace only marks it Terminating: the API server keeps it,
// with its "kubernetes" finalizer, and refuses new content in it. This
// controller then deletes every namespaced object in it, waits until they
// are all gone (Pods take their grace period; objects with finalizers wait
// for the garbage collector), and removes the finalizer through the
// namespace's finalize subresource, which lets the API server delete it.
package namespace

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/api/client/cache"
	"kubelite/api/client/workqueue"
	"kubelite/controller"
)

const (
	// FinalizerKubernetes is the namespace finalizer this controller owns.
	FinalizerKubernetes = "kubernetes"
	// ControllerName is the component named in its Events.
	ControllerName = "namespace-controller"
	// DefaultRecheckInterval is how often a namespace whose content is still
	// going is looked at again, for the kinds no informer reports deletes of.
	DefaultRecheckInterval = 2 * time.Second
)

// Config tunes the controller. The zero value is usable.
type Config struct {
	// RecheckInterval (DefaultRecheckInterval) paces the wait for content to go.
	RecheckInterval time.Duration
	Logger          *slog.Logger
}

// Controller is the namespace controller.
type Controller struct {
	apiClient  *client.Client
	namespaces cache.Lister[*api.Namespace]
	synced     []cache.Syncer
	resources  []*api.Resource // every namespaced kind
	recorder   controller.EventRecorder
	queue      *workqueue.Queue
	recheck    time.Duration
	logger     *slog.Logger
}

// New builds the controller and registers its handlers; call it before the
// informers run.
func New(c *client.Client, inf *controller.Informers, rec controller.EventRecorder, cfg Config) *Controller {
	logger := controller.Logger(cfg.Logger, ControllerName)
	ctrl := &Controller{
		apiClient:  c,
		namespaces: inf.Namespaces,
		synced:     []cache.Syncer{inf.Namespaces},
		recorder:   rec,
		queue:      workqueue.New(workqueue.WithLogger(logger)),
		recheck:    cfg.RecheckInterval,
		logger:     logger,
	}
	if ctrl.recheck <= 0 {
		ctrl.recheck = DefaultRecheckInterval
	}
	for _, r := range api.Resources() {
		if r.Namespaced {
			ctrl.resources = append(ctrl.resources, r)
		}
	}
	inf.Namespaces.AddHandler(cache.Handler[*api.Namespace]{
		OnAdd:    ctrl.enqueueIfTerminating,
		OnUpdate: func(_, ns *api.Namespace) { ctrl.enqueueIfTerminating(ns) },
	})
	// The last Pods, Services... of a terminating namespace going is the
	// moment to finish it: no need to wait for the recheck.
	onContentDeleted := func(obj api.Object) { ctrl.enqueueNamespaceOf(obj) }
	inf.Pods.AddHandler(cache.Handler[*api.Pod]{OnDelete: func(o *api.Pod) { onContentDeleted(o) }})
	inf.Services.AddHandler(cache.Handler[*api.Service]{OnDelete: func(o *api.Service) { onContentDeleted(o) }})
	inf.Endpoints.AddHandler(cache.Handler[*api.Endpoints]{OnDelete: func(o *api.Endpoints) { onContentDeleted(o) }})
	inf.Deployments.AddHandler(cache.Handler[*api.Deployment]{OnDelete: func(o *api.Deployment) { onContentDeleted(o) }})
	inf.ReplicaSets.AddHandler(cache.Handler[*api.ReplicaSet]{OnDelete: func(o *api.ReplicaSet) { onContentDeleted(o) }})
	return ctrl
}

// Run waits for the cache, then reconciles until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.logger.Info("starting", "workers", workers)
	defer c.logger.Info("stopped")
	if !cache.WaitForCacheSync(ctx, c.synced...) {
		return
	}
	c.queue.Run(ctx, workers, c.sync)
}

func (c *Controller) enqueueIfTerminating(ns *api.Namespace) {
	if ns.DeletionTimestamp != nil {
		c.queue.Add(ns.Name)
	}
}

func (c *Controller) enqueueNamespaceOf(obj api.Object) {
	if ns, ok := c.namespaces.Get("", obj.GetObjectMeta().Namespace); ok {
		c.enqueueIfTerminating(ns)
	}
}

// sync deletes the content of a terminating namespace and, once it is all
// gone, removes the finalizer.
func (c *Controller) sync(ctx context.Context, name string) error {
	ns, ok := c.namespaces.Get("", name)
	if !ok || ns.DeletionTimestamp == nil || !slices.Contains(ns.Spec.Finalizers, FinalizerKubernetes) {
		return nil
	}
	if slices.Contains(api.SystemNamespaces(), name) {
		return nil // the API server refuses to delete these; never empty one
	}

	remaining, err := c.deleteContent(ctx, ns)
	if err != nil {
		c.recorder.Event(ns, api.EventWarning, "NamespaceDeletionContentFailure",
			fmt.Sprintf("Failed to delete the content of namespace %s: %v", name, err))
		return err
	}
	if len(remaining) > 0 {
		c.logger.Debug("waiting for namespace content to go", "namespace", name, "remaining", describe(remaining))
		c.queue.AddAfter(name, c.recheck)
		return nil
	}
	if err := c.finalize(ctx, ns); err != nil {
		return err
	}
	c.logger.Info("namespace emptied and finalized", "namespace", name)
	return nil
}

// deleteContent deletes every object in the namespace that is not already
// being deleted and returns how many objects of each resource remain.
func (c *Controller) deleteContent(ctx context.Context, ns *api.Namespace) (map[string]int, error) {
	remaining := map[string]int{}
	deleted := map[string]int{}
	for _, r := range c.resources {
		objects := c.apiClient.Resource(r, ns.Name)
		items, err := listMetadata(ctx, objects)
		if err != nil {
			return nil, fmt.Errorf("listing %s in %s: %w", r.GroupResource(), ns.Name, err)
		}
		for _, meta := range items {
			if meta.DeletionTimestamp != nil {
				// On its way: a Pod in its grace period, or finalizers at work.
				remaining[r.GroupResource()]++
				continue
			}
			// Background propagation, as Kubernetes' namespace controller
			// deletes; a Pod gets the grace period of its own spec.
			answer, err := objects.Delete(ctx, meta.Name, client.DeleteOptions{PropagationPolicy: "Background"})
			switch {
			case err == nil:
				deleted[r.GroupResource()]++
				if lingers(answer) {
					remaining[r.GroupResource()]++
				}
			case api.IsNotFound(err):
			default:
				return nil, fmt.Errorf("deleting %s %s/%s: %w", r.GroupResource(), ns.Name, meta.Name, err)
			}
		}
	}
	if len(deleted) > 0 {
		c.recorder.Event(ns, api.EventNormal, "NamespaceContentDeleted",
			fmt.Sprintf("Deleting the content of namespace %s: %s", ns.Name, describe(deleted)))
	}
	return remaining, nil
}

// lingers reports whether the answer to a delete is an object kept for a
// graceful deletion or finalizers, rather than a Status or the object as
// it was removed.
func lingers(answer []byte) bool {
	var reply struct {
		Kind     string         `json:"kind"`
		Metadata api.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(answer, &reply); err != nil {
		return true // unknown: assume it is still there; the next pass tells
	}
	return reply.Kind != "Status" && reply.Metadata.DeletionTimestamp != nil
}

// listMetadata lists the metadata of every object of a collection.
func listMetadata(ctx context.Context, objects *client.Dynamic) ([]api.ObjectMeta, error) {
	body, err := objects.List(ctx, client.ListOptions{})
	if err != nil {
		return nil, err
	}
	var list struct {
		Items []struct {
			Metadata api.ObjectMeta `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("decoding list: %w", err)
	}
	metas := make([]api.ObjectMeta, len(list.Items))
	for i, item := range list.Items {
		metas[i] = item.Metadata
	}
	return metas, nil
}

// finalize removes the "kubernetes" finalizer through the finalize
// subresource; the API server deletes the namespace once none is left.
func (c *Controller) finalize(ctx context.Context, ns *api.Namespace) error {
	next := api.DeepCopy(ns)
	next.APIVersion, next.Kind = "v1", "Namespace"
	next.Spec.Finalizers = slices.DeleteFunc(next.Spec.Finalizers, func(f string) bool { return f == FinalizerKubernetes })
	body, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("encoding namespace %s: %w", ns.Name, err)
	}
	namespaces, _ := api.NewScheme().ByName("namespaces")
	_, err = c.apiClient.Resource(namespaces, "").Subresource(ctx, http.MethodPut, ns.Name, "finalize", nil, body)
	if err != nil && !api.IsNotFound(err) {
		return fmt.Errorf("finalizing namespace %s: %w", ns.Name, err)
	}
	return nil
}

// describe renders counts per resource as "pods: 3, services: 1", sorted.
func describe(counts map[string]int) string {
	parts := make([]string, 0, len(counts))
	for resource, n := range counts {
		parts = append(parts, fmt.Sprintf("%s: %d", resource, n))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}
