// Package storage keeps API objects in etcd under /registry/<resource>/<namespace>/<name>.
//
// resourceVersion is etcd's modification revision of the key: it is never
// stored inside the value, but set on every object read back. Updates are
// compare-and-swap on that revision, so concurrent writers never lose an update.
package storage

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kubelite/api"
)

// Predicate decides whether an object is part of a list or watch
// (label and field selectors). nil matches everything.
type Predicate func(api.Object) bool

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
	// TODO(storage helper)
}

// New returns a Store over an etcd client; keys are prefixed with prefix ("/registry").
func New(cli *clientv3.Client, prefix string) *Store { panic("TODO") }

// For returns the store of one resource.
func (s *Store) For(r *api.Resource) *ResourceStore { panic("TODO") }

// ResourceStore reads and writes the objects of one resource.
type ResourceStore struct {
	// TODO(storage helper)
}

// Create stores a new object (namespace and name from its metadata) and
// returns it with ResourceVersion set. Fails with api.NewAlreadyExists.
func (s *ResourceStore) Create(ctx context.Context, obj api.Object) (api.Object, error) {
	panic("TODO")
}

// Get returns one object or api.NewNotFound.
func (s *ResourceStore) Get(ctx context.Context, ns, name string) (api.Object, error) { panic("TODO") }

// List returns the objects in namespace ns ("" = all namespaces, or a
// cluster-scoped resource) that match pred, sorted by namespace/name, and the
// revision the list was read at (a watch from that revision misses nothing).
func (s *ResourceStore) List(ctx context.Context, ns string, pred Predicate) ([]api.Object, int64, error) {
	panic("TODO")
}

// Update reads the current object, calls tryUpdate with a private copy of it
// and writes the result if the object did not change meanwhile; on a
// concurrent change it re-reads and calls tryUpdate again. tryUpdate may
// return an error (e.g. api.NewConflict when the caller's resourceVersion is
// stale) to abort. Fails with api.NewNotFound when the object does not exist.
func (s *ResourceStore) Update(ctx context.Context, ns, name string, tryUpdate func(current api.Object) (api.Object, error)) (api.Object, error) {
	panic("TODO")
}

// Delete removes an object and returns its last state. If
// preconditionRV is non-empty the delete only happens at that
// resourceVersion (else api.NewConflict).
func (s *ResourceStore) Delete(ctx context.Context, ns, name string, preconditionRV string) (api.Object, error) {
	panic("TODO")
}

// Watch streams every change after revision fromRV (0 = from now) in
// namespace ns ("" = all) for objects matching pred: an object that starts
// to match is ADDED, one that stops matching is DELETED. A fromRV older than
// the compacted revision fails at once with api.NewGone (410). The channel
// closes when ctx ends or on error (the last Event then carries Err).
func (s *ResourceStore) Watch(ctx context.Context, ns string, fromRV int64, pred Predicate) (<-chan Event, error) {
	panic("TODO")
}

// CurrentRevision returns etcd's current revision.
func (s *Store) CurrentRevision(ctx context.Context) (int64, error) { panic("TODO") }

// Compact discards history up to rev (used by the periodic compactor and by tests).
func (s *Store) Compact(ctx context.Context, rev int64) error { panic("TODO") }
