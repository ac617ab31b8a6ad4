// Package api holds kubelite's Kubernetes-shaped object types.
//
// The JSON field names and meanings are Kubernetes' own, so real manifests and
// real clients (kubectl) work against kubelite unchanged. Every object embeds
// TypeMeta (apiVersion, kind) and ObjectMeta (metadata); lists embed ListMeta.
package api

import (
	"encoding/json"
	"reflect"
	"time"
)

// TypeMeta says which kind of object a document is and in which API version.
type TypeMeta struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
}

// GetTypeMeta gives generic code access to the embedded TypeMeta.
func (t *TypeMeta) GetTypeMeta() *TypeMeta { return t }

// OwnerReference points at the object that owns this one; the garbage
// collector deletes dependents whose owners are gone.
type OwnerReference struct {
	APIVersion         string `json:"apiVersion"`
	Kind               string `json:"kind"`
	Name               string `json:"name"`
	UID                string `json:"uid"`
	Controller         *bool  `json:"controller,omitempty"`
	BlockOwnerDeletion *bool  `json:"blockOwnerDeletion,omitempty"`
}

// ObjectMeta is the metadata every persisted object carries.
type ObjectMeta struct {
	Name                       string            `json:"name,omitempty"`
	GenerateName               string            `json:"generateName,omitempty"`
	Namespace                  string            `json:"namespace,omitempty"`
	UID                        string            `json:"uid,omitempty"`
	ResourceVersion            string            `json:"resourceVersion,omitempty"`
	Generation                 int64             `json:"generation,omitempty"`
	CreationTimestamp          Time              `json:"creationTimestamp,omitempty"`
	DeletionTimestamp          *Time             `json:"deletionTimestamp,omitempty"`
	DeletionGracePeriodSeconds *int64            `json:"deletionGracePeriodSeconds,omitempty"`
	Labels                     map[string]string `json:"labels,omitempty"`
	Annotations                map[string]string `json:"annotations,omitempty"`
	OwnerReferences            []OwnerReference  `json:"ownerReferences,omitempty"`
	Finalizers                 []string          `json:"finalizers,omitempty"`
}

// GetObjectMeta gives generic code access to the embedded ObjectMeta.
func (m *ObjectMeta) GetObjectMeta() *ObjectMeta { return m }

// ControllerRef returns the owner reference marked as the managing controller, if any.
func (m *ObjectMeta) ControllerRef() *OwnerReference {
	for i := range m.OwnerReferences {
		if c := m.OwnerReferences[i].Controller; c != nil && *c {
			return &m.OwnerReferences[i]
		}
	}
	return nil
}

// ListMeta is the metadata of a list: the resourceVersion the list was read
// at, from which a watch continues without gap.
type ListMeta struct {
	ResourceVersion string `json:"resourceVersion,omitempty"`
	Continue        string `json:"continue,omitempty"`
}

// Object is what every top-level kind implements (through embedding).
type Object interface {
	GetTypeMeta() *TypeMeta
	GetObjectMeta() *ObjectMeta
}

// List is the list form of every kind: `kind: PodList`, `items: [...]`.
type List[T any] struct {
	TypeMeta `json:",inline"`
	ListMeta `json:"metadata"`
	Items    []T `json:"items"`
}

// Time is a timestamp that serialises as RFC 3339 in UTC with second
// precision, as Kubernetes' metav1.Time does; the zero time is null.
type Time struct {
	time.Time
}

// Now returns the current time with Kubernetes' precision.
func Now() Time { return Time{time.Now().UTC().Truncate(time.Second)} }

// NewTime wraps t.
func NewTime(t time.Time) Time { return Time{t.UTC().Truncate(time.Second)} }

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) { return marshalTime(t.Time, time.RFC3339) }

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error { return unmarshalTime(b, time.RFC3339, &t.Time) }

// MicroTime is metav1.MicroTime: RFC 3339 with microseconds (Leases, Events).
type MicroTime struct {
	time.Time
}

const microTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// MarshalJSON implements json.Marshaler.
func (t MicroTime) MarshalJSON() ([]byte, error) { return marshalTime(t.Time, microTimeFormat) }

// UnmarshalJSON implements json.Unmarshaler.
func (t *MicroTime) UnmarshalJSON(b []byte) error {
	return unmarshalTime(b, time.RFC3339Nano, &t.Time)
}

// marshalTime writes t in UTC in layout; the zero time is null.
func marshalTime(t time.Time, layout string) ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(layout))
}

// unmarshalTime reads null, "" or a time in layout into *t.
func unmarshalTime(b []byte, layout string, t *time.Time) error {
	*t = time.Time{}
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s == "" {
		return nil
	}
	parsed, err := time.Parse(layout, s)
	if err != nil {
		return err
	}
	*t = parsed.UTC()
	return nil
}

// WatchEvent is one line of a watch stream.
type WatchEvent struct {
	Type   EventType       `json:"type"`
	Object json.RawMessage `json:"object"`
}

// EventType is the kind of change a WatchEvent reports.
type EventType string

// Watch event types, as Kubernetes names them.
const (
	Added    EventType = "ADDED"
	Modified EventType = "MODIFIED"
	Deleted  EventType = "DELETED"
	Bookmark EventType = "BOOKMARK"
	Error    EventType = "ERROR"
)

// DeepCopy returns an independent copy of obj. Objects from a cache are
// shared and must never be mutated: copy first. obj may be a concrete
// pointer (*Pod) or an interface holding one (Object); the copy has the same
// dynamic type.
func DeepCopy[T any](obj T) T {
	b, err := json.Marshal(obj)
	if err != nil {
		panic("api.DeepCopy: " + err.Error())
	}
	if reflect.TypeFor[T]().Kind() == reflect.Interface {
		dyn := reflect.TypeOf(obj)
		if dyn == nil {
			return obj
		}
		if dyn.Kind() != reflect.Pointer {
			panic("api.DeepCopy: interface must hold a pointer, not " + dyn.String())
		}
		out := reflect.New(dyn.Elem())
		if err := json.Unmarshal(b, out.Interface()); err != nil {
			panic("api.DeepCopy: " + err.Error())
		}
		return out.Interface().(T)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic("api.DeepCopy: " + err.Error())
	}
	return out
}

// Ptr returns a pointer to v (for optional fields).
func Ptr[T any](v T) *T { return &v }
