// Package endpoints keeps, for every Service with a selector, an Endpoints
// object of the same name that lists the Pods the selector matches: what
// the service proxy load-balances over and what DNS answers for headless
// Services.
//
// Services, Pods and Endpoints are watched; a change to any enqueues the
// Services concerned, and a worker recomputes the Service's Endpoints from
// the caches and writes them only when they differ. There is no delay
// anywhere on that path: a Pod turning ready is in its Services' Endpoints
// as soon as a worker gets to it.
package endpoints

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/api/client/cache"
	"kubelite/api/client/workqueue"
	"kubelite/controller"
)

const (
	// ManagedByAnnotation marks the Endpoints this controller writes. It
	// deletes only those when a Service loses its selector: the Endpoints of
	// a selector-less Service are the user's (or the built-in controller's).
	ManagedByAnnotation = "endpoints.kubelite.io/managed-by"
	// ControllerName is the component named in its Events and annotation.
	ControllerName = "endpoint-controller"
	// LabelHeadless marks the Endpoints of a headless Service, as in Kubernetes.
	LabelHeadless = "service.kubernetes.io/headless"
)

// Config tunes the controller. The zero value is usable.
type Config struct {
	Logger *slog.Logger
}

// Controller is the endpoints controller.
type Controller struct {
	apiClient *client.Client
	services  cache.Lister[*api.Service]
	pods      cache.Lister[*api.Pod]
	endpoints cache.Lister[*api.Endpoints]
	synced    []cache.Syncer
	recorder  controller.EventRecorder
	queue     *workqueue.Queue
	logger    *slog.Logger
}

// New builds the controller and registers its handlers on the informers;
// call it before the informers run.
func New(c *client.Client, inf *controller.Informers, rec controller.EventRecorder, cfg Config) *Controller {
	logger := controller.Logger(cfg.Logger, ControllerName)
	ctrl := &Controller{
		apiClient: c,
		services:  inf.Services,
		pods:      inf.Pods,
		endpoints: inf.Endpoints,
		synced:    []cache.Syncer{inf.Services, inf.Pods, inf.Endpoints},
		recorder:  rec,
		queue:     workqueue.New(workqueue.WithLogger(logger)),
		logger:    logger,
	}
	inf.Services.AddHandler(cache.Handler[*api.Service]{
		OnAdd:    func(svc *api.Service) { ctrl.enqueue(svc) },
		OnUpdate: func(_, svc *api.Service) { ctrl.enqueue(svc) },
		OnDelete: func(svc *api.Service) { ctrl.enqueue(svc) },
	})
	inf.Pods.AddHandler(cache.Handler[*api.Pod]{
		OnAdd: ctrl.enqueueServicesOf,
		OnUpdate: func(old, pod *api.Pod) {
			if !maps.Equal(old.Labels, pod.Labels) {
				ctrl.enqueueServicesOf(old) // the Services it left
			}
			ctrl.enqueueServicesOf(pod)
		},
		OnDelete: ctrl.enqueueServicesOf,
	})
	// Endpoints changed or deleted by someone else are put back.
	inf.Endpoints.AddHandler(cache.Handler[*api.Endpoints]{
		OnAdd:    func(ep *api.Endpoints) { ctrl.enqueue(ep) },
		OnUpdate: func(_, ep *api.Endpoints) { ctrl.enqueue(ep) },
		OnDelete: func(ep *api.Endpoints) { ctrl.enqueue(ep) },
	})
	return ctrl
}

// Run waits for the caches, then reconciles with the given number of
// workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.logger.Info("starting", "workers", workers)
	defer c.logger.Info("stopped")
	if !cache.WaitForCacheSync(ctx, c.synced...) {
		return
	}
	c.queue.Run(ctx, workers, c.sync)
}

// enqueue queues the Service key of a Service or of its Endpoints (same name).
func (c *Controller) enqueue(obj api.Object) { c.queue.Add(cache.Key(obj)) }

// enqueueServicesOf queues every Service whose selector matches pod.
func (c *Controller) enqueueServicesOf(pod *api.Pod) {
	services := c.services.ListSelector(pod.Namespace, func(svc *api.Service) bool {
		return selects(svc.Spec.Selector, pod.Labels)
	})
	for _, svc := range services {
		c.enqueue(svc)
	}
}

// selects reports whether a Service selector matches labels. An empty
// selector selects nothing: such a Service has no managed Endpoints.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// sync makes the Endpoints of the Service key match its Pods.
func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name := cache.SplitKey(key)
	svc, serviceExists := c.services.Get(namespace, name)
	current, endpointsExist := c.endpoints.Get(namespace, name)

	// An ExternalName Service is a DNS alias: it has no endpoints, as in Kubernetes.
	if !serviceExists || len(svc.Spec.Selector) == 0 || svc.Spec.Type == api.ServiceTypeExternalName {
		if endpointsExist && isManaged(current) {
			return c.delete(ctx, current)
		}
		return nil
	}

	pods := c.pods.ListSelector(namespace, func(pod *api.Pod) bool { return selects(svc.Spec.Selector, pod.Labels) })
	desired := desiredEndpoints(svc, pods)
	if !endpointsExist {
		if _, err := client.For[api.Endpoints](c.apiClient, namespace).Create(ctx, desired); err != nil {
			// AlreadyExists: the cache has not seen it yet; the retry will.
			c.warnUnlessConflict(svc, "FailedToCreateEndpoint", err)
			return fmt.Errorf("creating endpoints %s: %w", key, err)
		}
		c.logger.Debug("created endpoints", "service", key, "subsets", len(desired.Subsets))
		return nil
	}
	if upToDate(current, desired) {
		return nil
	}
	next := api.DeepCopy(current)
	next.Labels = desired.Labels
	if next.Annotations == nil {
		next.Annotations = map[string]string{}
	}
	next.Annotations[ManagedByAnnotation] = ControllerName
	next.Subsets = desired.Subsets
	if _, err := client.For[api.Endpoints](c.apiClient, namespace).Update(ctx, next); err != nil {
		c.warnUnlessConflict(svc, "FailedToUpdateEndpoint", err)
		return fmt.Errorf("updating endpoints %s: %w", key, err)
	}
	c.logger.Debug("updated endpoints", "service", key, "subsets", len(desired.Subsets))
	return nil
}

func (c *Controller) delete(ctx context.Context, ep *api.Endpoints) error {
	err := client.For[api.Endpoints](c.apiClient, ep.Namespace).Delete(ctx, ep.Name, client.DeleteOptions{})
	if err != nil && !api.IsNotFound(err) {
		return fmt.Errorf("deleting endpoints %s: %w", cache.Key(ep), err)
	}
	c.logger.Debug("deleted endpoints", "endpoints", cache.Key(ep))
	return nil
}

// warnUnlessConflict records a failed write as an Event on the Service,
// except for the races (conflict, already exists) that a retry settles.
func (c *Controller) warnUnlessConflict(svc *api.Service, reason string, err error) {
	if api.IsConflict(err) || api.IsAlreadyExists(err) {
		return
	}
	c.recorder.Event(svc, api.EventWarning, reason, fmt.Sprintf("Failed to write endpoints for service %s/%s: %v", svc.Namespace, svc.Name, err))
}

// desiredEndpoints is the Endpoints object svc should have.
func desiredEndpoints(svc *api.Service, pods []*api.Pod) *api.Endpoints {
	labels := maps.Clone(svc.Labels)
	if svc.IsHeadless() {
		if labels == nil {
			labels = map[string]string{}
		}
		labels[LabelHeadless] = ""
	}
	return &api.Endpoints{
		ObjectMeta: api.ObjectMeta{
			Name:        svc.Name,
			Namespace:   svc.Namespace,
			Labels:      labels,
			Annotations: map[string]string{ManagedByAnnotation: ControllerName},
		},
		Subsets: DesiredSubsets(svc, pods),
	}
}

func isManaged(ep *api.Endpoints) bool { return ep.Annotations[ManagedByAnnotation] == ControllerName }

// upToDate reports whether current already says what desired says.
func upToDate(current, desired *api.Endpoints) bool {
	return isManaged(current) &&
		maps.Equal(current.Labels, desired.Labels) &&
		sameJSON(current.Subsets, desired.Subsets)
}

// sameJSON compares two values in their stored (JSON) form: what a write
// would change.
func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
