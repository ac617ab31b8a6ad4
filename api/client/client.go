// Package client is the REST client of the kubelite API: a dynamic client on
// raw JSON (used by kubectl-lite) and a typed generic client on top of it
// (used by the controllers, the node agent, the proxy and DNS).
package client

import (
	"context"
	"encoding/json"
	"io"
	"net/url"

	"kubelite/api"
)

// Config says how to reach and authenticate to the API server.
type Config struct {
	Server    string // https://127.0.0.1:6443
	Token     string // bearer token
	CAData    []byte // PEM CA bundle; empty means the system roots
	Insecure  bool   // skip TLS verification (tests, --insecure-skip-tls-verify)
	UserAgent string
	// OnWarning receives each Warning header of a response (deprecations).
	OnWarning func(msg string)
}

// LoadKubeconfig reads a kubeconfig file (current-context, or ctxName when
// non-empty): server, certificate-authority(-data), insecure-skip-tls-verify,
// token or tokenFile.
func LoadKubeconfig(path, ctxName string) (*Config, error) { panic("TODO") }

// WriteKubeconfig writes a kubeconfig for cfg with mode 0600.
func WriteKubeconfig(path string, cfg *Config, clusterName, userName string) error { panic("TODO") }

// Client talks to one API server.
type Client struct {
	// TODO(client helper)
}

// New returns a client for cfg.
func New(cfg *Config) (*Client, error) { panic("TODO") }

// Do performs one request. A non-2xx answer is returned as a *api.Status
// error (decoded from the body, or synthesised from the code).
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body []byte) ([]byte, error) {
	panic("TODO")
}

// Stream performs a request whose answer is read incrementally (watch, logs).
func (c *Client) Stream(ctx context.Context, method, path string, query url.Values) (io.ReadCloser, error) {
	panic("TODO")
}

// ListOptions select what a list or watch returns.
type ListOptions struct {
	LabelSelector   string
	FieldSelector   string
	ResourceVersion string
	TimeoutSeconds  *int64
}

// WriteOptions tune a create or update.
type WriteOptions struct {
	// FieldValidation is "Strict" (default: unknown fields are errors), "Warn" or "Ignore".
	FieldValidation string
}

// DeleteOptions tune a delete.
type DeleteOptions struct {
	GracePeriodSeconds *int64
	// PropagationPolicy is "Background" (default), "Foreground" or "Orphan".
	PropagationPolicy string
	// ResourceVersion, when set, is a precondition.
	ResourceVersion string
}

// RawEvent is one watch event with the object as JSON. A final event with
// Type api.Error carries Err (e.g. a 410 Gone *api.Status).
type RawEvent struct {
	Type   api.EventType
	Object json.RawMessage
	Err    error
}

// Dynamic is the raw-JSON client for one resource in one namespace ("" for
// cluster-scoped resources or all namespaces).
type Dynamic struct {
	// TODO(client helper)
}

// Resource returns the dynamic client of r in namespace ns.
func (c *Client) Resource(r *api.Resource, ns string) *Dynamic { panic("TODO") }

// Get returns one object.
func (d *Dynamic) Get(ctx context.Context, name string) (json.RawMessage, error) { panic("TODO") }

// List returns the list body (kind XList, metadata.resourceVersion, items).
func (d *Dynamic) List(ctx context.Context, opts ListOptions) (json.RawMessage, error) { panic("TODO") }

// Create posts body to the collection. apiVersion is the path version to
// post to (e.g. "apps/v1beta1" for a legacy manifest; "" = the stored one).
func (d *Dynamic) Create(ctx context.Context, apiVersion string, body []byte, opts WriteOptions) (json.RawMessage, error) {
	panic("TODO")
}

// Update puts body to the object (full replacement).
func (d *Dynamic) Update(ctx context.Context, apiVersion, name string, body []byte, opts WriteOptions) (json.RawMessage, error) {
	panic("TODO")
}

// Delete deletes one object and returns the server's answer.
func (d *Dynamic) Delete(ctx context.Context, name string, opts DeleteOptions) (json.RawMessage, error) {
	panic("TODO")
}

// Watch streams changes; the channel closes when ctx ends or the stream breaks.
func (d *Dynamic) Watch(ctx context.Context, opts ListOptions) (<-chan RawEvent, error) {
	panic("TODO")
}

// Subresource performs method on {object}/{sub} (status, scale, binding, log...).
func (d *Dynamic) Subresource(ctx context.Context, method, name, sub string, query url.Values, body []byte) ([]byte, error) {
	panic("TODO")
}

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
type Typed[T any, PT ObjectPtr[T]] struct {
	// TODO(client helper)
}

// For returns the typed client of T's resource in namespace ns, e.g.
// client.For[api.Pod](c, "default").
func For[T any, PT ObjectPtr[T]](c *Client, ns string) *Typed[T, PT] { panic("TODO") }

// Create creates obj and returns what the server stored.
func (t *Typed[T, PT]) Create(ctx context.Context, obj PT) (PT, error) { panic("TODO") }

// Get returns one object.
func (t *Typed[T, PT]) Get(ctx context.Context, name string) (PT, error) { panic("TODO") }

// List returns the matching objects and the list's resourceVersion.
func (t *Typed[T, PT]) List(ctx context.Context, opts ListOptions) (*api.List[T], error) {
	panic("TODO")
}

// Update replaces obj (409 Conflict when its resourceVersion is stale).
func (t *Typed[T, PT]) Update(ctx context.Context, obj PT) (PT, error) { panic("TODO") }

// UpdateStatus replaces obj's status through the status subresource.
func (t *Typed[T, PT]) UpdateStatus(ctx context.Context, obj PT) (PT, error) { panic("TODO") }

// Delete deletes one object.
func (t *Typed[T, PT]) Delete(ctx context.Context, name string, opts DeleteOptions) error {
	panic("TODO")
}

// Watch streams typed changes; see Dynamic.Watch.
func (t *Typed[T, PT]) Watch(ctx context.Context, opts ListOptions) (<-chan Event[PT], error) {
	panic("TODO")
}
