// Package events writes core/v1 Events, the records `kubectl-lite describe`
// and `kubectl-lite get events` show, in the manner of client-go's event
// broadcaster:
//
//   - Recording never blocks a controller: events go into a bounded queue
//     that one goroutine drains; when the queue is full an event is dropped
//     (and the drop logged), because a controller must not stall on its
//     diagnostics.
//   - A repeat of the same (object, type, reason, message, component) within
//     the aggregation window updates the existing Event (count+1, new
//     lastTimestamp) instead of creating another one.
//   - Events older than an hour are deleted by a periodic sweep (Kubernetes
//     gives them an etcd TTL; a sweep does the same here).
package events

import (
	"container/list"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"kubelite/api"
	"kubelite/api/client"
)

// Defaults of Config.
const (
	DefaultQueueSize     = 1000
	DefaultMaxAge        = time.Hour
	DefaultSweepInterval = 10 * time.Minute
	// aggregationEntries bounds the memory of events written, used to
	// aggregate repeats; the least recently repeated are forgotten first.
	aggregationEntries = 4096
)

// Config tunes a Broadcaster. The zero value is usable.
type Config struct {
	// QueueSize bounds the events waiting to be written (DefaultQueueSize).
	QueueSize int
	// MaxAge is how long an Event is kept after its last occurrence (DefaultMaxAge).
	MaxAge time.Duration
	// SweepInterval is how often old Events are looked for (DefaultSweepInterval).
	SweepInterval time.Duration
	// Host goes into source.host (the reporting machine); optional.
	Host string
	// Instance goes into reportingInstance (e.g. the leader's identity); optional.
	Instance string
	// Now returns the current time (default time.Now); tests set it.
	Now    func() time.Time
	Logger *slog.Logger
}

// Broadcaster owns the queue of events to write and the goroutines that
// write and sweep them. Recorders made from it share both.
type Broadcaster struct {
	client *client.Client
	scheme *api.Scheme
	cfg    Config
	logger *slog.Logger
	queue  chan occurrence

	// written remembers the Events written, for aggregation. Only the
	// writer goroutine (Run) touches it.
	written *lru
}

// occurrence is one call of Recorder.Event, waiting to be written.
type occurrence struct {
	key       aggregationKey
	object    api.ObjectReference
	eventType string
	reason    string
	message   string
	component string
	at        time.Time
}

// aggregationKey identifies repeats of the same event.
type aggregationKey struct {
	kind, namespace, name, uid string
	eventType, reason, message string
	component                  string
}

// NewBroadcaster returns a Broadcaster writing through c; call Run to start it.
func NewBroadcaster(c *client.Client, cfg Config) *Broadcaster {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Broadcaster{
		client:  c,
		scheme:  api.NewScheme(),
		cfg:     cfg,
		logger:  cfg.Logger.With("component", "events"),
		queue:   make(chan occurrence, cfg.QueueSize),
		written: newLRU(aggregationEntries),
	}
}

// NewRecorder returns the recorder of one component ("replicaset-controller",
// "default-scheduler"...), named in the Events' source.
func (b *Broadcaster) NewRecorder(component string) *Recorder {
	return &Recorder{broadcaster: b, component: component}
}

// Run writes queued events and sweeps old ones until ctx ends; it returns
// when both goroutines have stopped. Events still queued then are dropped.
func (b *Broadcaster) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { b.sweepLoop(ctx) })
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case o := <-b.queue:
			b.write(ctx, o)
		}
	}
}

// Recorder records the events of one component. It implements
// controller.EventRecorder and is safe for concurrent use.
type Recorder struct {
	broadcaster *Broadcaster
	component   string
}

// Event queues an Event about obj; it never blocks.
func (r *Recorder) Event(obj api.Object, eventType, reason, message string) {
	b := r.broadcaster
	ref := b.reference(obj)
	o := occurrence{
		key: aggregationKey{
			kind: ref.Kind, namespace: ref.Namespace, name: ref.Name, uid: ref.UID,
			eventType: eventType, reason: reason, message: message, component: r.component,
		},
		object:    ref,
		eventType: eventType,
		reason:    reason,
		message:   message,
		component: r.component,
		at:        b.cfg.Now(),
	}
	select {
	case b.queue <- o:
	default:
		b.logger.Warn("event queue full; dropping event",
			"object", ref.Namespace+"/"+ref.Name, "kind", ref.Kind, "reason", reason, "message", message)
	}
}

// reference is the involvedObject of an Event about obj.
func (b *Broadcaster) reference(obj api.Object) api.ObjectReference {
	meta := obj.GetObjectMeta()
	ref := api.ObjectReference{
		Kind:            api.KindOf(obj),
		APIVersion:      obj.GetTypeMeta().APIVersion,
		Namespace:       meta.Namespace,
		Name:            meta.Name,
		UID:             meta.UID,
		ResourceVersion: meta.ResourceVersion,
	}
	if r := b.scheme.For(obj); r != nil {
		ref.APIVersion = r.APIVersion()
	}
	return ref
}

// write creates the Event of o, or counts o as a repeat of one written before.
func (b *Broadcaster) write(ctx context.Context, o occurrence) {
	if prev, ok := b.written.get(o.key); ok {
		updated, err := b.repeat(ctx, prev, o)
		if err == nil {
			b.written.put(o.key, updated)
			return
		}
		if !api.IsNotFound(err) {
			b.logger.Warn("could not update event; dropping it", "event", prev.Namespace+"/"+prev.Name, "reason", o.reason, "err", err)
			return
		}
		// The Event was swept or deleted meanwhile: start a new one.
	}
	created, err := b.eventsIn(eventNamespace(o.object)).Create(ctx, newEvent(o, b.cfg))
	if err != nil {
		if ctx.Err() == nil {
			b.logger.Warn("could not create event; dropping it",
				"object", o.object.Namespace+"/"+o.object.Name, "kind", o.object.Kind, "reason", o.reason, "err", err)
		}
		return
	}
	b.written.put(o.key, created)
}

// repeat increments the count of a written Event. On a conflict (the Event
// changed since it was written) it re-reads it and tries once more.
func (b *Broadcaster) repeat(ctx context.Context, prev *api.Event, o occurrence) (*api.Event, error) {
	events := b.eventsIn(prev.Namespace)
	next := api.DeepCopy(prev)
	for attempt := 0; ; attempt++ {
		next.Count++
		next.LastTimestamp = api.NewTime(o.at)
		next.InvolvedObject.ResourceVersion = o.object.ResourceVersion
		updated, err := events.Update(ctx, next)
		if err == nil || !api.IsConflict(err) || attempt > 0 {
			return updated, err
		}
		if next, err = events.Get(ctx, prev.Name); err != nil {
			return nil, err
		}
	}
}

func (b *Broadcaster) eventsIn(namespace string) *client.Typed[api.Event, *api.Event] {
	return client.For[api.Event](b.client, namespace)
}

// newEvent is the first Event of an occurrence, named as client-go names
// them: the object's name and the time in hexadecimal nanoseconds.
func newEvent(o occurrence, cfg Config) *api.Event {
	at := api.NewTime(o.at)
	return &api.Event{
		ObjectMeta: api.ObjectMeta{
			Name:      fmt.Sprintf("%s.%x", o.object.Name, o.at.UnixNano()),
			Namespace: eventNamespace(o.object),
		},
		InvolvedObject:     o.object,
		Reason:             o.reason,
		Message:            o.message,
		Source:             api.EventSource{Component: o.component, Host: cfg.Host},
		FirstTimestamp:     at,
		LastTimestamp:      at,
		Count:              1,
		Type:               o.eventType,
		ReportingComponent: o.component,
		ReportingInstance:  cfg.Instance,
	}
}

// eventNamespace is where an Event about ref lives: the object's own
// namespace, or "default" for cluster-scoped objects (Nodes, Namespaces).
func eventNamespace(ref api.ObjectReference) string {
	if ref.Namespace == "" {
		return api.NamespaceDefault
	}
	return ref.Namespace
}

// lru is a bounded map from aggregation key to the last written Event,
// forgetting the least recently used entry when full.
type lru struct {
	capacity int
	order    *list.List // front = most recently used; values are *lruEntry
	entries  map[aggregationKey]*list.Element
}

type lruEntry struct {
	key   aggregationKey
	event *api.Event
}

func newLRU(capacity int) *lru {
	return &lru{capacity: capacity, order: list.New(), entries: make(map[aggregationKey]*list.Element)}
}

func (c *lru) get(key aggregationKey) (*api.Event, bool) {
	elem, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(elem)
	return elem.Value.(*lruEntry).event, true
}

func (c *lru) put(key aggregationKey, event *api.Event) {
	if elem, ok := c.entries[key]; ok {
		elem.Value.(*lruEntry).event = event
		c.order.MoveToFront(elem)
		return
	}
	c.entries[key] = c.order.PushFront(&lruEntry{key: key, event: event})
	if c.order.Len() > c.capacity {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*lruEntry).key)
	}
}
