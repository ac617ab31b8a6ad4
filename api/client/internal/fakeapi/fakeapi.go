// Package fakeapi is an in-memory stand-in for the kubelite API server,
// behind real HTTP(S), for the client and cache tests. It speaks enough of
// the Kubernetes REST protocol for them — create, get, list, update (also
// the status subresource), delete with preconditions, and watch streams
// with resourceVersions — and lets a test misbehave on purpose: break
// watch streams, expire history (410 Gone), hold watches, fail requests,
// send warnings, change objects without telling watchers.
//
// Objects are kept as generic JSON, so any resource path works.
package fakeapi

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"

	"kubelite/api"
)

// Server is the fake API server. Create it with Start; Close it at the end.
type Server struct {
	*httptest.Server

	mu         sync.Mutex
	token      string
	warnings   []string
	failNext   int
	objects    map[objectKey]map[string]any
	rv         int64 // the last resourceVersion handed out
	compacted  int64 // watches from before this get 410 Gone
	events     []event
	changed    chan struct{} // closed and replaced on every new event
	watches    map[*watch]struct{}
	hold       chan struct{} // while non-nil, new watches wait for it to close
	requests   []Request
	closed     chan struct{}
	closedOnce sync.Once
}

// Request is what the fake records of each request it serves.
type Request struct {
	Method string
	Path   string
	Query  map[string][]string
	Header http.Header
	Body   []byte
}

// objectKey names one object: resource is the collection path without a
// namespace, e.g. "/api/v1/pods".
type objectKey struct {
	resource, namespace, name string
}

type event struct {
	rv     int64
	key    objectKey
	typ    api.EventType
	object []byte
}

type watch struct {
	broken  chan struct{}
	expired chan struct{}
}

// Start starts a TLS server (HTTP/2 enabled) requiring token as bearer
// token (none when empty).
func Start(token string) *Server {
	s := &Server{
		token:   token,
		objects: make(map[objectKey]map[string]any),
		changed: make(chan struct{}),
		watches: make(map[*watch]struct{}),
		closed:  make(chan struct{}),
	}
	s.Server = httptest.NewUnstartedServer(s)
	s.EnableHTTP2 = true
	// Tests provoke failed handshakes on purpose; keep them out of the output.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	return s
}

// Close ends open watches and stops the server.
func (s *Server) Close() {
	s.closedOnce.Do(func() { close(s.closed) })
	s.Server.Close()
}

// SetWarnings makes every answer carry these Warning headers.
func (s *Server) SetWarnings(texts ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.warnings = texts
}

// FailRequests answers the next n requests with 500 Internal Error.
func (s *Server) FailRequests(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = n
}

// Requests returns a copy of the requests served so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// ResourceVersion is the last resourceVersion handed out.
func (s *Server) ResourceVersion() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strconv.FormatInt(s.rv, 10)
}

// OpenWatches is the number of watch streams being served.
func (s *Server) OpenWatches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.watches)
}

// BreakWatches aborts every open watch stream mid-flight, as a crashed
// server or a dropped connection would.
func (s *Server) BreakWatches() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.watches {
		close(w.broken)
		delete(s.watches, w)
	}
}

// ExpireWatches forgets the event history (as an etcd compaction does):
// open watches get an ERROR event with 410 Gone and end, and watches from
// an older resourceVersion are answered the same way.
func (s *Server) ExpireWatches() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.compacted = s.rv
	s.events = nil
	for w := range s.watches {
		close(w.expired)
		delete(s.watches, w)
	}
}

// HoldWatches makes new watch requests wait until ReleaseWatches.
func (s *Server) HoldWatches() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold == nil {
		s.hold = make(chan struct{})
	}
}

// ReleaseWatches lets held watch requests go on.
func (s *Server) ReleaseWatches() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
}

// Put creates or replaces obj as a server-side write would, telling watchers.
// It returns the new resourceVersion.
func (s *Server) Put(obj api.Object) string { return s.put(obj, true) }

// PutSilently creates or replaces obj without telling watchers, as if the
// event had been lost to a compaction.
func (s *Server) PutSilently(obj api.Object) string { return s.put(obj, false) }

// Remove deletes the object obj names, telling watchers.
func (s *Server) Remove(obj api.Object) { s.remove(obj, true) }

// RemoveSilently deletes the object obj names without telling watchers.
func (s *Server) RemoveSilently(obj api.Object) { s.remove(obj, false) }

func keyOf(obj api.Object) objectKey {
	r := api.ResourceFor(obj)
	if r == nil {
		panic(fmt.Sprintf("fakeapi: %T is not a served kind", obj))
	}
	meta := obj.GetObjectMeta()
	return objectKey{resource: r.Path("", ""), namespace: meta.Namespace, name: meta.Name}
}

func toMap(obj api.Object) map[string]any {
	data, err := json.Marshal(obj)
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		panic(err)
	}
	return m
}

func (s *Server) put(obj api.Object, notify bool) string {
	key := keyOf(obj)
	s.mu.Lock()
	defer s.mu.Unlock()
	typ := api.Modified
	if _, exists := s.objects[key]; !exists {
		typ = api.Added
	}
	return s.storeLocked(key, toMap(obj), typ, notify)
}

func (s *Server) remove(obj api.Object, notify bool) {
	key := keyOf(obj)
	s.mu.Lock()
	defer s.mu.Unlock()
	if stored, exists := s.objects[key]; exists {
		s.deleteLocked(key, stored, notify)
	}
}

// storeLocked stamps obj with the next resourceVersion and stores it.
func (s *Server) storeLocked(key objectKey, obj map[string]any, typ api.EventType, notify bool) string {
	s.rv++
	meta := metadataOf(obj)
	meta["resourceVersion"] = strconv.FormatInt(s.rv, 10)
	if meta["uid"] == nil {
		meta["uid"] = fmt.Sprintf("uid-%d", s.rv)
	}
	s.objects[key] = obj
	if notify {
		s.recordLocked(key, typ, obj)
	}
	return strconv.FormatInt(s.rv, 10)
}

func (s *Server) deleteLocked(key objectKey, stored map[string]any, notify bool) {
	s.rv++
	metadataOf(stored)["resourceVersion"] = strconv.FormatInt(s.rv, 10)
	delete(s.objects, key)
	if notify {
		s.recordLocked(key, api.Deleted, stored)
	}
}

func (s *Server) recordLocked(key objectKey, typ api.EventType, obj map[string]any) {
	data, _ := json.Marshal(obj)
	s.events = append(s.events, event{rv: s.rv, key: key, typ: typ, object: data})
	close(s.changed)
	s.changed = make(chan struct{})
}

func metadataOf(obj map[string]any) map[string]any {
	meta, ok := obj["metadata"].(map[string]any)
	if !ok {
		meta = make(map[string]any)
		obj["metadata"] = meta
	}
	return meta
}

// route is a parsed request path.
type route struct {
	resource  string // "/api/v1/pods"
	namespace string
	name      string
	sub       string
}

// parseRoute understands /api/{v}/... and /apis/{g}/{v}/..., then
// [namespaces/{ns}/]{plural}[/{name}[/{sub}]].
func parseRoute(path string) (route, bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var prefix string
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		prefix, parts = "/api/"+parts[1], parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		prefix, parts = "/apis/"+parts[1]+"/"+parts[2], parts[3:]
	default:
		return route{}, false
	}
	var r route
	if len(parts) >= 3 && parts[0] == "namespaces" {
		r.namespace, parts = parts[1], parts[2:]
	}
	if len(parts) > 3 {
		return route{}, false
	}
	r.resource = prefix + "/" + parts[0]
	if len(parts) > 1 {
		r.name = parts[1]
	}
	if len(parts) > 2 {
		r.sub = parts[2]
	}
	return r, true
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: req.Method, Path: req.URL.Path, Query: req.URL.Query(), Header: req.Header.Clone(), Body: body})
	for _, text := range s.warnings {
		w.Header().Add("Warning", `299 - "`+strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(text)+`"`)
	}
	fail := s.failNext > 0
	if fail {
		s.failNext--
	}
	token := s.token
	s.mu.Unlock()

	if token != "" && req.Header.Get("Authorization") != "Bearer "+token {
		writeJSON(w, http.StatusUnauthorized, api.NewUnauthorized())
		return
	}
	if fail {
		writeJSON(w, http.StatusInternalServerError, api.NewInternalError(fmt.Errorf("injected failure")))
		return
	}
	r, ok := parseRoute(req.URL.Path)
	if !ok {
		http.NotFound(w, req) // a plain-text 404, as a mux answers an unknown path
		return
	}
	query := req.URL.Query()
	switch {
	case req.Method == http.MethodGet && r.name == "" && query.Get("watch") == "true":
		s.serveWatch(w, req, r)
	case req.Method == http.MethodGet && r.name == "":
		s.serveList(w, r, query.Get("labelSelector"))
	case req.Method == http.MethodGet && r.sub == "":
		s.serveGet(w, r)
	case req.Method == http.MethodPost && r.name == "":
		s.serveCreate(w, r, body)
	case req.Method == http.MethodPut && (r.sub == "" || r.sub == "status"):
		s.serveUpdate(w, r, body)
	case req.Method == http.MethodDelete && r.name != "" && r.sub == "":
		s.serveDelete(w, r, body)
	default:
		writeJSON(w, http.StatusMethodNotAllowed, api.NewStatus(http.StatusMethodNotAllowed, api.ReasonMethodNotAllowed, "method not allowed"))
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func plural(resource string) string { return resource[strings.LastIndexByte(resource, '/')+1:] }

func (s *Server) serveGet(w http.ResponseWriter, r route) {
	s.mu.Lock()
	obj, ok := s.objects[objectKey{r.resource, r.namespace, r.name}]
	data, _ := json.Marshal(obj)
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, api.NewNotFound("", plural(r.resource), r.name))
		return
	}
	writeJSON(w, http.StatusOK, json.RawMessage(data))
}

// matches reports whether key lies in route r's collection and obj carries
// every label of selector ("k=v,k2=v2").
func matches(r route, selector string, key objectKey, obj map[string]any) bool {
	if key.resource != r.resource || r.namespace != "" && key.namespace != r.namespace {
		return false
	}
	labels, _ := metadataOf(obj)["labels"].(map[string]any)
	for _, term := range strings.Split(selector, ",") {
		if term == "" {
			continue
		}
		k, v, _ := strings.Cut(term, "=")
		if labels[k] != v {
			return false
		}
	}
	return true
}

func (s *Server) serveList(w http.ResponseWriter, r route, selector string) {
	s.mu.Lock()
	var keys []objectKey
	for key, obj := range s.objects {
		if matches(r, selector, key, obj) {
			keys = append(keys, key)
		}
	}
	// In key order, as etcd returns a range.
	slices.SortFunc(keys, func(a, b objectKey) int {
		return strings.Compare(a.namespace+"/"+a.name, b.namespace+"/"+b.name)
	})
	items := []map[string]any{}
	for _, key := range keys {
		items = append(items, s.objects[key])
	}
	rv := strconv.FormatInt(s.rv, 10)
	data, _ := json.Marshal(map[string]any{
		"kind": "List", "apiVersion": "v1",
		"metadata": map[string]any{"resourceVersion": rv},
		"items":    items,
	})
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, json.RawMessage(data))
}

func (s *Server) serveCreate(w http.ResponseWriter, r route, body []byte) {
	var obj map[string]any
	if err := json.Unmarshal(body, &obj); err != nil {
		writeJSON(w, http.StatusBadRequest, api.NewBadRequest(err.Error()))
		return
	}
	meta := metadataOf(obj)
	name, _ := meta["name"].(string)
	if name == "" {
		writeJSON(w, http.StatusUnprocessableEntity, api.NewInvalid("", "Object", "", api.FieldErrors{api.Required("metadata.name", "")}))
		return
	}
	if r.namespace != "" {
		meta["namespace"] = r.namespace
	}
	key := objectKey{r.resource, r.namespace, name}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.objects[key]; exists {
		writeJSON(w, http.StatusConflict, api.NewAlreadyExists("", plural(r.resource), name))
		return
	}
	s.storeLocked(key, obj, api.Added, true)
	writeJSON(w, http.StatusCreated, obj)
}

func (s *Server) serveUpdate(w http.ResponseWriter, r route, body []byte) {
	var obj map[string]any
	if err := json.Unmarshal(body, &obj); err != nil {
		writeJSON(w, http.StatusBadRequest, api.NewBadRequest(err.Error()))
		return
	}
	key := objectKey{r.resource, r.namespace, r.name}
	s.mu.Lock()
	defer s.mu.Unlock()
	stored, exists := s.objects[key]
	if !exists {
		writeJSON(w, http.StatusNotFound, api.NewNotFound("", plural(r.resource), r.name))
		return
	}
	if rv, _ := metadataOf(obj)["resourceVersion"].(string); rv != "" && rv != metadataOf(stored)["resourceVersion"] {
		writeJSON(w, http.StatusConflict, api.NewConflict("", plural(r.resource), r.name,
			fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again")))
		return
	}
	if r.sub == "status" {
		// Only the status changes through the status subresource.
		updated := make(map[string]any, len(stored))
		for k, v := range stored {
			updated[k] = v
		}
		updated["status"] = obj["status"]
		obj = updated
	}
	s.storeLocked(key, obj, api.Modified, true)
	writeJSON(w, http.StatusOK, obj)
}

func (s *Server) serveDelete(w http.ResponseWriter, r route, body []byte) {
	var opts struct {
		Preconditions struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"preconditions"`
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &opts); err != nil {
			writeJSON(w, http.StatusBadRequest, api.NewBadRequest(err.Error()))
			return
		}
	}
	key := objectKey{r.resource, r.namespace, r.name}
	s.mu.Lock()
	defer s.mu.Unlock()
	stored, exists := s.objects[key]
	if !exists {
		writeJSON(w, http.StatusNotFound, api.NewNotFound("", plural(r.resource), r.name))
		return
	}
	if want := opts.Preconditions.ResourceVersion; want != "" && want != metadataOf(stored)["resourceVersion"] {
		writeJSON(w, http.StatusConflict, api.NewConflict("", plural(r.resource), r.name,
			fmt.Errorf("precondition failed: resourceVersion %s", want)))
		return
	}
	s.deleteLocked(key, stored, true)
	status := &api.Status{TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "Status"}, Status: "Success",
		Details: &api.StatusDetails{Name: r.name, Kind: plural(r.resource)}}
	writeJSON(w, http.StatusOK, status)
}

// serveWatch streams events after the requested resourceVersion ("" = the
// current objects as ADDED, then changes) until the client goes away or the
// test breaks or expires the stream.
func (s *Server) serveWatch(w http.ResponseWriter, req *http.Request, r route) {
	selector := req.URL.Query().Get("labelSelector")
	s.mu.Lock()
	hold := s.hold
	s.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-req.Context().Done():
			return
		case <-s.closed:
			return
		}
	}

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher := http.NewResponseController(w)
	encoder := json.NewEncoder(w)
	gone := func() {
		status, _ := json.Marshal(api.NewGone("too old resource version"))
		encoder.Encode(api.WatchEvent{Type: api.Error, Object: status})
		flusher.Flush()
	}

	// Events are gathered under the lock and written after it, so a slow
	// reader never blocks the test's calls into the fake.
	var pending []api.WatchEvent
	s.mu.Lock()
	var cursor int64
	if since := req.URL.Query().Get("resourceVersion"); since == "" || since == "0" {
		for key, obj := range s.objects {
			if matches(r, selector, key, obj) {
				data, _ := json.Marshal(obj)
				pending = append(pending, api.WatchEvent{Type: api.Added, Object: data})
			}
		}
		cursor = s.rv
	} else {
		n, err := strconv.ParseInt(since, 10, 64)
		if err != nil || n < s.compacted {
			s.mu.Unlock()
			gone()
			return
		}
		cursor = n
	}
	self := &watch{broken: make(chan struct{}), expired: make(chan struct{})}
	s.watches[self] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watches, self)
		s.mu.Unlock()
	}()

	for {
		s.mu.Lock()
		for _, ev := range s.events {
			if ev.rv > cursor && matches(r, selector, ev.key, map[string]any{"metadata": metadataFromJSON(ev.object)}) {
				pending = append(pending, api.WatchEvent{Type: ev.typ, Object: ev.object})
			}
			cursor = max(cursor, ev.rv)
		}
		changed := s.changed
		s.mu.Unlock()

		for _, ev := range pending {
			encoder.Encode(ev)
		}
		flusher.Flush()
		pending = pending[:0]

		select {
		case <-changed:
		case <-self.broken:
			panic(http.ErrAbortHandler) // resets the stream without an orderly end
		case <-self.expired:
			gone()
			return
		case <-req.Context().Done():
			return
		case <-s.closed:
			return
		}
	}
}

func metadataFromJSON(object []byte) map[string]any {
	var obj map[string]any
	json.Unmarshal(object, &obj)
	return metadataOf(obj)
}
