// Package deployment is the Deployment controller. As Kubernetes' does, it
// runs each Deployment through ReplicaSets, one per pod template: the
// ReplicaSet of the current template is the "new" one, named
// <deployment>-<pod-template-hash> and selecting its Pods by the
// pod-template-hash label; the others are "old". A template change is
// rolled out by growing the new ReplicaSet and shrinking the old ones,
// within maxSurge and maxUnavailable (RollingUpdate), or by removing all
// old Pods before starting new ones (Recreate). Changes of spec.replicas
// resize the ReplicaSets. Old ReplicaSets beyond revisionHistoryLimit are
// deleted. The status and the Available and Progressing conditions are
// what `kubectl rollout status` reads.
//
// Informer handlers only enqueue Deployment keys; a worker reads the
// Deployment and its ReplicaSets from the caches and takes the next step.
package deployment

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

// Config tunes the controller; the zero value is ready to use.
type Config struct {
	// Logger receives the controller's logs (default slog.Default()).
	Logger *slog.Logger
}

// Controller is the Deployment controller.
type Controller struct {
	client      *client.Client
	deployments *cache.Informer[api.Deployment, *api.Deployment]
	replicaSets *cache.Informer[api.ReplicaSet, *api.ReplicaSet]
	pods        *cache.Informer[api.Pod, *api.Pod]
	recorder    controller.EventRecorder
	queue       *workqueue.Queue
	writes      *writeTracker // the ReplicaSet writes the cache has not shown yet
	ownWrites   *ownWrites    // the Deployment writes the cache has not shown yet
	logger      *slog.Logger
}

// New returns a Deployment controller that reads from inf and writes through c.
func New(c *client.Client, inf *controller.Informers, rec controller.EventRecorder, cfg Config) *Controller {
	logger := controller.Logger(cfg.Logger, "deployment")
	return &Controller{
		client:      c,
		deployments: inf.Deployments,
		replicaSets: inf.ReplicaSets,
		pods:        inf.Pods,
		recorder:    rec,
		queue:       workqueue.New(workqueue.WithLogger(logger)),
		writes:      newWriteTracker(time.Now),
		ownWrites:   newOwnWrites(),
		logger:      logger,
	}
}

// Run registers the informer handlers, waits for the caches and syncs
// Deployments with the given number of workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.deployments.AddHandler(cache.Handler[*api.Deployment]{
		OnAdd:    c.enqueue,
		OnUpdate: func(_, d *api.Deployment) { c.enqueue(d) },
		OnDelete: func(d *api.Deployment) {
			c.writes.forget(cache.Key(d))
			c.ownWrites.forget(cache.Key(d))
			c.enqueue(d)
		},
	})
	c.replicaSets.AddHandler(cache.Handler[*api.ReplicaSet]{
		OnAdd:    c.onReplicaSetAdd,
		OnUpdate: c.onReplicaSetUpdate,
		OnDelete: c.onReplicaSetDelete,
	})
	c.pods.AddHandler(cache.Handler[*api.Pod]{
		OnDelete: c.onPodDelete,
	})
	if !cache.WaitForCacheSync(ctx, c.deployments, c.replicaSets, c.pods) {
		return
	}
	// Handlers registered after the caches' first list missed its adds.
	for _, d := range c.deployments.List("") {
		c.enqueue(d)
	}
	c.logger.Info("started", "workers", workers)
	c.queue.Run(ctx, workers, c.reconcile)
	c.logger.Info("stopped")
}

func (c *Controller) enqueue(d *api.Deployment) { c.queue.Add(cache.Key(d)) }

func (c *Controller) onReplicaSetAdd(rs *api.ReplicaSet) {
	if d := c.ownerOf(rs.Namespace, rs.ControllerRef()); d != nil {
		c.enqueue(d)
		return
	}
	if rs.DeletionTimestamp == nil {
		c.enqueueAdopters(rs)
	}
}

func (c *Controller) onReplicaSetUpdate(oldRS, rs *api.ReplicaSet) {
	if oldRS.ResourceVersion == rs.ResourceVersion {
		return // a periodic resync: the Deployments get their own
	}
	oldOwner := c.ownerOf(oldRS.Namespace, oldRS.ControllerRef())
	owner := c.ownerOf(rs.Namespace, rs.ControllerRef())
	if oldOwner != nil && (owner == nil || owner.UID != oldOwner.UID) {
		c.enqueue(oldOwner) // released or taken over
	}
	if owner != nil {
		c.enqueue(owner)
		return
	}
	if !maps.Equal(oldRS.Labels, rs.Labels) || oldRS.ControllerRef() != nil {
		c.enqueueAdopters(rs)
	}
}

func (c *Controller) onReplicaSetDelete(rs *api.ReplicaSet) {
	if d := c.ownerOf(rs.Namespace, rs.ControllerRef()); d != nil {
		c.writes.forgetReplicaSet(cache.Key(d), rs.Name)
		c.enqueue(d)
	}
}

// onPodDelete wakes a Recreate Deployment, which waits for its old Pods to
// be gone before it starts new ones.
func (c *Controller) onPodDelete(pod *api.Pod) {
	ref := pod.ControllerRef()
	if ref == nil || ref.Kind != "ReplicaSet" {
		return
	}
	rs, ok := c.replicaSets.Get(pod.Namespace, ref.Name)
	if !ok || rs.UID != ref.UID {
		return
	}
	if d := c.ownerOf(rs.Namespace, rs.ControllerRef()); d != nil && d.Spec.Strategy.Type == api.RecreateStrategy {
		c.enqueue(d)
	}
}

// ownerOf returns the cached Deployment ref points at, or nil.
func (c *Controller) ownerOf(namespace string, ref *api.OwnerReference) *api.Deployment {
	if ref == nil || ref.Kind != "Deployment" {
		return nil
	}
	d, ok := c.deployments.Get(namespace, ref.Name)
	if !ok || d.UID != ref.UID {
		return nil
	}
	return d
}

// enqueueAdopters queues the Deployments whose selector matches an orphan ReplicaSet.
func (c *Controller) enqueueAdopters(rs *api.ReplicaSet) {
	for _, d := range c.deployments.List(rs.Namespace) {
		if d.Spec.Selector.IsEmpty() {
			continue
		}
		if sel, err := api.LabelSelectorAsSelector(d.Spec.Selector); err == nil && sel.Matches(rs.Labels) {
			c.enqueue(d)
		}
	}
}

// reconcile takes the next step for one Deployment.
func (c *Controller) reconcile(ctx context.Context, key string) error {
	cached, ok := c.deployments.GetByKey(key)
	if !ok {
		c.writes.forget(key)
		c.ownWrites.forget(key)
		return nil // deleted; the garbage collector removes its ReplicaSets
	}
	s := &deploymentSync{
		Controller: c,
		key:        key,
		d:          c.ownWrites.freshest(key, cached),
		logger:     c.logger.With("deployment", key),
	}
	d := s.d

	if d.Spec.Selector.IsEmpty() {
		c.recorder.Event(d, api.EventWarning, ReasonSelectingAll,
			"This deployment is selecting all pods. A non-empty selector is required.")
		if d.Status.ObservedGeneration < d.Generation {
			d.Status.ObservedGeneration = d.Generation
			return s.updateStatus(ctx)
		}
		return nil
	}
	selector, err := api.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		s.logger.Error("invalid selector", "err", err) // validated by the API server: retrying cannot help
		return nil
	}
	rsList, err := s.claimReplicaSets(ctx, selector.Matches)
	if err != nil {
		return err
	}
	if !c.writes.caughtUp(key, func(name string) (int64, bool) {
		rs, ok := c.replicaSets.Get(d.Namespace, name)
		if !ok {
			return 0, false
		}
		return rs.Generation, true
	}) {
		// The cache misses one of our own ReplicaSet writes: deciding now
		// would count Pods twice or not at all. Its event brings us back.
		s.logger.Debug("waiting for the cache to show our ReplicaSet writes")
		return nil
	}

	switch {
	case d.DeletionTimestamp != nil:
		return s.syncStatusOnly(ctx, rsList)
	case d.Spec.Paused, isScalingEvent(d, rsList):
		return s.scale(ctx, rsList)
	case d.Spec.Strategy.Type == api.RecreateStrategy:
		return s.rolloutRecreate(ctx, rsList)
	default:
		return s.rolloutRolling(ctx, rsList)
	}
}

// deploymentSync is one sync of one Deployment. d is the Deployment as last
// read or written: each write replaces it with what the server returned,
// so that the next write carries the current resourceVersion.
type deploymentSync struct {
	*Controller
	key    string
	d      *api.Deployment
	logger *slog.Logger
}

// claimReplicaSets returns the ReplicaSets the Deployment controls, after
// adopting matching orphans and releasing its own that no longer match.
func (s *deploymentSync) claimReplicaSets(ctx context.Context, matches func(map[string]string) bool) ([]*api.ReplicaSet, error) {
	d := s.d
	var claimed []*api.ReplicaSet
	var errs []error
	canAdopt := sync.OnceValue(func() error { return s.checkCanAdopt(ctx) })
	for _, rs := range s.replicaSets.List(d.Namespace) {
		ref := rs.ControllerRef()
		switch {
		case ref != nil && ref.UID != d.UID:
			// Another controller's ReplicaSet.
		case ref != nil && matches(rs.Labels):
			claimed = append(claimed, rs)
		case ref != nil:
			if err := s.releaseReplicaSet(ctx, rs); err != nil {
				errs = append(errs, err)
			}
		case d.DeletionTimestamp != nil || rs.DeletionTimestamp != nil || !matches(rs.Labels):
			// An orphan that is not ours to take.
		default:
			if err := canAdopt(); err != nil {
				errs = append(errs, err)
				continue
			}
			adopted, err := s.adoptReplicaSet(ctx, rs)
			if err != nil {
				errs = append(errs, err)
			} else if adopted != nil {
				claimed = append(claimed, adopted)
			}
		}
	}
	return claimed, errors.Join(errs...)
}

// checkCanAdopt re-reads the Deployment before the first adoption: the
// cache may hold one that was deleted, or recreated under the same name.
func (s *deploymentSync) checkCanAdopt(ctx context.Context) error {
	fresh, err := client.For[api.Deployment](s.client, s.d.Namespace).Get(ctx, s.d.Name)
	if err != nil {
		return fmt.Errorf("checking Deployment %s before adopting: %w", s.key, err)
	}
	if fresh.UID != s.d.UID {
		return fmt.Errorf("deployment %s was recreated (uid %s, cached %s); not adopting", s.key, fresh.UID, s.d.UID)
	}
	if fresh.DeletionTimestamp != nil {
		return fmt.Errorf("deployment %s is being deleted; not adopting", s.key)
	}
	return nil
}

func (s *deploymentSync) adoptReplicaSet(ctx context.Context, cached *api.ReplicaSet) (*api.ReplicaSet, error) {
	rs := api.DeepCopy(cached)
	rs.OwnerReferences = append(rs.OwnerReferences, controllerRef(s.d))
	adopted, err := client.For[api.ReplicaSet](s.client, rs.Namespace).Update(ctx, rs)
	if api.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("adopting ReplicaSet %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	s.logger.Info("adopted ReplicaSet", "replicaSet", rs.Name)
	return adopted, nil
}

func (s *deploymentSync) releaseReplicaSet(ctx context.Context, cached *api.ReplicaSet) error {
	rs := api.DeepCopy(cached)
	kept := rs.OwnerReferences[:0]
	for _, ref := range rs.OwnerReferences {
		if ref.UID != s.d.UID {
			kept = append(kept, ref)
		}
	}
	rs.OwnerReferences = kept
	_, err := client.For[api.ReplicaSet](s.client, rs.Namespace).Update(ctx, rs)
	if api.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("releasing ReplicaSet %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	s.logger.Info("released ReplicaSet", "replicaSet", rs.Name)
	return nil
}

// updateDeployment writes s.d (its metadata: annotations) and keeps what
// the server returned.
func (s *deploymentSync) updateDeployment(ctx context.Context) error {
	updated, err := client.For[api.Deployment](s.client, s.d.Namespace).Update(ctx, s.d)
	if err != nil {
		return fmt.Errorf("updating Deployment %s: %w", s.key, err)
	}
	s.ownWrites.record(s.key, s.d.ResourceVersion, updated)
	s.d = updated
	return nil
}

// updateStatus writes s.d's status and keeps what the server returned.
func (s *deploymentSync) updateStatus(ctx context.Context) error {
	updated, err := client.For[api.Deployment](s.client, s.d.Namespace).UpdateStatus(ctx, s.d)
	if err != nil {
		return fmt.Errorf("updating status of Deployment %s: %w", s.key, err)
	}
	s.ownWrites.record(s.key, s.d.ResourceVersion, updated)
	s.d = updated
	return nil
}

// controllerRef is the owner reference a Deployment puts on its ReplicaSets.
func controllerRef(d *api.Deployment) api.OwnerReference {
	return api.OwnerReference{
		APIVersion:         "apps/v1",
		Kind:               "Deployment",
		Name:               d.Name,
		UID:                d.UID,
		Controller:         api.Ptr(true),
		BlockOwnerDeletion: api.Ptr(true),
	}
}
