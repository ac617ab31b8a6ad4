package kubectl

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"kubelite/api"
)

// fakeServer is a small in-memory API server for the command tests: it
// stores objects as JSON maps, keeps a resourceVersion counter that moves
// only when something changes, answers errors as Kubernetes Status bodies,
// and streams scripted watch events.
type fakeServer struct {
	t      *testing.T
	scheme *api.Scheme
	server *httptest.Server

	mu       sync.Mutex
	rv       int
	objects  map[string]map[string]any // by objectKey
	requests []string                  // "METHOD path?query"
	// reject, when set, may refuse a create or update with a Status.
	reject func(r *api.Resource, obj map[string]any) *api.Status
	// watchEvents are streamed to a watch of a resource (by plural), then
	// the stream ends.
	watchEvents map[string][]api.WatchEvent
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	fs := &fakeServer{t: t, scheme: api.NewScheme(), objects: map[string]map[string]any{}, watchEvents: map[string][]api.WatchEvent{}}
	fs.server = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(fs.server.Close)
	return fs
}

// run runs kubectl-lite against the fake server and returns what it printed.
func (fs *fakeServer) run(stdin string, args ...string) (stdout, stderr string, code int) {
	fs.t.Helper()
	var out, errOut strings.Builder
	cmd := newRootCommand(IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}, testEnvironment(fs.t))
	cmd.SetArgs(append([]string{"--server", fs.server.URL, "--token", "test-token"}, args...))
	err := cmd.Execute()
	return out.String(), errOut.String(), ExitCode(err)
}

// testEnvironment has the test clock and an empty home: no kubeconfig of
// the machine leaks into a test.
func testEnvironment(t *testing.T) environment {
	home := t.TempDir()
	return environment{
		now:     func() time.Time { return testNow },
		getenv:  func(string) string { return "" },
		homeDir: func() (string, error) { return home, nil },
	}
}

func objectKey(r *api.Resource, ns, name string) string {
	if !r.Namespaced {
		ns = ""
	}
	return r.Plural + "/" + ns + "/" + name
}

// add stores a typed object as the server would have it.
func (fs *fakeServer) add(obj api.Object) {
	fs.t.Helper()
	r := fs.scheme.For(obj)
	data, err := json.Marshal(obj)
	if err != nil {
		fs.t.Fatal(err)
	}
	m, err := decodeJSONObject(data)
	if err != nil {
		fs.t.Fatal(err)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.rv++
	m["apiVersion"], m["kind"] = r.APIVersion(), r.Kind
	meta := m["metadata"].(map[string]any)
	meta["resourceVersion"] = strconv.Itoa(fs.rv)
	fs.objects[objectKey(r, obj.GetObjectMeta().Namespace, obj.GetObjectMeta().Name)] = m
}

// get returns a stored object, or nil.
func (fs *fakeServer) get(plural, ns, name string) map[string]any {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	r, _ := fs.scheme.ByName(plural)
	return fs.objects[objectKey(r, ns, name)]
}

func (fs *fakeServer) requestLog() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]string(nil), fs.requests...)
}

// route is what a request path names.
type route struct {
	resource   *api.Resource
	apiVersion string
	ns, name   string
	sub        string
}

// parsePath reads /api/v1/[namespaces/NS/]PLURAL[/NAME[/SUB]] and the /apis form.
func (fs *fakeServer) parsePath(path string) (*route, bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var group, version string
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		version, parts = parts[1], parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		group, version, parts = parts[1], parts[2], parts[3:]
	default:
		return nil, false
	}
	rt := &route{apiVersion: api.GroupVersion(group, version)}
	if len(parts) >= 3 && parts[0] == "namespaces" {
		rt.ns, parts = parts[1], parts[2:]
	}
	r, _, ok := fs.scheme.ByGroupVersionResource(group, version, parts[0])
	if !ok {
		// /api/v1/namespaces/NAME is the namespace itself.
		if rt.ns != "" || parts[0] != "namespaces" {
			return nil, false
		}
	}
	if rt.ns != "" && len(parts) >= 1 && !ok {
		return nil, false
	}
	rt.resource = r
	if len(parts) >= 2 {
		rt.name = parts[1]
	}
	if len(parts) >= 3 {
		rt.sub = parts[2]
	}
	return rt, true
}

func (fs *fakeServer) serve(w http.ResponseWriter, req *http.Request) {
	fs.mu.Lock()
	entry := req.Method + " " + req.URL.Path
	if req.URL.RawQuery != "" {
		entry += "?" + req.URL.RawQuery
	}
	fs.requests = append(fs.requests, entry)
	fs.mu.Unlock()

	switch req.URL.Path {
	case "/version":
		writeJSON(w, http.StatusOK, map[string]any{"major": "1", "minor": "32", "gitVersion": "v1.32.0-kubelite", "goVersion": "go1.26", "compiler": "gc", "platform": "linux/amd64"})
		return
	case "/api":
		writeJSON(w, http.StatusOK, map[string]any{"kind": "APIVersions", "versions": []string{"v1"}})
		return
	case "/apis":
		writeJSON(w, http.StatusOK, fs.groupList())
		return
	}
	if list, ok := fs.resourceList(req.URL.Path); ok {
		writeJSON(w, http.StatusOK, list)
		return
	}
	rt, ok := fs.parsePath(req.URL.Path)
	if !ok || rt.resource == nil {
		writeStatus(w, api.NewStatus(http.StatusNotFound, api.ReasonNotFound, "the server could not find the requested resource"))
		return
	}
	if rt.apiVersion != rt.resource.APIVersion() {
		w.Header().Add("Warning", fmt.Sprintf(`299 - "%s %s is deprecated in v1.9+, unavailable in v1.16+; use %s %s"`, rt.apiVersion, rt.resource.Kind, rt.resource.APIVersion(), rt.resource.Kind))
	}
	var body map[string]any
	if req.Body != nil {
		data, _ := io.ReadAll(req.Body)
		if len(data) > 0 && req.Method != http.MethodDelete {
			var err error
			if body, err = decodeJSONObject(data); err != nil {
				writeStatus(w, api.NewBadRequest(err.Error()))
				return
			}
		}
	}
	switch {
	case req.Method == http.MethodGet && rt.name == "" && req.URL.Query().Get("watch") == "true":
		fs.serveWatch(w, rt)
	case req.Method == http.MethodGet && rt.name == "":
		fs.serveList(w, req, rt)
	case req.Method == http.MethodGet && rt.sub == "scale":
		fs.serveGetScale(w, rt)
	case req.Method == http.MethodPut && rt.sub == "scale":
		fs.servePutScale(w, rt, body)
	case req.Method == http.MethodGet:
		fs.serveGet(w, rt)
	case req.Method == http.MethodPost:
		fs.serveCreate(w, rt, body)
	case req.Method == http.MethodPut:
		fs.serveUpdate(w, rt, body)
	case req.Method == http.MethodDelete:
		fs.serveDelete(w, rt)
	default:
		writeStatus(w, api.NewStatus(http.StatusMethodNotAllowed, api.ReasonMethodNotAllowed, "method not allowed"))
	}
}

func (fs *fakeServer) groupList() map[string]any {
	groups := map[string]bool{}
	var out []any
	for _, r := range fs.scheme.All() {
		if r.Group == "" || groups[r.Group] {
			continue
		}
		groups[r.Group] = true
		gv := map[string]any{"groupVersion": r.APIVersion(), "version": r.Version}
		out = append(out, map[string]any{"name": r.Group, "versions": []any{gv}, "preferredVersion": gv})
	}
	return map[string]any{"kind": "APIGroupList", "groups": out}
}

// resourceList answers the discovery document of one group version.
func (fs *fakeServer) resourceList(path string) (map[string]any, bool) {
	var gv string
	switch {
	case strings.HasPrefix(path, "/api/") && strings.Count(path, "/") == 2:
		gv = strings.TrimPrefix(path, "/api/")
	case strings.HasPrefix(path, "/apis/") && strings.Count(path, "/") == 3:
		gv = strings.TrimPrefix(path, "/apis/")
	default:
		return nil, false
	}
	var resources []any
	for _, r := range fs.scheme.All() {
		if r.APIVersion() != gv {
			continue
		}
		resources = append(resources, map[string]any{"name": r.Plural, "singularName": r.Singular, "namespaced": r.Namespaced,
			"kind": r.Kind, "shortNames": r.ShortNames, "verbs": []string{"watch", "get", "list", "create", "update", "delete"}})
		for _, sub := range r.Subresources {
			resources = append(resources, map[string]any{"name": r.Plural + "/" + sub, "namespaced": r.Namespaced, "kind": r.Kind})
		}
	}
	return map[string]any{"kind": "APIResourceList", "groupVersion": gv, "resources": resources}, true
}

func (fs *fakeServer) serveGet(w http.ResponseWriter, rt *route) {
	fs.mu.Lock()
	obj, ok := fs.objects[objectKey(rt.resource, rt.ns, rt.name)]
	fs.mu.Unlock()
	if !ok {
		writeStatus(w, api.NewNotFound(rt.resource.Group, rt.resource.Plural, rt.name))
		return
	}
	writeJSON(w, http.StatusOK, obj)
}

func (fs *fakeServer) serveList(w http.ResponseWriter, req *http.Request, rt *route) {
	labelSel, err := api.ParseSelector(req.URL.Query().Get("labelSelector"))
	if err != nil {
		writeStatus(w, api.NewBadRequest(err.Error()))
		return
	}
	fieldSel, err := api.ParseFieldSelector(req.URL.Query().Get("fieldSelector"))
	if err != nil {
		writeStatus(w, api.NewBadRequest(err.Error()))
		return
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var keys []string
	prefix := rt.resource.Plural + "/"
	if rt.resource.Namespaced && rt.ns != "" {
		prefix += rt.ns + "/"
	}
	for key := range fs.objects {
		if strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	items := []any{}
	for _, key := range keys {
		obj := fs.objects[key]
		data, _ := json.Marshal(obj)
		typed, err := decodeObject(rt.resource, data)
		if err != nil {
			fs.t.Errorf("fake server: %v", err)
			continue
		}
		if !labelSel.Matches(typed.GetObjectMeta().Labels) || !fieldSel.Matches(api.FieldsOf(typed)) {
			continue
		}
		items = append(items, obj)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"apiVersion": rt.resource.APIVersion(), "kind": rt.resource.ListKind(),
		"metadata": map[string]any{"resourceVersion": strconv.Itoa(fs.rv)},
		"items":    items,
	})
}

func (fs *fakeServer) serveWatch(w http.ResponseWriter, rt *route) {
	fs.mu.Lock()
	events := fs.watchEvents[rt.resource.Plural]
	fs.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for _, ev := range events {
		if err := enc.Encode(ev); err != nil {
			return
		}
		w.(http.Flusher).Flush()
	}
}

func (fs *fakeServer) serveCreate(w http.ResponseWriter, rt *route, obj map[string]any) {
	if fs.reject != nil {
		if status := fs.reject(rt.resource, obj); status != nil {
			writeStatus(w, status)
			return
		}
	}
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	key := objectKey(rt.resource, rt.ns, name)
	if _, exists := fs.objects[key]; exists {
		writeStatus(w, api.NewAlreadyExists(rt.resource.Group, rt.resource.Plural, name))
		return
	}
	fs.rv++
	obj["apiVersion"] = rt.resource.APIVersion() // stored (converted) version
	meta["uid"] = "uid-" + name
	meta["resourceVersion"] = strconv.Itoa(fs.rv)
	meta["creationTimestamp"] = testNow.Format(time.RFC3339)
	if rt.resource.Namespaced {
		meta["namespace"] = rt.ns
	}
	fs.objects[key] = obj
	writeJSON(w, http.StatusCreated, obj)
}

func (fs *fakeServer) serveUpdate(w http.ResponseWriter, rt *route, obj map[string]any) {
	if fs.reject != nil {
		if status := fs.reject(rt.resource, obj); status != nil {
			writeStatus(w, status)
			return
		}
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	key := objectKey(rt.resource, rt.ns, rt.name)
	current, ok := fs.objects[key]
	if !ok {
		writeStatus(w, api.NewNotFound(rt.resource.Group, rt.resource.Plural, rt.name))
		return
	}
	meta := obj["metadata"].(map[string]any)
	currentMeta := current["metadata"].(map[string]any)
	if rv, _ := meta["resourceVersion"].(string); rv != "" && rv != currentMeta["resourceVersion"] {
		writeStatus(w, api.NewConflict(rt.resource.Group, rt.resource.Plural, rt.name, fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again")))
		return
	}
	obj["apiVersion"] = rt.resource.APIVersion()
	meta["resourceVersion"] = currentMeta["resourceVersion"]
	if reflect.DeepEqual(obj, current) {
		writeJSON(w, http.StatusOK, current) // a no-op update keeps the resourceVersion
		return
	}
	fs.rv++
	meta["resourceVersion"] = strconv.Itoa(fs.rv)
	fs.objects[key] = obj
	writeJSON(w, http.StatusOK, obj)
}

func (fs *fakeServer) serveDelete(w http.ResponseWriter, rt *route) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	key := objectKey(rt.resource, rt.ns, rt.name)
	if _, ok := fs.objects[key]; !ok {
		writeStatus(w, api.NewNotFound(rt.resource.Group, rt.resource.Plural, rt.name))
		return
	}
	delete(fs.objects, key)
	fs.rv++
	writeJSON(w, http.StatusOK, map[string]any{"apiVersion": "v1", "kind": "Status", "status": "Success"})
}

func (fs *fakeServer) serveGetScale(w http.ResponseWriter, rt *route) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	obj, ok := fs.objects[objectKey(rt.resource, rt.ns, rt.name)]
	if !ok {
		writeStatus(w, api.NewNotFound(rt.resource.Group, rt.resource.Plural, rt.name))
		return
	}
	meta := obj["metadata"].(map[string]any)
	spec := obj["spec"].(map[string]any)
	writeJSON(w, http.StatusOK, map[string]any{
		"apiVersion": "autoscaling/v1", "kind": "Scale",
		"metadata": map[string]any{"name": rt.name, "namespace": rt.ns, "resourceVersion": meta["resourceVersion"]},
		"spec":     map[string]any{"replicas": spec["replicas"]},
		"status":   map[string]any{"replicas": 3, "selector": "run=httpd"},
	})
}

func (fs *fakeServer) servePutScale(w http.ResponseWriter, rt *route, scale map[string]any) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	obj, ok := fs.objects[objectKey(rt.resource, rt.ns, rt.name)]
	if !ok {
		writeStatus(w, api.NewNotFound(rt.resource.Group, rt.resource.Plural, rt.name))
		return
	}
	meta := obj["metadata"].(map[string]any)
	if rv := scale["metadata"].(map[string]any)["resourceVersion"]; rv != meta["resourceVersion"] {
		writeStatus(w, api.NewConflict(rt.resource.Group, rt.resource.Plural, rt.name, fmt.Errorf("the object has been modified")))
		return
	}
	replicas := scale["spec"].(map[string]any)["replicas"]
	if replicas == nil {
		replicas = json.Number("0")
	}
	obj["spec"].(map[string]any)["replicas"] = replicas
	fs.rv++
	meta["resourceVersion"] = strconv.Itoa(fs.rv)
	scale["metadata"].(map[string]any)["resourceVersion"] = meta["resourceVersion"]
	writeJSON(w, http.StatusOK, scale)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeStatus(w http.ResponseWriter, status *api.Status) {
	writeJSON(w, int(status.Code), status)
}
