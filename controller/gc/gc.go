// Package gc is the garbage collector: it deletes objects whose owners
// (metadata.ownerReferences) are gone, as Kubernetes' garbage collector does.
//
//   - Background deletion (the default): the owner goes at once; its
//     dependents, now without an owner that exists, are deleted next, and
//     theirs after them (Deployment → ReplicaSets → Pods).
//   - Orphan (`--cascade=orphan`): the API server keeps the owner with the
//     "orphan" finalizer; the collector removes the owner's references from
//     its dependents, then the finalizer, and the owner goes alone.
//   - Foreground: the API server keeps the owner with the
//     "foregroundDeletion" finalizer; the collector deletes its dependents,
//     waits until those that block their owner's deletion are gone, then
//     removes the finalizer.
//
// Owners are looked up by uid, in the caches first; an owner missing from
// a cache is confirmed missing with the API server before anything is
// deleted, because a cache may not yet hold a just-created owner.
package gc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/api/client/cache"
	"kubelite/api/client/workqueue"
	"kubelite/controller"
)

// Finalizers the API server adds for the propagation policies.
const (
	FinalizerOrphan     = "orphan"
	FinalizerForeground = "foregroundDeletion"
)

const (
	// ControllerName names the collector in logs.
	ControllerName = "garbage-collector"
	// DefaultRecheckInterval is how often an owner waiting for its
	// dependents is looked at again (deletes also trigger it at once).
	DefaultRecheckInterval = 2 * time.Second
	// maxWriteAttempts bounds the read-modify-write retries on conflicts.
	maxWriteAttempts = 5
)

// Config tunes the collector. The zero value is usable.
type Config struct {
	RecheckInterval time.Duration
	Logger          *slog.Logger
}

// Controller is the garbage collector.
type Controller struct {
	apiClient *client.Client
	scheme    *api.Scheme
	kinds     map[string]*watchedKind // by Kind
	kindOrder []*watchedKind
	queue     *workqueue.Queue
	recheck   time.Duration
	logger    *slog.Logger
}

// New builds the collector over every kind the shared informers watch and
// registers its handlers; call it before the informers run. It records no
// Events (Kubernetes' collector does not either), so rec is unused.
func New(c *client.Client, inf *controller.Informers, _ controller.EventRecorder, cfg Config) *Controller {
	logger := controller.Logger(cfg.Logger, ControllerName)
	gc := &Controller{
		apiClient: c,
		scheme:    api.NewScheme(),
		kinds:     map[string]*watchedKind{},
		queue:     workqueue.New(workqueue.WithLogger(logger)),
		recheck:   cfg.RecheckInterval,
		logger:    logger,
	}
	if gc.recheck <= 0 {
		gc.recheck = DefaultRecheckInterval
	}
	watch(gc, inf.Namespaces)
	watch(gc, inf.Nodes)
	watch(gc, inf.Pods)
	watch(gc, inf.Services)
	watch(gc, inf.Endpoints)
	watch(gc, inf.Deployments)
	watch(gc, inf.ReplicaSets)
	watch(gc, inf.Leases)
	return gc
}

// Run waits for every cache, then collects until ctx ends.
func (gc *Controller) Run(ctx context.Context, workers int) {
	gc.logger.Info("starting", "workers", workers)
	defer gc.logger.Info("stopped")
	synced := make([]cache.Syncer, len(gc.kindOrder))
	for i, k := range gc.kindOrder {
		synced[i] = k.synced
	}
	if !cache.WaitForCacheSync(ctx, synced...) {
		return
	}
	gc.queue.Run(ctx, workers, gc.sync)
}

// itemKey is the queue key of an object: "Kind/namespace/name" or "Kind/name".
func itemKey(resource *api.Resource, obj api.Object) string {
	return resource.Kind + "/" + cache.Key(obj)
}

// onChange queues an object that has owners or owner finalizers to run, and
// the dependents of an object that just started being deleted.
func (gc *Controller) onChange(kind *watchedKind, old, obj api.Object) {
	meta := obj.GetObjectMeta()
	if len(meta.OwnerReferences) > 0 || hasCollectorFinalizer(meta) {
		gc.queue.Add(itemKey(kind.resource, obj))
	}
	if meta.DeletionTimestamp != nil && (old == nil || old.GetObjectMeta().DeletionTimestamp == nil) {
		gc.enqueueDependents(obj)
	}
}

// onDelete queues the dependents of a deleted object (their owner is gone)
// and its owners (one may be waiting for it in the foreground).
func (gc *Controller) onDelete(obj api.Object) {
	gc.enqueueDependents(obj)
	meta := obj.GetObjectMeta()
	for _, ref := range meta.OwnerReferences {
		if resource, ok := gc.resourceOf(ref); ok {
			if _, watched := gc.kinds[resource.Kind]; watched {
				gc.queue.Add(resource.Kind + "/" + joinKey(ownerNamespace(resource, meta.Namespace), ref.Name))
			}
		}
	}
}

func (gc *Controller) enqueueDependents(owner api.Object) {
	for _, dep := range gc.cachedDependents(owner) {
		gc.queue.Add(dep)
	}
}

// cachedDependents returns the queue keys of the cached objects that name
// owner (by uid) among their owners: in its namespace, or anywhere for a
// cluster-scoped owner.
func (gc *Controller) cachedDependents(owner api.Object) []string {
	meta := owner.GetObjectMeta()
	var keys []string
	for _, kind := range gc.kindOrder {
		for _, obj := range kind.list(meta.Namespace, func(o api.Object) bool { return ownedBy(o.GetObjectMeta(), meta.UID) }) {
			keys = append(keys, itemKey(kind.resource, obj))
		}
	}
	return keys
}

// sync looks at one object: runs its orphan or foreground finalizer if it
// is being deleted with one, or else decides its fate from its owners.
func (gc *Controller) sync(ctx context.Context, key string) error {
	kindName, objectKey, _ := strings.Cut(key, "/")
	kind, ok := gc.kinds[kindName]
	if !ok {
		return nil
	}
	namespace, name := cache.SplitKey(objectKey)
	obj, ok := kind.get(namespace, name)
	if !ok {
		return nil
	}
	meta := obj.GetObjectMeta()
	if meta.DeletionTimestamp != nil {
		switch {
		case slices.Contains(meta.Finalizers, FinalizerOrphan):
			return gc.orphanDependents(ctx, kind.resource, meta)
		case slices.Contains(meta.Finalizers, FinalizerForeground):
			return gc.deleteDependentsFirst(ctx, key, kind.resource, meta)
		}
		return nil // being deleted already: nothing to collect
	}
	if len(meta.OwnerReferences) == 0 {
		return nil
	}

	states := make(map[string]OwnerState, len(meta.OwnerReferences))
	ownerWaits := false
	for _, ref := range meta.OwnerReferences {
		state, err := gc.ownerState(ctx, namespace, ref)
		if err != nil {
			return err
		}
		states[ref.UID] = state
		ownerWaits = ownerWaits || state == OwnerDeletingDependents
	}
	// Whether the object has dependents matters only to an owner waiting
	// for them, and then it is asked of the API server: a cache may not
	// show a dependent created a moment ago.
	hasDependents := false
	if ownerWaits {
		objects, err := gc.liveObjects(ctx, kind.resource, meta.Namespace)
		if err != nil {
			return err
		}
		hasDependents = len(dependentsOf(objects, meta.UID)) > 0
	}
	decision := Decide(meta.OwnerReferences, states, hasDependents)
	switch decision.Action {
	case RemoveReferences:
		gc.logger.Info("removing references to gone owners", "object", key, "owners", decision.DropOwners)
		return gc.removeOwnerReferences(ctx, kind.resource, meta, decision.DropOwners)
	case DeleteBackground:
		return gc.deleteOwnerless(ctx, key, kind.resource, meta, "Background")
	case DeleteForeground:
		return gc.deleteOwnerless(ctx, key, kind.resource, meta, "Foreground")
	}
	return nil
}

// ownerState finds out whether the owner ref points at still exists.
func (gc *Controller) ownerState(ctx context.Context, dependentNamespace string, ref api.OwnerReference) (OwnerState, error) {
	resource, ok := gc.resourceOf(ref)
	if !ok {
		return OwnerUnresolvable, nil
	}
	namespace := ownerNamespace(resource, dependentNamespace)
	if kind, watched := gc.kinds[resource.Kind]; watched {
		if owner, ok := kind.get(namespace, ref.Name); ok && owner.GetObjectMeta().UID == ref.UID {
			return stateOf(owner.GetObjectMeta()), nil
		}
	}
	// Not in the cache, or another object of that name: ask the API server,
	// which may know an owner the cache has not seen yet.
	owner, err := gc.liveMetadata(ctx, resource, namespace, ref.Name)
	switch {
	case api.IsNotFound(err):
		return OwnerAbsent, nil
	case err != nil:
		return 0, fmt.Errorf("looking up owner %s %s: %w", ref.Kind, joinKey(namespace, ref.Name), err)
	case owner.UID != ref.UID:
		return OwnerAbsent, nil // a namesake replaced it
	}
	return stateOf(owner), nil
}

func stateOf(owner *api.ObjectMeta) OwnerState {
	if owner.DeletionTimestamp != nil && slices.Contains(owner.Finalizers, FinalizerForeground) {
		return OwnerDeletingDependents
	}
	return OwnerExists
}

// deleteOwnerless deletes an object whose owners are gone, after checking
// with the API server that it still names exactly the owners decided on;
// the delete is conditional on that version.
func (gc *Controller) deleteOwnerless(ctx context.Context, key string, resource *api.Resource, cached *api.ObjectMeta, policy string) error {
	live, err := gc.liveMetadata(ctx, resource, cached.Namespace, cached.Name)
	if api.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", key, err)
	}
	if live.UID != cached.UID || !sameOwners(live.OwnerReferences, cached.OwnerReferences) {
		gc.queue.Add(key) // changed since the cache saw it: decide again
		return nil
	}
	gc.logger.Info("deleting object whose owners are gone", "object", key, "propagation", policy)
	_, err = gc.apiClient.Resource(resource, cached.Namespace).Delete(ctx, cached.Name,
		client.DeleteOptions{PropagationPolicy: policy, ResourceVersion: live.ResourceVersion})
	if err != nil && !api.IsNotFound(err) {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	return nil
}

func sameOwners(a, b []api.OwnerReference) bool {
	return slices.EqualFunc(a, b, func(x, y api.OwnerReference) bool { return x.UID == y.UID })
}

// orphanDependents runs the orphan finalizer: every dependent loses its
// reference to the owner, then the owner loses the finalizer.
func (gc *Controller) orphanDependents(ctx context.Context, resource *api.Resource, owner *api.ObjectMeta) error {
	objects, err := gc.liveObjects(ctx, resource, owner.Namespace)
	if err != nil {
		return err
	}
	dependents := dependentsOf(objects, owner.UID)
	for _, dep := range dependents {
		if err := gc.removeOwnerReferences(ctx, dep.resource, &dep.meta, []string{owner.UID}); err != nil {
			return err
		}
	}
	gc.logger.Info("orphaned dependents", "owner", resource.Kind+"/"+joinKey(owner.Namespace, owner.Name), "dependents", len(dependents))
	return gc.removeFinalizer(ctx, resource, owner, FinalizerOrphan)
}

// deleteDependentsFirst runs the foreground finalizer: it deletes the
// owner's dependents and, once none that blocks the owner is left, removes
// the finalizer.
func (gc *Controller) deleteDependentsFirst(ctx context.Context, key string, resource *api.Resource, owner *api.ObjectMeta) error {
	objects, err := gc.liveObjects(ctx, resource, owner.Namespace)
	if err != nil {
		return err
	}
	blocking := 0
	for _, dep := range dependentsOf(objects, owner.UID) {
		stillThere := true
		if dep.meta.DeletionTimestamp == nil {
			policy := "Background"
			if len(dependentsOf(objects, dep.meta.UID)) > 0 {
				policy = "Foreground" // the wait reaches down the chain
			}
			answer, err := gc.apiClient.Resource(dep.resource, dep.meta.Namespace).Delete(ctx, dep.meta.Name,
				client.DeleteOptions{PropagationPolicy: policy, ResourceVersion: dep.meta.ResourceVersion})
			switch {
			case api.IsNotFound(err):
				stillThere = false
			case err != nil:
				return fmt.Errorf("deleting dependent %s %s of %s: %w", dep.resource.Kind, joinKey(dep.meta.Namespace, dep.meta.Name), key, err)
			default:
				stillThere = lingers(answer)
			}
		}
		if stillThere && blocks(&dep.meta, owner.UID) {
			blocking++
		}
	}
	if blocking > 0 {
		gc.logger.Debug("waiting for blocking dependents to go", "owner", key, "blocking", blocking)
		gc.queue.AddAfter(key, gc.recheck)
		return nil
	}
	return gc.removeFinalizer(ctx, resource, owner, FinalizerForeground)
}

// lingers reports whether the answer to a delete is an object kept for a
// graceful deletion or finalizers, rather than a Status or the removed object.
func lingers(answer []byte) bool {
	var reply struct {
		Kind     string         `json:"kind"`
		Metadata api.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(answer, &reply); err != nil {
		return true // unknown: count it; the next look tells
	}
	return reply.Kind != "Status" && reply.Metadata.DeletionTimestamp != nil
}

// liveObject is an object found through the API server.
type liveObject struct {
	resource *api.Resource
	meta     api.ObjectMeta
}

// liveObjects lists, through the API server rather than the caches (a
// finalizer must not miss a dependent created a moment ago), the objects
// of every watched kind that an object of resource in namespace may own:
// those in its namespace, or all of them for a cluster-scoped owner.
func (gc *Controller) liveObjects(ctx context.Context, resource *api.Resource, namespace string) ([]liveObject, error) {
	var found []liveObject
	for _, kind := range gc.kindOrder {
		if resource.Namespaced && !kind.resource.Namespaced {
			continue // a namespaced owner cannot own cluster-scoped objects
		}
		items, err := gc.listMetadata(ctx, kind.resource, namespace)
		if err != nil {
			return nil, err
		}
		for _, meta := range items {
			found = append(found, liveObject{resource: kind.resource, meta: meta})
		}
	}
	return found, nil
}

// dependentsOf returns the objects that name ownerUID among their owners.
func dependentsOf(objects []liveObject, ownerUID string) []liveObject {
	var dependents []liveObject
	for _, o := range objects {
		if ownedBy(&o.meta, ownerUID) {
			dependents = append(dependents, o)
		}
	}
	return dependents
}

// removeOwnerReferences drops the references to the given owner uids from
// an object, unless it changed identity meanwhile.
func (gc *Controller) removeOwnerReferences(ctx context.Context, resource *api.Resource, meta *api.ObjectMeta, ownerUIDs []string) error {
	return gc.updateMetadata(ctx, resource, meta, func(m *api.ObjectMeta) bool {
		before := len(m.OwnerReferences)
		m.OwnerReferences = slices.DeleteFunc(m.OwnerReferences, func(ref api.OwnerReference) bool {
			return slices.Contains(ownerUIDs, ref.UID)
		})
		return len(m.OwnerReferences) != before
	})
}

// removeFinalizer drops finalizer from an object; when it was the last one
// of an object being deleted, the API server completes the delete.
func (gc *Controller) removeFinalizer(ctx context.Context, resource *api.Resource, meta *api.ObjectMeta, finalizer string) error {
	return gc.updateMetadata(ctx, resource, meta, func(m *api.ObjectMeta) bool {
		before := len(m.Finalizers)
		m.Finalizers = slices.DeleteFunc(m.Finalizers, func(f string) bool { return f == finalizer })
		return len(m.Finalizers) != before
	})
}

var errTooManyConflicts = errors.New("too many conflicting writes")

// updateMetadata changes an object's metadata with a read-modify-write
// through the API server, on the raw JSON so that every kind (and every
// field kubelite's types may not know) survives. mutate reports whether it
// changed anything. A vanished or replaced object is left alone.
func (gc *Controller) updateMetadata(ctx context.Context, resource *api.Resource, target *api.ObjectMeta, mutate func(*api.ObjectMeta) bool) error {
	objects := gc.apiClient.Resource(resource, target.Namespace)
	what := resource.Kind + " " + joinKey(target.Namespace, target.Name)
	for range maxWriteAttempts {
		raw, err := objects.Get(ctx, target.Name)
		if api.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", what, err)
		}
		var doc map[string]json.RawMessage
		var meta api.ObjectMeta
		if err := json.Unmarshal(raw, &doc); err != nil {
			return fmt.Errorf("decoding %s: %w", what, err)
		}
		if err := json.Unmarshal(doc["metadata"], &meta); err != nil {
			return fmt.Errorf("decoding the metadata of %s: %w", what, err)
		}
		if meta.UID != target.UID || !mutate(&meta) {
			return nil
		}
		if doc["metadata"], err = json.Marshal(&meta); err != nil {
			return fmt.Errorf("encoding the metadata of %s: %w", what, err)
		}
		body, err := json.Marshal(doc)
		if err != nil {
			return fmt.Errorf("encoding %s: %w", what, err)
		}
		_, err = objects.Update(ctx, "", target.Name, body, client.WriteOptions{})
		switch {
		case err == nil, api.IsNotFound(err):
			return nil
		case api.IsConflict(err):
			continue
		default:
			return fmt.Errorf("updating %s: %w", what, err)
		}
	}
	return fmt.Errorf("updating %s: %w", what, errTooManyConflicts)
}

// liveMetadata reads an object's metadata from the API server.
func (gc *Controller) liveMetadata(ctx context.Context, resource *api.Resource, namespace, name string) (*api.ObjectMeta, error) {
	raw, err := gc.apiClient.Resource(resource, namespace).Get(ctx, name)
	if err != nil {
		return nil, err
	}
	var obj struct {
		Metadata api.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("decoding %s %s: %w", resource.Kind, joinKey(namespace, name), err)
	}
	return &obj.Metadata, nil
}

// listMetadata lists the metadata of every object of a resource in
// namespace ("" = all namespaces).
func (gc *Controller) listMetadata(ctx context.Context, resource *api.Resource, namespace string) ([]api.ObjectMeta, error) {
	raw, err := gc.apiClient.Resource(resource, namespace).List(ctx, client.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", resource.GroupResource(), err)
	}
	var list struct {
		Items []struct {
			Metadata api.ObjectMeta `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("decoding the list of %s: %w", resource.GroupResource(), err)
	}
	metas := make([]api.ObjectMeta, len(list.Items))
	for i := range list.Items {
		metas[i] = list.Items[i].Metadata
	}
	return metas, nil
}

// resourceOf finds the resource an owner reference points at, accepting
// the legacy apiVersions kubelite converts (extensions/v1beta1...).
func (gc *Controller) resourceOf(ref api.OwnerReference) (*api.Resource, bool) {
	resource, _, ok := gc.scheme.ByKind(ref.APIVersion, ref.Kind)
	return resource, ok
}

// ownerNamespace is where an owner of a dependent in namespace lives.
func ownerNamespace(owner *api.Resource, dependentNamespace string) string {
	if owner.Namespaced {
		return dependentNamespace
	}
	return ""
}

func hasCollectorFinalizer(meta *api.ObjectMeta) bool {
	return slices.Contains(meta.Finalizers, FinalizerOrphan) || slices.Contains(meta.Finalizers, FinalizerForeground)
}

func joinKey(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}
