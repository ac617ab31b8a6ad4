// Package replicaset is the ReplicaSet controller: for every ReplicaSet it
// keeps exactly spec.replicas active Pods that match the selector and are
// controlled by it, creating Pods from the template when there are too few
// and deleting the least useful when there are too many, and it reports
// what it sees in the ReplicaSet's status.
//
// It works as Kubernetes' does: informer handlers only enqueue ReplicaSet
// keys; a worker reads the ReplicaSet and its Pods from the shared caches
// and closes the gap. Expectations keep a sync from acting on a Pod cache
// that has not yet seen the previous sync's creates and deletes.
package replicaset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/api/client/cache"
	"kubelite/api/client/workqueue"
	"kubelite/controller"
)

// Event reasons, as Kubernetes' ReplicaSet controller records them.
const (
	ReasonSuccessfulCreate = "SuccessfulCreate"
	ReasonFailedCreate     = "FailedCreate"
	ReasonSuccessfulDelete = "SuccessfulDelete"
	ReasonFailedDelete     = "FailedDelete"
	ReasonSelectingAll     = "SelectingAll"
)

// defaultBurstReplicas bounds the Pods one sync creates or deletes, as
// Kubernetes' BurstReplicas.
const defaultBurstReplicas = 500

// Config tunes the controller; the zero value is ready to use.
type Config struct {
	// Logger receives the controller's logs (default slog.Default()).
	Logger *slog.Logger
	// BurstReplicas bounds the Pods one sync creates or deletes (default 500).
	BurstReplicas int
}

// Controller is the ReplicaSet controller.
type Controller struct {
	client       *client.Client
	replicaSets  *cache.Informer[api.ReplicaSet, *api.ReplicaSet]
	pods         *cache.Informer[api.Pod, *api.Pod]
	recorder     controller.EventRecorder
	queue        *workqueue.Queue
	expectations *expectations
	logger       *slog.Logger
	burst        int
	now          func() time.Time
}

// New returns a ReplicaSet controller that reads from inf and writes through c.
func New(c *client.Client, inf *controller.Informers, rec controller.EventRecorder, cfg Config) *Controller {
	logger := controller.Logger(cfg.Logger, "replicaset")
	burst := cfg.BurstReplicas
	if burst <= 0 {
		burst = defaultBurstReplicas
	}
	return &Controller{
		client:       c,
		replicaSets:  inf.ReplicaSets,
		pods:         inf.Pods,
		recorder:     rec,
		queue:        workqueue.New(workqueue.WithLogger(logger)),
		expectations: newExpectations(time.Now),
		logger:       logger,
		burst:        burst,
		now:          time.Now,
	}
}

// Run registers the informer handlers, waits for the caches and syncs
// ReplicaSets with the given number of workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.replicaSets.AddHandler(cache.Handler[*api.ReplicaSet]{
		OnAdd:    func(rs *api.ReplicaSet) { c.enqueue(rs) },
		OnUpdate: func(_, rs *api.ReplicaSet) { c.enqueue(rs) },
		OnDelete: c.onReplicaSetDelete,
	})
	c.pods.AddHandler(cache.Handler[*api.Pod]{
		OnAdd:    c.onPodAdd,
		OnUpdate: c.onPodUpdate,
		OnDelete: c.onPodDelete,
	})
	if !cache.WaitForCacheSync(ctx, c.replicaSets, c.pods) {
		return
	}
	// Handlers registered after the caches' first list missed its adds.
	for _, rs := range c.replicaSets.List("") {
		c.enqueue(rs)
	}
	c.logger.Info("started", "workers", workers)
	c.queue.Run(ctx, workers, c.reconcile)
	c.logger.Info("stopped")
}

func (c *Controller) enqueue(rs *api.ReplicaSet) { c.queue.Add(cache.Key(rs)) }

func (c *Controller) onReplicaSetDelete(rs *api.ReplicaSet) {
	c.expectations.forget(cache.Key(rs))
	c.enqueue(rs)
}

// onPodAdd tells the Pod's ReplicaSet that one of its creates arrived, or,
// for an orphan, wakes the ReplicaSets that may adopt it.
func (c *Controller) onPodAdd(pod *api.Pod) {
	if rs := c.controllerOf(pod); rs != nil {
		key := cache.Key(rs)
		c.expectations.creationObserved(key)
		if pod.DeletionTimestamp != nil {
			c.expectations.deletionObserved(key, cache.Key(pod))
		}
		c.queue.Add(key)
		return
	}
	if pod.DeletionTimestamp == nil {
		c.enqueueAdopters(pod)
	}
}

// onPodUpdate wakes the ReplicaSets that an update concerns: the old and
// the new controller, and the possible adopters of a relabelled orphan.
func (c *Controller) onPodUpdate(oldPod, pod *api.Pod) {
	if oldPod.ResourceVersion == pod.ResourceVersion {
		return // a periodic resync: the ReplicaSets get their own
	}
	labelsChanged := !maps.Equal(oldPod.Labels, pod.Labels)
	if oldRS := c.controllerOf(oldPod); oldRS != nil {
		if newRS := c.controllerOf(pod); newRS == nil || newRS.UID != oldRS.UID {
			c.enqueue(oldRS) // released or taken over: the old owner is one short
		}
	}
	rs := c.controllerOf(pod)
	if rs == nil {
		if labelsChanged || oldPod.ControllerRef() != nil {
			c.enqueueAdopters(pod)
		}
		return
	}
	key := cache.Key(rs)
	if pod.DeletionTimestamp != nil {
		// A graceful delete shows as an update long before the Pod is gone;
		// for the ReplicaSet the Pod no longer counts from now.
		c.expectations.deletionObserved(key, cache.Key(pod))
	}
	c.queue.Add(key)
	if rs.Spec.MinReadySeconds > 0 && !oldPod.IsReady() && pod.IsReady() {
		// The Pod becomes available minReadySeconds from now; no event says so.
		c.queue.AddAfter(key, time.Duration(rs.Spec.MinReadySeconds)*time.Second+time.Second)
	}
}

func (c *Controller) onPodDelete(pod *api.Pod) {
	if rs := c.controllerOf(pod); rs != nil {
		key := cache.Key(rs)
		c.expectations.deletionObserved(key, cache.Key(pod))
		c.queue.Add(key)
	}
}

// controllerOf returns the cached ReplicaSet that controls pod, or nil.
func (c *Controller) controllerOf(pod *api.Pod) *api.ReplicaSet {
	ref := pod.ControllerRef()
	if ref == nil || ref.Kind != "ReplicaSet" {
		return nil
	}
	rs, ok := c.replicaSets.Get(pod.Namespace, ref.Name)
	if !ok || rs.UID != ref.UID {
		return nil // a ReplicaSet of the same name, not the owner
	}
	return rs
}

// enqueueAdopters queues every ReplicaSet whose selector matches an orphan Pod.
func (c *Controller) enqueueAdopters(pod *api.Pod) {
	for _, rs := range c.replicaSets.List(pod.Namespace) {
		if sel, err := api.LabelSelectorAsSelector(rs.Spec.Selector); err == nil && sel.Matches(pod.Labels) {
			c.enqueue(rs)
		}
	}
}

// reconcile brings one ReplicaSet's Pods to spec.replicas and records its status.
func (c *Controller) reconcile(ctx context.Context, key string) error {
	cached, ok := c.replicaSets.GetByKey(key)
	if !ok {
		c.expectations.forget(key)
		return nil // deleted; the garbage collector removes its Pods
	}
	rs := api.DeepCopy(cached)
	logger := c.logger.With("replicaSet", key)

	if rs.Spec.Selector.IsEmpty() {
		c.recorder.Event(rs, api.EventWarning, ReasonSelectingAll, "This ReplicaSet is selecting all pods. A non-empty selector is required.")
		return nil
	}
	selector, err := api.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil {
		// The API server validated it: retrying cannot help.
		logger.Error("invalid selector", "err", err)
		return nil
	}

	// Read the expectations before the Pods: a create that lands in between
	// is then in the cache, not missed.
	canManage := c.expectations.satisfied(key)
	pods, err := c.claimPods(ctx, rs, selector.Matches, activePods(c.pods.List(rs.Namespace)))
	if err != nil {
		return err
	}

	var manageErr error
	if canManage && rs.DeletionTimestamp == nil {
		manageErr = c.manageReplicas(ctx, rs, pods)
	}

	status := calculateStatus(rs, pods, c.now())
	updated, err := c.updateStatus(ctx, rs, status)
	if err != nil {
		return errors.Join(manageErr, err)
	}
	// Ready Pods become available minReadySeconds later, silently: look again then.
	if manageErr == nil && updated.Spec.MinReadySeconds > 0 &&
		updated.Status.ReadyReplicas == replicasOf(updated) &&
		updated.Status.AvailableReplicas != replicasOf(updated) {
		c.queue.AddAfter(key, time.Duration(updated.Spec.MinReadySeconds)*time.Second)
	}
	return manageErr
}

// claimPods returns the Pods rs controls after adopting matching orphans
// and releasing its Pods that no longer match, as Kubernetes'
// ControllerRefManager does. pods are the active Pods of rs's namespace.
func (c *Controller) claimPods(ctx context.Context, rs *api.ReplicaSet, matches func(map[string]string) bool, pods []*api.Pod) ([]*api.Pod, error) {
	var claimed []*api.Pod
	var errs []error
	canAdopt := sync.OnceValue(func() error { return c.checkCanAdopt(ctx, rs) })
	for _, pod := range pods {
		ref := pod.ControllerRef()
		switch {
		case ref != nil && ref.UID != rs.UID:
			// Another controller's Pod.
		case ref != nil && matches(pod.Labels):
			claimed = append(claimed, pod)
		case ref != nil:
			if err := c.releasePod(ctx, rs, pod); err != nil {
				errs = append(errs, err)
			}
		case rs.DeletionTimestamp != nil || !matches(pod.Labels):
			// An orphan that is not ours to take.
		default:
			if err := canAdopt(); err != nil {
				errs = append(errs, err)
				continue
			}
			adopted, err := c.adoptPod(ctx, rs, pod)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if adopted != nil {
				claimed = append(claimed, adopted)
			}
		}
	}
	return claimed, errors.Join(errs...)
}

// checkCanAdopt re-reads rs from the API server before the first adoption:
// the cache may still hold a ReplicaSet that was deleted, or deleted and
// created again under the same name.
func (c *Controller) checkCanAdopt(ctx context.Context, rs *api.ReplicaSet) error {
	fresh, err := client.For[api.ReplicaSet](c.client, rs.Namespace).Get(ctx, rs.Name)
	if err != nil {
		return fmt.Errorf("checking ReplicaSet %s/%s before adopting: %w", rs.Namespace, rs.Name, err)
	}
	if fresh.UID != rs.UID {
		return fmt.Errorf("ReplicaSet %s/%s was recreated (uid %s, cached %s); not adopting", rs.Namespace, rs.Name, fresh.UID, rs.UID)
	}
	if fresh.DeletionTimestamp != nil {
		return fmt.Errorf("ReplicaSet %s/%s is being deleted; not adopting", rs.Namespace, rs.Name)
	}
	return nil
}

// adoptPod makes rs the controller of an orphan Pod. It returns the adopted
// Pod, or nil when the Pod is gone.
func (c *Controller) adoptPod(ctx context.Context, rs *api.ReplicaSet, cached *api.Pod) (*api.Pod, error) {
	pod := api.DeepCopy(cached)
	pod.OwnerReferences = append(pod.OwnerReferences, controllerRef(rs))
	updated, err := client.For[api.Pod](c.client, pod.Namespace).Update(ctx, pod)
	if api.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("adopting pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	c.logger.Info("adopted pod", "replicaSet", cache.Key(rs), "pod", pod.Name)
	return updated, nil
}

// releasePod removes rs's controller reference from a Pod that no longer
// matches its selector; the Pod lives on as an orphan.
func (c *Controller) releasePod(ctx context.Context, rs *api.ReplicaSet, cached *api.Pod) error {
	pod := api.DeepCopy(cached)
	kept := pod.OwnerReferences[:0]
	for _, ref := range pod.OwnerReferences {
		if ref.UID != rs.UID {
			kept = append(kept, ref)
		}
	}
	pod.OwnerReferences = kept
	_, err := client.For[api.Pod](c.client, pod.Namespace).Update(ctx, pod)
	if api.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("releasing pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	c.logger.Info("released pod", "replicaSet", cache.Key(rs), "pod", pod.Name)
	return nil
}

// manageReplicas creates or deletes Pods so that rs has spec.replicas
// active Pods; pods are the active Pods it controls.
func (c *Controller) manageReplicas(ctx context.Context, rs *api.ReplicaSet, pods []*api.Pod) error {
	key := cache.Key(rs)
	diff := len(pods) - int(replicasOf(rs))
	switch {
	case diff < 0:
		toCreate := min(-diff, c.burst)
		c.expectations.expectCreations(key, toCreate)
		created, err := slowStartBatch(toCreate, slowStartInitialBatchSize, func() error {
			return c.createPod(ctx, rs)
		})
		// The creates that were never sent will never be seen.
		for range toCreate - created {
			c.expectations.creationObserved(key)
		}
		return err
	case diff > 0:
		victims := podsToDelete(pods, min(diff, c.burst))
		victimKeys := make([]string, len(victims))
		for i, pod := range victims {
			victimKeys[i] = cache.Key(pod)
		}
		c.expectations.expectDeletions(key, victimKeys)
		errs := make([]error, len(victims))
		var wg sync.WaitGroup
		for i, pod := range victims {
			wg.Go(func() {
				if err := c.deletePod(ctx, rs, pod); err != nil {
					c.expectations.deletionObserved(key, victimKeys[i])
					errs[i] = err
				}
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	return nil
}

func (c *Controller) createPod(ctx context.Context, rs *api.ReplicaSet) error {
	pod, err := client.For[api.Pod](c.client, rs.Namespace).Create(ctx, newPod(rs))
	if err != nil {
		c.recorder.Event(rs, api.EventWarning, ReasonFailedCreate, fmt.Sprintf("Error creating: %v", err))
		return fmt.Errorf("creating pod for ReplicaSet %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	c.logger.Info("created pod", "replicaSet", cache.Key(rs), "pod", pod.Name)
	c.recorder.Event(rs, api.EventNormal, ReasonSuccessfulCreate, "Created pod: "+pod.Name)
	return nil
}

func (c *Controller) deletePod(ctx context.Context, rs *api.ReplicaSet, pod *api.Pod) error {
	err := client.For[api.Pod](c.client, pod.Namespace).Delete(ctx, pod.Name, client.DeleteOptions{})
	if api.IsNotFound(err) {
		return nil // already gone: what we wanted
	}
	if err != nil {
		c.recorder.Event(rs, api.EventWarning, ReasonFailedDelete, fmt.Sprintf("Error deleting: %v", err))
		return fmt.Errorf("deleting pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	c.logger.Info("deleted pod", "replicaSet", cache.Key(rs), "pod", pod.Name)
	c.recorder.Event(rs, api.EventNormal, ReasonSuccessfulDelete, "Deleted pod: "+pod.Name)
	return nil
}

// updateStatus writes status unless it is already the recorded one; on a
// conflict it retries once on a fresh copy, as the status is recomputed
// from the caches on every sync anyway.
func (c *Controller) updateStatus(ctx context.Context, rs *api.ReplicaSet, status api.ReplicaSetStatus) (*api.ReplicaSet, error) {
	if rs.Status == status {
		return rs, nil
	}
	replicaSets := client.For[api.ReplicaSet](c.client, rs.Namespace)
	key := cache.Key(rs)
	for attempt := 0; ; attempt++ {
		rs.Status = status
		updated, err := replicaSets.UpdateStatus(ctx, rs)
		if err == nil {
			return updated, nil
		}
		if !api.IsConflict(err) || attempt > 0 {
			return nil, fmt.Errorf("updating status of ReplicaSet %s: %w", key, err)
		}
		fresh, err := replicaSets.Get(ctx, rs.Name)
		if err != nil {
			return nil, fmt.Errorf("re-reading ReplicaSet %s: %w", key, err)
		}
		rs = fresh
	}
}

// replicasOf is spec.replicas, which defaults to 1.
func replicasOf(rs *api.ReplicaSet) int32 {
	if rs.Spec.Replicas == nil {
		return 1
	}
	return *rs.Spec.Replicas
}
