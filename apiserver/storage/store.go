// Package storage keeps API objects in etcd under /registry/<resource>/<namespace>/<name>.
//
// resourceVersion is etcd's modification revision of the key: it is never
// stored inside the value, but set on every object read back. Updates are
// compare-and-swap on that revision, so concurrent writers never lose an update.
package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"kubelite/api"
)

// watchBufferSize is how many translated events a watch holds for a slow
// reader before it stops taking more from etcd (Kubernetes uses 100 too).
const watchBufferSize = 100

// Predicate decides whether an object is part of a list or watch
// (label and field selectors). nil matches everything.
type Predicate func(api.Object) bool

// matches applies p; nil matches everything.
func (p Predicate) matches(obj api.Object) bool { return p == nil || p(obj) }

// Event is one change seen by a watch. For Deleted, Object is the last state
// (with ResourceVersion set to the deletion revision).
type Event struct {
	Type   api.EventType
	Object api.Object
	// Err is set on a final event when the watch fails (e.g. compaction: a
	// *api.Status with reason Expired / code 410).
	Err error
}

// Store is the etcd-backed storage shared by every resource.
type Store struct {
	client *clientv3.Client
	prefix string // "/registry", without a trailing slash
	logger *slog.Logger
}

// New returns a Store over an etcd client; keys are prefixed with prefix ("/registry").
func New(cli *clientv3.Client, prefix string) *Store {
	return &Store{
		client: cli,
		prefix: strings.TrimSuffix(prefix, "/"),
		logger: slog.Default().With("component", "storage"),
	}
}

// For returns the store of one resource.
func (s *Store) For(r *api.Resource) *ResourceStore {
	return &ResourceStore{
		store:      s,
		client:     s.client,
		resource:   r,
		objectType: reflect.TypeOf(r.New()),
		keyPrefix:  s.prefix + "/" + r.Plural + "/",
		logger:     s.logger.With("resource", r.GroupResource()),
	}
}

// ResourceStore reads and writes the objects of one resource.
type ResourceStore struct {
	store    *Store
	client   *clientv3.Client
	resource *api.Resource
	// objectType is the Go type of the resource's objects, e.g. *api.Pod.
	objectType reflect.Type
	// keyPrefix is "/registry/pods/": the trailing slash keeps "pods" from
	// matching "podtemplates".
	keyPrefix string
	logger    *slog.Logger
}

// Create stores a new object (namespace and name from its metadata) and
// returns it with ResourceVersion set. Fails with api.NewAlreadyExists.
func (s *ResourceStore) Create(ctx context.Context, obj api.Object) (api.Object, error) {
	if err := s.checkType(obj); err != nil {
		return nil, err
	}
	meta := obj.GetObjectMeta()
	if meta.ResourceVersion != "" {
		return nil, api.NewBadRequest("resourceVersion should not be set on objects to be created")
	}
	key, err := s.objectKey(meta.Namespace, meta.Name)
	if err != nil {
		return nil, err
	}
	data, err := s.encode(obj)
	if err != nil {
		return nil, err
	}

	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(data))).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	if !resp.Succeeded {
		return nil, api.NewAlreadyExists(s.resource.Group, s.resource.Plural, meta.Name)
	}
	return s.decode(data, resp.Header.Revision)
}

// Get returns one object or api.NewNotFound.
func (s *ResourceStore) Get(ctx context.Context, ns, name string) (api.Object, error) {
	key, err := s.objectKey(ns, name)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, api.NewNotFound(s.resource.Group, s.resource.Plural, name)
	}
	kv := resp.Kvs[0]
	return s.decode(kv.Value, kv.ModRevision)
}

// List returns the objects in namespace ns ("" = all namespaces, or a
// cluster-scoped resource) that match pred, sorted by namespace/name, and the
// revision the list was read at (a watch from that revision misses nothing).
func (s *ResourceStore) List(ctx context.Context, ns string, pred Predicate) ([]api.Object, int64, error) {
	prefix, err := s.collectionKey(ns)
	if err != nil {
		return nil, 0, err
	}
	// One range read is one consistent snapshot; etcd sorts it by key.
	resp, err := s.client.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", prefix, err)
	}
	items := make([]api.Object, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		obj, err := s.decode(kv.Value, kv.ModRevision)
		if err != nil {
			return nil, 0, fmt.Errorf("list %s: %s: %w", prefix, kv.Key, err)
		}
		if pred.matches(obj) {
			items = append(items, obj)
		}
	}
	return items, resp.Header.Revision, nil
}

// Update reads the current object, calls tryUpdate with a private copy of it
// and writes the result if the object did not change meanwhile; on a
// concurrent change it re-reads and calls tryUpdate again. tryUpdate may
// return an error (e.g. api.NewConflict when the caller's resourceVersion is
// stale) to abort. Fails with api.NewNotFound when the object does not exist.
//
// When the result encodes exactly as the stored object, nothing is written
// and the current object (with its resourceVersion) is returned, as
// Kubernetes does for a no-op update.
func (s *ResourceStore) Update(ctx context.Context, ns, name string, tryUpdate func(current api.Object) (api.Object, error)) (api.Object, error) {
	key, err := s.objectKey(ns, name)
	if err != nil {
		return nil, err
	}
	getResp, err := s.client.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", key, err)
	}
	kvs := getResp.Kvs

	for {
		if len(kvs) == 0 {
			return nil, api.NewNotFound(s.resource.Group, s.resource.Plural, name)
		}
		current := kvs[0]
		// A fresh decode is the private copy tryUpdate may change freely.
		currentObj, err := s.decode(current.Value, current.ModRevision)
		if err != nil {
			return nil, fmt.Errorf("update %s: %w", key, err)
		}
		updated, err := tryUpdate(currentObj)
		if err != nil {
			return nil, err // the caller's own verdict, e.g. a Conflict Status
		}
		if err := s.checkSameKey(key, updated); err != nil {
			return nil, err
		}
		data, err := s.encode(updated)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(data, current.Value) {
			return s.decode(current.Value, current.ModRevision)
		}

		resp, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", current.ModRevision)).
			Then(clientv3.OpPut(key, string(data))).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return nil, fmt.Errorf("update %s: %w", key, err)
		}
		if resp.Succeeded {
			return s.decode(data, resp.Header.Revision)
		}
		// Someone else wrote first: start again from what they wrote.
		kvs = resp.Responses[0].GetResponseRange().Kvs
	}
}

// Delete removes an object and returns its last state. If
// preconditionRV is non-empty the delete only happens at that
// resourceVersion (else api.NewConflict).
func (s *ResourceStore) Delete(ctx context.Context, ns, name string, preconditionRV string) (api.Object, error) {
	key, err := s.objectKey(ns, name)
	if err != nil {
		return nil, err
	}
	if preconditionRV == "" {
		resp, err := s.client.Delete(ctx, key, clientv3.WithPrevKV())
		if err != nil {
			return nil, fmt.Errorf("delete %s: %w", key, err)
		}
		if len(resp.PrevKvs) == 0 {
			return nil, api.NewNotFound(s.resource.Group, s.resource.Plural, name)
		}
		return s.decode(resp.PrevKvs[0].Value, resp.Header.Revision)
	}

	wantRev, err := parseResourceVersion(preconditionRV)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", wantRev)).
		Then(clientv3.OpDelete(key, clientv3.WithPrevKV())).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("delete %s: %w", key, err)
	}
	if resp.Succeeded {
		prev := resp.Responses[0].GetResponseDeleteRange().PrevKvs
		if len(prev) == 0 {
			// Unreachable: the compare only holds for an existing key.
			return nil, api.NewNotFound(s.resource.Group, s.resource.Plural, name)
		}
		return s.decode(prev[0].Value, resp.Header.Revision)
	}
	current := resp.Responses[0].GetResponseRange().Kvs
	if len(current) == 0 {
		return nil, api.NewNotFound(s.resource.Group, s.resource.Plural, name)
	}
	return nil, api.NewConflict(s.resource.Group, s.resource.Plural, name, fmt.Errorf(
		"the ResourceVersion in the precondition (%s) does not match the ResourceVersion in record (%d). The object might have been modified",
		preconditionRV, current[0].ModRevision))
}

// Watch streams every change after revision fromRV (0 = from now) in
// namespace ns ("" = all) for objects matching pred: an object that starts
// to match is ADDED, one that stops matching is DELETED. A fromRV older than
// the compacted revision fails at once with api.NewGone (410). The channel
// closes when ctx ends or on error (the last Event then carries Err).
func (s *ResourceStore) Watch(ctx context.Context, ns string, fromRV int64, pred Predicate) (<-chan Event, error) {
	if fromRV < 0 {
		return nil, api.NewBadRequest(fmt.Sprintf("invalid resource version %d", fromRV))
	}
	prefix, err := s.collectionKey(ns)
	if err != nil {
		return nil, err
	}
	fromNow := fromRV == 0
	if fromNow {
		if fromRV, err = s.store.CurrentRevision(ctx); err != nil {
			return nil, fmt.Errorf("watch %s: %w", prefix, err)
		}
	}

	// Without a leader, etcd would keep the watch open but silent; with
	// WithRequireLeader it cancels the watch and we report the error.
	watchCtx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	etcdEvents := s.client.Watch(watchCtx, prefix,
		clientv3.WithPrefix(), clientv3.WithRev(fromRV+1), clientv3.WithPrevKV())
	if !fromNow {
		if err := s.checkHistory(watchCtx, fromRV, etcdEvents); err != nil {
			cancel()
			return nil, err
		}
	}

	events := make(chan Event, watchBufferSize)
	go func() {
		defer cancel() // ends the etcd watch
		defer close(events)
		s.forwardEvents(watchCtx, etcdEvents, fromRV, pred, events)
	}()
	return events, nil
}

// checkHistory fails with Gone when etcd no longer has the revisions after
// fromRV that a watch from fromRV+1 needs. The watch itself then reports the
// compacted revision first thing, which the message names, as Kubernetes'
// does.
func (s *ResourceStore) checkHistory(ctx context.Context, fromRV int64, etcdEvents clientv3.WatchChan) error {
	// Reading at fromRV settles the usual case in one round trip (fromRV is
	// then not a future revision, which etcd would complain about); only
	// when fromRV itself is compacted does a read at fromRV+1 decide.
	for _, rev := range []int64{fromRV, fromRV + 1} {
		compacted, err := s.isCompacted(ctx, rev)
		if err != nil {
			return fmt.Errorf("watch %s: check revision %d: %w", s.keyPrefix, rev, err)
		}
		if !compacted {
			return nil
		}
	}
	select {
	case resp, open := <-etcdEvents:
		if !open {
			return fmt.Errorf("watch %s: etcd watch closed", s.keyPrefix)
		}
		return tooOldResourceVersion(fromRV, resp.CompactRevision)
	case <-ctx.Done():
		return fmt.Errorf("watch %s: %w", s.keyPrefix, context.Cause(ctx))
	}
}

// isCompacted reports whether etcd has discarded revision rev.
func (s *ResourceStore) isCompacted(ctx context.Context, rev int64) (bool, error) {
	_, err := s.client.Get(ctx, s.keyPrefix, clientv3.WithRev(rev), clientv3.WithCountOnly())
	switch {
	case err == nil, errors.Is(err, rpctypes.ErrFutureRev):
		return false, nil // a watch from the future simply waits for it
	case errors.Is(err, rpctypes.ErrCompacted):
		return true, nil
	default:
		return false, err
	}
}

// forwardEvents translates etcd's watch responses into Events until ctx
// ends or the etcd watch fails; a failure is sent as a final Event.
func (s *ResourceStore) forwardEvents(ctx context.Context, etcdEvents clientv3.WatchChan, fromRV int64, pred Predicate, events chan<- Event) {
	send := func(e Event) bool {
		select {
		case events <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}
	lastRev := fromRV // the newest revision the reader has seen
	for {
		var resp clientv3.WatchResponse
		var open bool
		select {
		case <-ctx.Done():
			return
		case resp, open = <-etcdEvents:
		}
		switch {
		case !open:
			// etcd closes a watch channel without a word only when the
			// client is closed (or ctx ended, checked above).
			if ctx.Err() == nil {
				send(Event{Type: api.Error, Err: fmt.Errorf("watch %s: etcd watch closed", s.keyPrefix)})
			}
			return
		case resp.CompactRevision != 0:
			send(Event{Type: api.Error, Err: tooOldResourceVersion(lastRev, resp.CompactRevision)})
			return
		case resp.Err() != nil:
			send(Event{Type: api.Error, Err: fmt.Errorf("watch %s: %w", s.keyPrefix, resp.Err())})
			return
		}

		for _, etcdEvent := range resp.Events {
			lastRev = etcdEvent.Kv.ModRevision
			event, ok, err := s.translate(etcdEvent, pred)
			if err != nil {
				// One undecodable value must not stop every watch of the
				// resource; the same object fails loudly on List and Get.
				s.logger.Error("skipping undecodable watch event", "key", string(etcdEvent.Kv.Key), "revision", lastRev, "err", err)
				continue
			}
			if ok && !send(event) {
				return
			}
		}
	}
}

// translate turns one etcd event into the Event a reader filtering with
// pred sees, if any: the predicate is applied to the old and the new state,
// so an object entering the filtered set is ADDED and one leaving it is
// DELETED (with its new state).
func (s *ResourceStore) translate(e *clientv3.Event, pred Predicate) (Event, bool, error) {
	if e.Type == clientv3.EventTypeDelete {
		if e.PrevKv == nil {
			return Event{}, false, errors.New("delete event without the previous value")
		}
		// ModRevision of a delete event is the deletion revision.
		last, err := s.decode(e.PrevKv.Value, e.Kv.ModRevision)
		if err != nil {
			return Event{}, false, err
		}
		return Event{Type: api.Deleted, Object: last}, pred.matches(last), nil
	}

	current, err := s.decode(e.Kv.Value, e.Kv.ModRevision)
	if err != nil {
		return Event{}, false, err
	}
	matchesNow := pred.matches(current)
	matchedBefore := false
	if !e.IsCreate() && e.PrevKv != nil {
		if pred == nil {
			matchedBefore = true
		} else {
			previous, err := s.decode(e.PrevKv.Value, e.PrevKv.ModRevision)
			if err != nil {
				return Event{}, false, err
			}
			matchedBefore = pred(previous)
		}
	}
	switch {
	case matchesNow && matchedBefore:
		return Event{Type: api.Modified, Object: current}, true, nil
	case matchesNow:
		return Event{Type: api.Added, Object: current}, true, nil
	case matchedBefore:
		return Event{Type: api.Deleted, Object: current}, true, nil
	default:
		return Event{}, false, nil
	}
}

// tooOldResourceVersion is the 410 of a watch whose history was compacted,
// worded as Kubernetes words it.
func tooOldResourceVersion(rv, compactedRev int64) *api.Status {
	if compactedRev == 0 {
		return api.NewGone(fmt.Sprintf("too old resource version: %d", rv))
	}
	return api.NewGone(fmt.Sprintf("too old resource version: %d (%d)", rv, compactedRev))
}

// CurrentRevision returns etcd's current revision.
func (s *Store) CurrentRevision(ctx context.Context) (int64, error) {
	// A linearizable count-only read of one key: the cheapest way to learn
	// the revision from the cluster's leader rather than one member's view.
	resp, err := s.client.Get(ctx, s.prefix, clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("read current revision: %w", err)
	}
	return resp.Header.Revision, nil
}

// Compact discards history up to rev (used by the periodic compactor and by tests).
// Compacting to a revision at or below an earlier compaction is a no-op.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	// Physical: return only once the old revisions are really gone, so a
	// watch started afterwards reliably sees the compaction.
	_, err := s.client.Compact(ctx, rev, clientv3.WithCompactPhysical())
	if err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
		return fmt.Errorf("compact to revision %d: %w", rev, err)
	}
	return nil
}

// checkType rejects an object of another resource's Go type.
func (s *ResourceStore) checkType(obj api.Object) error {
	if obj == nil || reflect.TypeOf(obj) != s.objectType || reflect.ValueOf(obj).IsNil() {
		return api.NewBadRequest(fmt.Sprintf("expected a %s object for %s, got %T", s.resource.Kind, s.resource.GroupResource(), obj))
	}
	return nil
}

// checkSameKey rejects an update that renames or moves the object.
func (s *ResourceStore) checkSameKey(key string, updated api.Object) error {
	if err := s.checkType(updated); err != nil {
		return err
	}
	meta := updated.GetObjectMeta()
	updatedKey, err := s.objectKey(meta.Namespace, meta.Name)
	if err != nil || updatedKey != key {
		return api.NewBadRequest(fmt.Sprintf("an update may not change the name or namespace of %s (%s)", s.resource.GroupResource(), key))
	}
	return nil
}

// objectKey is /registry/pods/<ns>/<name>, or /registry/nodes/<name> for a
// cluster-scoped resource (ns is then ignored).
func (s *ResourceStore) objectKey(ns, name string) (string, error) {
	if err := checkKeySegment("name", name); err != nil {
		return "", err
	}
	if !s.resource.Namespaced {
		return s.keyPrefix + name, nil
	}
	if err := checkKeySegment("namespace", ns); err != nil {
		return "", err
	}
	return s.keyPrefix + ns + "/" + name, nil
}

// collectionKey is the key prefix of a list or watch: /registry/pods/<ns>/
// with its trailing slash (namespace "def" must not match "default"), or
// /registry/pods/ for all namespaces and for cluster-scoped resources.
func (s *ResourceStore) collectionKey(ns string) (string, error) {
	if !s.resource.Namespaced || ns == "" {
		return s.keyPrefix, nil
	}
	if err := checkKeySegment("namespace", ns); err != nil {
		return "", err
	}
	return s.keyPrefix + ns + "/", nil
}

// checkKeySegment keeps names from escaping their place in the key space.
func checkKeySegment(what, value string) error {
	switch {
	case value == "":
		return api.NewBadRequest(fmt.Sprintf("resource %s may not be empty", what))
	case value == "." || value == ".." || strings.Contains(value, "/"):
		return api.NewBadRequest(fmt.Sprintf("invalid resource %s %q: may not be '.' or '..' or contain '/'", what, value))
	}
	return nil
}

// encode is the stored form of obj: its JSON with apiVersion and kind set
// and resourceVersion cleared (the revision says it). obj is not modified.
func (s *ResourceStore) encode(obj api.Object) ([]byte, error) {
	stored := shallowCopy(obj)
	*stored.GetTypeMeta() = api.TypeMeta{APIVersion: s.resource.APIVersion(), Kind: s.resource.Kind}
	stored.GetObjectMeta().ResourceVersion = ""
	data, err := json.Marshal(stored)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s/%s: %w", s.resource.Kind, obj.GetObjectMeta().Namespace, obj.GetObjectMeta().Name, err)
	}
	return data, nil
}

// decode reads a stored value into a new object of the resource, with
// apiVersion, kind and resourceVersion (= rev) set.
func (s *ResourceStore) decode(data []byte, rev int64) (api.Object, error) {
	obj := s.resource.New()
	if err := json.Unmarshal(data, obj); err != nil {
		return nil, fmt.Errorf("decode %s: %w", s.resource.Kind, err)
	}
	*obj.GetTypeMeta() = api.TypeMeta{APIVersion: s.resource.APIVersion(), Kind: s.resource.Kind}
	obj.GetObjectMeta().ResourceVersion = strconv.FormatInt(rev, 10)
	return obj, nil
}

// shallowCopy copies the struct obj points to, so that its TypeMeta and
// ObjectMeta scalars can be set without touching the caller's object.
// Every api.Object is a pointer to a struct (checkType made sure).
func shallowCopy(obj api.Object) api.Object {
	original := reflect.ValueOf(obj).Elem()
	clone := reflect.New(original.Type())
	clone.Elem().Set(original)
	return clone.Interface().(api.Object)
}

// parseResourceVersion reads a resourceVersion sent by a client.
func parseResourceVersion(rv string) (int64, error) {
	rev, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || rev <= 0 {
		return 0, api.NewBadRequest(fmt.Sprintf("invalid resource version %q", rv))
	}
	return rev, nil
}
