// Package cache is the shared list+watch cache (an "informer"): it lists a
// resource, then watches from the list's resourceVersion, keeps an
// in-memory copy, and tells handlers what changed. On a broken watch it
// resumes from the last seen resourceVersion; on 410 Gone it re-lists.
// Objects handed out are shared: never mutate them (api.DeepCopy first).
package cache

import (
	"context"
	"time"

	"kubelite/api"
	"kubelite/api/client"
)

// Handler is told about changes. Controllers only enqueue keys here and do
// their work elsewhere (level-triggered). Any func may be nil.
type Handler[PT any] struct {
	OnAdd    func(obj PT)
	OnUpdate func(oldObj, newObj PT)
	OnDelete func(obj PT)
}

// Informer caches one resource.
type Informer[T any, PT client.ObjectPtr[T]] struct {
	// TODO(client helper)
}

// NewInformer caches the objects that lw lists and watches (typically a
// *client.Typed for all namespaces). resync > 0 re-delivers every cached
// object as an update at that period.
func NewInformer[T any, PT client.ObjectPtr[T]](lw *client.Typed[T, PT], opts client.ListOptions, resync time.Duration) *Informer[T, PT] {
	panic("TODO")
}

// AddHandler registers h; call before Run.
func (i *Informer[T, PT]) AddHandler(h Handler[PT]) { panic("TODO") }

// Run lists and watches until ctx ends.
func (i *Informer[T, PT]) Run(ctx context.Context) { panic("TODO") }

// HasSynced reports whether the first list has been loaded.
func (i *Informer[T, PT]) HasSynced() bool { panic("TODO") }

// WaitForSync blocks until synced or ctx ends; it reports whether it synced.
func (i *Informer[T, PT]) WaitForSync(ctx context.Context) bool { panic("TODO") }

// Get returns a cached object by namespace and name.
func (i *Informer[T, PT]) Get(ns, name string) (PT, bool) { panic("TODO") }

// List returns every cached object (ns == "" for all namespaces).
func (i *Informer[T, PT]) List(ns string) []PT { panic("TODO") }

// Key is the "namespace/name" (or "name") key of an object.
func Key(obj api.Object) string { panic("TODO") }
