package cache

import (
	"context"
	"strings"

	"kubelite/api"
)

// Lister is the read side of an Informer: what a controller, the DNS server
// or the proxy needs from a cache. Code that takes a Lister instead of an
// *Informer can be tested with a fake.
type Lister[PT any] interface {
	Get(ns, name string) (PT, bool)
	GetByKey(key string) (PT, bool)
	List(ns string) []PT
	ListSelector(ns string, match func(PT) bool) []PT
	HasSynced() bool
}

var _ Lister[*api.Pod] = (*Informer[api.Pod, *api.Pod])(nil)

// Syncer is anything that can wait for its first sync, e.g. an *Informer.
type Syncer interface {
	WaitForSync(ctx context.Context) bool
}

// WaitForCacheSync waits until every cache has synced, or ctx ends; it
// reports whether all synced. Controllers call it before starting workers.
func WaitForCacheSync(ctx context.Context, caches ...Syncer) bool {
	for _, c := range caches {
		if !c.WaitForSync(ctx) {
			return false
		}
	}
	return true
}

// Key is the "namespace/name" (or "name") key of an object.
func Key(obj api.Object) string {
	meta := obj.GetObjectMeta()
	return joinKey(meta.Namespace, meta.Name)
}

// SplitKey splits a Key into namespace ("" for cluster-scoped objects) and name.
func SplitKey(key string) (namespace, name string) {
	if ns, name, ok := strings.Cut(key, "/"); ok {
		return ns, name
	}
	return "", key
}

func joinKey(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}
