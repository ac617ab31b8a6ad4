package nodeagent

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"kubelite/api"
	"kubelite/api/client"
)

// eventRecorder posts the agent's Events (Pulled, Created, Started,
// Killing, BackOff, Unhealthy, ...) to the API server, as the kubelet's
// event broadcaster does, in a small way:
//
//   - Event never blocks a pod worker: occurrences go into a bounded queue
//     that one goroutine (Run) drains; when the queue is full they are
//     dropped and the drop logged;
//   - a repeat of the same event about the same object within
//     aggregationWindow updates the Event (count+1, lastTimestamp) rather
//     than adding another one, so a crash loop is one Event, not hundreds.
type eventRecorder struct {
	client *client.Client
	node   string
	log    *slog.Logger
	queue  chan eventOccurrence

	// written maps a repeat key to the Event written for it; only Run's
	// goroutine touches it.
	written map[eventKey]*api.Event
}

type eventOccurrence struct {
	key    eventKey
	object api.ObjectReference
	at     time.Time
}

type eventKey struct {
	uid, eventType, reason, message string
}

const (
	eventQueueSize    = 1000
	aggregationWindow = 10 * time.Minute
	maxRemembered     = 4096
)

func newEventRecorder(c *client.Client, node string, log *slog.Logger) *eventRecorder {
	return &eventRecorder{
		client:  c,
		node:    node,
		log:     log.With("component", "events"),
		queue:   make(chan eventOccurrence, eventQueueSize),
		written: map[eventKey]*api.Event{},
	}
}

// Event records that something happened to obj. It never blocks.
func (r *eventRecorder) Event(obj api.Object, eventType, reason, message string) {
	meta := obj.GetObjectMeta()
	o := eventOccurrence{
		key: eventKey{uid: meta.UID, eventType: eventType, reason: reason, message: message},
		object: api.ObjectReference{
			Kind: api.KindOf(obj), APIVersion: "v1",
			Namespace: meta.Namespace, Name: meta.Name, UID: meta.UID,
		},
		at: time.Now(),
	}
	select {
	case r.queue <- o:
	default:
		r.log.Warn("event queue full; dropping an event", "object", meta.Namespace+"/"+meta.Name, "reason", reason)
	}
}

// Run writes queued events until ctx ends.
func (r *eventRecorder) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case o := <-r.queue:
			if err := r.write(ctx, o); err != nil && ctx.Err() == nil {
				r.log.Warn("could not write an event", "object", o.object.Namespace+"/"+o.object.Name, "reason", o.key.reason, "err", err)
			}
		}
	}
}

func (r *eventRecorder) write(ctx context.Context, o eventOccurrence) error {
	events := client.For[api.Event](r.client, o.object.Namespace)
	if prev := r.written[o.key]; prev != nil && o.at.Sub(prev.LastTimestamp.Time) < aggregationWindow {
		next := api.DeepCopy(prev)
		next.Count++
		next.LastTimestamp = api.NewTime(o.at)
		updated, err := events.Update(ctx, next)
		if err == nil {
			r.written[o.key] = updated
			return nil
		}
		// Gone (swept) or changed: write a new one instead.
	}
	if len(r.written) >= maxRemembered {
		clear(r.written)
	}
	created, err := events.Create(ctx, &api.Event{
		ObjectMeta:         api.ObjectMeta{Name: fmt.Sprintf("%s.%x", o.object.Name, o.at.UnixNano()), Namespace: o.object.Namespace},
		InvolvedObject:     o.object,
		Type:               o.key.eventType,
		Reason:             o.key.reason,
		Message:            o.key.message,
		Source:             api.EventSource{Component: "kubelet", Host: r.node},
		FirstTimestamp:     api.NewTime(o.at),
		LastTimestamp:      api.NewTime(o.at),
		Count:              1,
		ReportingComponent: "kubelet",
		ReportingInstance:  r.node,
	})
	if err != nil {
		return err
	}
	r.written[o.key] = created
	return nil
}
