// Package controllertest helps test controllers against a real API server:
// simulated nodes that run Pods as a node agent would report them, an
// in-memory event recorder, and small helpers to run goroutines for the
// length of a test and to wait for eventual states.
package controllertest

import (
	"fmt"
	"strings"
	"sync"

	"kubelite/api"
	"kubelite/controller"
)

// RecordedEvent is one event a controller recorded.
type RecordedEvent struct {
	Kind      string // of the object the event is about
	Namespace string
	Name      string
	Type      string // Normal or Warning
	Reason    string
	Message   string
}

func (e RecordedEvent) String() string {
	return fmt.Sprintf("%s %s/%s %s %s: %s", e.Kind, e.Namespace, e.Name, e.Type, e.Reason, e.Message)
}

// Recorder is an in-memory controller.EventRecorder. It is safe for
// concurrent use.
type Recorder struct {
	mu     sync.Mutex
	events []RecordedEvent
}

var _ controller.EventRecorder = (*Recorder)(nil)

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{} }

// Event implements controller.EventRecorder.
func (r *Recorder) Event(obj api.Object, eventType, reason, message string) {
	meta := obj.GetObjectMeta()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, RecordedEvent{
		Kind:      api.KindOf(obj),
		Namespace: meta.Namespace,
		Name:      meta.Name,
		Type:      eventType,
		Reason:    reason,
		Message:   message,
	})
}

// Events returns the events recorded so far, oldest first.
func (r *Recorder) Events() []RecordedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RecordedEvent(nil), r.events...)
}

// Find returns the recorded events with the given reason whose message
// contains substr.
func (r *Recorder) Find(reason, substr string) []RecordedEvent {
	var found []RecordedEvent
	for _, e := range r.Events() {
		if e.Reason == reason && strings.Contains(e.Message, substr) {
			found = append(found, e)
		}
	}
	return found
}
