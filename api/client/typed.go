package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"kubelite/api"
)

// ObjectPtr is the pointer form of an API type, e.g. *api.Pod.
type ObjectPtr[T any] interface {
	*T
	api.Object
}

// Event is one typed watch event; see RawEvent.
type Event[PT any] struct {
	Type   api.EventType
	Object PT
	Err    error
}

// Typed is the client of one resource in one namespace, on Go types.
//
// With namespace "" it lists and watches all namespaces, and operations on
// one object use the object's own metadata.namespace.
type Typed[T any, PT ObjectPtr[T]] struct {
	client    *Client
	resource  *api.Resource
	namespace string
}

// For returns the typed client of T's resource in namespace ns, e.g.
// client.For[api.Pod](c, "default"). It panics when T is not a served kind,
// which is a programming error.
func For[T any, PT ObjectPtr[T]](c *Client, ns string) *Typed[T, PT] {
	r := api.ResourceFor(PT(new(T)))
	if r == nil {
		panic(fmt.Sprintf("client.For: %T is not a served API kind", new(T)))
	}
	if !r.Namespaced {
		ns = ""
	}
	return &Typed[T, PT]{client: c, resource: r, namespace: ns}
}

// Resource describes the resource this client works on.
func (t *Typed[T, PT]) Resource() *api.Resource { return t.resource }

// Namespace is the namespace this client works in ("" = all).
func (t *Typed[T, PT]) Namespace() string { return t.namespace }

// dynamic is the raw client for the collection this client works on.
func (t *Typed[T, PT]) dynamic() *Dynamic { return t.client.Resource(t.resource, t.namespace) }

// dynamicFor is the raw client for obj's collection.
func (t *Typed[T, PT]) dynamicFor(obj PT) *Dynamic {
	ns := t.namespace
	if ns == "" {
		ns = obj.GetObjectMeta().Namespace
	}
	return t.client.Resource(t.resource, ns)
}

// encode marshals obj with apiVersion and kind filled in, without touching
// the caller's object (it may be shared, e.g. a copy of a cached one).
func (t *Typed[T, PT]) encode(obj PT) ([]byte, error) {
	shallow := *obj
	PT(&shallow).GetTypeMeta().APIVersion = t.resource.APIVersion()
	PT(&shallow).GetTypeMeta().Kind = t.resource.Kind
	data, err := json.Marshal(&shallow)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", t.resource.Kind, err)
	}
	return data, nil
}

// decode unmarshals one object; servers may leave out apiVersion and kind
// (list items do), so they are filled in for self-describing results.
func (t *Typed[T, PT]) decode(data []byte) (PT, error) {
	obj := PT(new(T))
	if err := json.Unmarshal(data, obj); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", t.resource.Kind, err)
	}
	t.fillTypeMeta(obj)
	return obj, nil
}

func (t *Typed[T, PT]) fillTypeMeta(obj PT) {
	if tm := obj.GetTypeMeta(); tm.Kind == "" {
		tm.APIVersion, tm.Kind = t.resource.APIVersion(), t.resource.Kind
	}
}

// Create creates obj and returns what the server stored.
func (t *Typed[T, PT]) Create(ctx context.Context, obj PT) (PT, error) {
	body, err := t.encode(obj)
	if err != nil {
		return nil, err
	}
	data, err := t.dynamicFor(obj).Create(ctx, "", body, WriteOptions{})
	if err != nil {
		return nil, err
	}
	return t.decode(data)
}

// Get returns one object.
func (t *Typed[T, PT]) Get(ctx context.Context, name string) (PT, error) {
	data, err := t.dynamic().Get(ctx, name)
	if err != nil {
		return nil, err
	}
	return t.decode(data)
}

// List returns the matching objects and the list's resourceVersion.
func (t *Typed[T, PT]) List(ctx context.Context, opts ListOptions) (*api.List[T], error) {
	data, err := t.dynamic().List(ctx, opts)
	if err != nil {
		return nil, err
	}
	var list api.List[T]
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", t.resource.ListKind(), err)
	}
	for i := range list.Items {
		t.fillTypeMeta(PT(&list.Items[i]))
	}
	return &list, nil
}

// Update replaces obj (409 Conflict when its resourceVersion is stale).
func (t *Typed[T, PT]) Update(ctx context.Context, obj PT) (PT, error) {
	return t.put(ctx, obj, "")
}

// UpdateStatus replaces obj's status through the status subresource.
func (t *Typed[T, PT]) UpdateStatus(ctx context.Context, obj PT) (PT, error) {
	return t.put(ctx, obj, "status")
}

// put replaces obj, or one of its subresources when sub is not "".
func (t *Typed[T, PT]) put(ctx context.Context, obj PT, sub string) (PT, error) {
	name := obj.GetObjectMeta().Name
	if name == "" {
		return nil, fmt.Errorf("updating %s: the object has no name", t.resource.Kind)
	}
	body, err := t.encode(obj)
	if err != nil {
		return nil, err
	}
	d := t.dynamicFor(obj)
	var data []byte
	if sub == "" {
		data, err = d.Update(ctx, "", name, body, WriteOptions{})
	} else {
		data, err = d.Subresource(ctx, http.MethodPut, name, sub, nil, body)
	}
	if err != nil {
		return nil, err
	}
	return t.decode(data)
}

// Delete deletes one object.
func (t *Typed[T, PT]) Delete(ctx context.Context, name string, opts DeleteOptions) error {
	_, err := t.dynamic().Delete(ctx, name, opts)
	return err
}

// Watch streams typed changes; see Dynamic.Watch. An event whose object
// does not decode ends the stream with an Error event.
func (t *Typed[T, PT]) Watch(ctx context.Context, opts ListOptions) (<-chan Event[PT], error) {
	ctx, cancel := context.WithCancel(ctx)
	raw, err := t.dynamic().Watch(ctx, opts)
	if err != nil {
		cancel()
		return nil, err
	}
	events := make(chan Event[PT])
	go func() {
		defer close(events)
		defer cancel()
		// Range until raw closes, even after the last delivery, so that the
		// reading goroutine has ended when events closes.
		delivering := true
		for rawEvent := range raw {
			if !delivering {
				continue
			}
			event := t.typedEvent(rawEvent)
			select {
			case events <- event:
			case <-ctx.Done():
				delivering = false
				continue
			}
			if event.Type == api.Error {
				delivering = false
				cancel()
			}
		}
	}()
	return events, nil
}

func (t *Typed[T, PT]) typedEvent(raw RawEvent) Event[PT] {
	if raw.Type == api.Error {
		return Event[PT]{Type: api.Error, Err: raw.Err}
	}
	obj, err := t.decode(raw.Object)
	if err != nil {
		return Event[PT]{Type: api.Error, Err: fmt.Errorf("watch %s event: %w", raw.Type, err)}
	}
	return Event[PT]{Type: raw.Type, Object: obj}
}
