package gc

import (
	"kubelite/api"
	"kubelite/api/client"
	"kubelite/api/client/cache"
)

// watchedKind is one resource the collector follows through an informer,
// seen through the api.Object interface so that one code path serves all.
type watchedKind struct {
	resource *api.Resource
	get      func(namespace, name string) (api.Object, bool)
	list     func(namespace string, match func(api.Object) bool) []api.Object
	synced   cache.Syncer
}

// watch registers inf's kind with the collector: its handlers enqueue the
// objects (and the dependents and owners) that may need collecting.
func watch[T any, PT client.ObjectPtr[T]](gc *Controller, inf *cache.Informer[T, PT]) {
	kind := &watchedKind{
		resource: api.ResourceFor(PT(new(T))),
		get: func(namespace, name string) (api.Object, bool) {
			obj, ok := inf.Get(namespace, name)
			if !ok {
				return nil, false // not a typed nil inside an interface
			}
			return obj, true
		},
		list: func(namespace string, match func(api.Object) bool) []api.Object {
			matched := inf.ListSelector(namespace, func(obj PT) bool { return match(obj) })
			objects := make([]api.Object, len(matched))
			for i, obj := range matched {
				objects[i] = obj
			}
			return objects
		},
		synced: inf,
	}
	gc.kinds[kind.resource.Kind] = kind
	gc.kindOrder = append(gc.kindOrder, kind)
	inf.AddHandler(cache.Handler[PT]{
		OnAdd:    func(obj PT) { gc.onChange(kind, nil, obj) },
		OnUpdate: func(old, obj PT) { gc.onChange(kind, old, obj) },
		OnDelete: func(obj PT) { gc.onDelete(obj) },
	})
}
