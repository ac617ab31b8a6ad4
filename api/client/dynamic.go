package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"kubelite/api"
)

// maxWatchEventBytes bounds one line of a watch stream (one object).
const maxWatchEventBytes = 16 << 20

// ListOptions select what a list or watch returns.
type ListOptions struct {
	LabelSelector   string
	FieldSelector   string
	ResourceVersion string
	TimeoutSeconds  *int64
}

func (o ListOptions) query() url.Values {
	q := url.Values{}
	if o.LabelSelector != "" {
		q.Set("labelSelector", o.LabelSelector)
	}
	if o.FieldSelector != "" {
		q.Set("fieldSelector", o.FieldSelector)
	}
	if o.ResourceVersion != "" {
		q.Set("resourceVersion", o.ResourceVersion)
	}
	if o.TimeoutSeconds != nil {
		q.Set("timeoutSeconds", strconv.FormatInt(*o.TimeoutSeconds, 10))
	}
	return q
}

// WriteOptions tune a create or update.
type WriteOptions struct {
	// FieldValidation is "Strict" (default: unknown fields are errors), "Warn" or "Ignore".
	FieldValidation string
}

func (o WriteOptions) query() url.Values {
	q := url.Values{}
	if o.FieldValidation != "" {
		q.Set("fieldValidation", o.FieldValidation)
	}
	return q
}

// DeleteOptions tune a delete.
type DeleteOptions struct {
	GracePeriodSeconds *int64
	// PropagationPolicy is "Background" (default), "Foreground" or "Orphan".
	PropagationPolicy string
	// ResourceVersion, when set, is a precondition.
	ResourceVersion string
}

// deleteOptionsBody is the wire form of DeleteOptions (meta/v1 DeleteOptions).
type deleteOptionsBody struct {
	api.TypeMeta       `json:",inline"`
	GracePeriodSeconds *int64         `json:"gracePeriodSeconds,omitempty"`
	PropagationPolicy  string         `json:"propagationPolicy,omitempty"`
	Preconditions      *preconditions `json:"preconditions,omitempty"`
}

type preconditions struct {
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

func (o DeleteOptions) body() []byte {
	wire := deleteOptionsBody{
		TypeMeta:           api.TypeMeta{APIVersion: "v1", Kind: "DeleteOptions"},
		GracePeriodSeconds: o.GracePeriodSeconds,
		PropagationPolicy:  o.PropagationPolicy,
	}
	if o.ResourceVersion != "" {
		wire.Preconditions = &preconditions{ResourceVersion: o.ResourceVersion}
	}
	data, err := json.Marshal(wire)
	if err != nil {
		panic("client: encoding DeleteOptions: " + err.Error()) // plain fields cannot fail
	}
	return data
}

// RawEvent is one watch event with the object as JSON. A final event with
// Type api.Error carries Err (e.g. a 410 Gone *api.Status, or the read error
// of a broken stream).
type RawEvent struct {
	Type   api.EventType
	Object json.RawMessage
	Err    error
}

// Dynamic is the raw-JSON client for one resource in one namespace ("" for
// cluster-scoped resources or all namespaces).
type Dynamic struct {
	client    *Client
	resource  *api.Resource
	namespace string
}

// Resource returns the dynamic client of r in namespace ns.
func (c *Client) Resource(r *api.Resource, ns string) *Dynamic {
	if !r.Namespaced {
		ns = ""
	}
	return &Dynamic{client: c, resource: r, namespace: ns}
}

// Path is the REST path of the collection (name == "") or of one object.
func (d *Dynamic) Path(name string) string { return d.resource.Path(d.namespace, name) }

// pathIn is Path in another apiVersion of the same resource ("" = the
// stored one), e.g. /apis/apps/v1beta1/... for a legacy manifest.
func (d *Dynamic) pathIn(apiVersion, name string) string {
	if apiVersion == "" || apiVersion == d.resource.APIVersion() {
		return d.Path(name)
	}
	r := *d.resource
	r.Group, r.Version = api.SplitAPIVersion(apiVersion)
	return r.Path(d.namespace, name)
}

// Get returns one object.
func (d *Dynamic) Get(ctx context.Context, name string) (json.RawMessage, error) {
	return d.client.Do(ctx, http.MethodGet, d.Path(name), nil, nil)
}

// List returns the list body (kind XList, metadata.resourceVersion, items).
func (d *Dynamic) List(ctx context.Context, opts ListOptions) (json.RawMessage, error) {
	return d.client.Do(ctx, http.MethodGet, d.Path(""), opts.query(), nil)
}

// Create posts body to the collection. apiVersion is the path version to
// post to (e.g. "apps/v1beta1" for a legacy manifest; "" = the stored one).
func (d *Dynamic) Create(ctx context.Context, apiVersion string, body []byte, opts WriteOptions) (json.RawMessage, error) {
	return d.client.Do(ctx, http.MethodPost, d.pathIn(apiVersion, ""), opts.query(), body)
}

// Update puts body to the object (full replacement).
func (d *Dynamic) Update(ctx context.Context, apiVersion, name string, body []byte, opts WriteOptions) (json.RawMessage, error) {
	return d.client.Do(ctx, http.MethodPut, d.pathIn(apiVersion, name), opts.query(), body)
}

// Delete deletes one object and returns the server's answer (the object,
// when it lingers for graceful deletion or finalizers, or a Success Status).
func (d *Dynamic) Delete(ctx context.Context, name string, opts DeleteOptions) (json.RawMessage, error) {
	return d.client.Do(ctx, http.MethodDelete, d.Path(name), nil, opts.body())
}

// Subresource performs method on {object}/{sub} (status, scale, binding, log...).
func (d *Dynamic) Subresource(ctx context.Context, method, name, sub string, query url.Values, body []byte) ([]byte, error) {
	return d.client.Do(ctx, method, d.Path(name)+"/"+sub, query, body)
}

// Watch streams changes; the channel closes when ctx ends or the stream
// breaks. The consumer must read until the channel closes or cancel ctx.
func (d *Dynamic) Watch(ctx context.Context, opts ListOptions) (<-chan RawEvent, error) {
	query := opts.query()
	query.Set("watch", "true")
	stream, err := d.client.Stream(ctx, http.MethodGet, d.Path(""), query)
	if err != nil {
		return nil, err
	}
	events := make(chan RawEvent)
	go func() {
		defer close(events)
		defer stream.Close() // runs first: the request is over before the channel closes
		readWatchStream(ctx, stream, events)
	}()
	return events, nil
}

// readWatchStream decodes newline-delimited watch events from r onto out
// until the stream ends, an ERROR event (which is delivered) or ctx ends.
func readWatchStream(ctx context.Context, r io.Reader, out chan<- RawEvent) {
	scanner := bufio.NewScanner(r)
	scanner.Buffer(make([]byte, 0, 64<<10), maxWatchEventBytes)
	for scanner.Scan() {
		line := bytes.TrimSpace(scanner.Bytes())
		if len(line) == 0 {
			continue
		}
		event := decodeWatchEvent(line)
		select {
		case out <- event:
		case <-ctx.Done():
			return
		}
		if event.Type == api.Error {
			return
		}
	}
	if err := scanner.Err(); err != nil && ctx.Err() == nil {
		select {
		case out <- RawEvent{Type: api.Error, Err: fmt.Errorf("watch stream broken: %w", err)}:
		case <-ctx.Done():
		}
	}
}

// decodeWatchEvent decodes one line; an undecodable line or an ERROR event
// becomes a RawEvent with Err set.
func decodeWatchEvent(line []byte) RawEvent {
	var wire api.WatchEvent
	if err := json.Unmarshal(line, &wire); err != nil {
		return RawEvent{Type: api.Error, Err: fmt.Errorf("decoding watch event: %w", err)}
	}
	event := RawEvent{Type: wire.Type, Object: wire.Object}
	if wire.Type == api.Error {
		event.Err = decodeStatus(wire.Object, http.StatusInternalServerError)
	}
	return event
}
