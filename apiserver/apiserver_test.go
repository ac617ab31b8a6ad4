package apiserver_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/apiserver"
	"kubelite/apiserver/apiservertest"
	"kubelite/apiserver/auth"
	"kubelite/apiserver/storage"
)

// testCluster is an API server over a real embedded etcd, served over TLS
// with real tokens, and an admin client.
type testCluster struct {
	*apiservertest.Server
	url      string
	tokens   auth.ServerTokens
	store    *storage.Store
	admin    *client.Client
	warnings *apiservertest.Warnings
}

func startCluster(t *testing.T) *testCluster {
	t.Helper()
	s := apiservertest.Start(t, apiservertest.Options{})
	return &testCluster{Server: s, url: s.URL, tokens: s.Tokens, store: s.Store, admin: s.Admin, warnings: s.Warnings}
}

func (tc *testCluster) clientWithToken(t *testing.T, token string) *client.Client {
	return tc.Client(t, token)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newPod(name string, labels map[string]string) *api.Pod {
	return &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: name, Labels: labels},
		Spec:       api.PodSpec{Containers: []api.Container{{Name: "web", Image: "httpd"}}},
	}
}

func wantReason(t *testing.T, err error, reason api.StatusReason, code int32) *api.Status {
	t.Helper()
	var st *api.Status
	if !errors.As(err, &st) {
		t.Fatalf("want a %s Status error, got %v", reason, err)
	}
	if st.Reason != reason || st.Code != code {
		t.Fatalf("want %s/%d, got %s/%d: %s", reason, code, st.Reason, st.Code, st.Message)
	}
	return st
}

func TestSystemNamespacesExistAfterStart(t *testing.T) {
	tc := startCluster(t)
	list, err := client.For[api.Namespace](tc.admin, "").List(ctxT(t), client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, ns := range list.Items {
		got[ns.Name] = ns.Status.Phase
	}
	for _, name := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		if got[name] != "Active" {
			t.Errorf("namespace %s: phase %q, want Active (all: %v)", name, got[name], got)
		}
	}
	err = client.For[api.Namespace](tc.admin, "").Delete(ctxT(t), "default", client.DeleteOptions{})
	wantReason(t, err, api.ReasonForbidden, 403)
}

func TestPodCRUDAndConflicts(t *testing.T) {
	tc := startCluster(t)
	ctx := ctxT(t)
	pods := client.For[api.Pod](tc.admin, "default")

	created, err := pods.Create(ctx, newPod("web", map[string]string{"app": "web"}))
	if err != nil {
		t.Fatal(err)
	}
	if created.UID == "" || created.ResourceVersion == "" || created.CreationTimestamp.IsZero() {
		t.Fatalf("server-set metadata missing: %+v", created.ObjectMeta)
	}
	if created.Spec.RestartPolicy != "Always" || created.Status.Phase != "Pending" {
		t.Fatalf("defaults not applied: restartPolicy=%q phase=%q", created.Spec.RestartPolicy, created.Status.Phase)
	}

	_, err = pods.Create(ctx, newPod("web", nil))
	st := wantReason(t, err, api.ReasonAlreadyExists, 409)
	if st.Message != `pods "web" already exists` {
		t.Errorf("message %q", st.Message)
	}

	// An update from the current resourceVersion succeeds; replaying the same
	// (now stale) object is a conflict.
	stale := api.DeepCopy(created)
	created.Labels["tier"] = "front"
	updated, err := pods.Update(ctx, created)
	if err != nil {
		t.Fatal(err)
	}
	if updated.ResourceVersion == stale.ResourceVersion {
		t.Fatal("resourceVersion did not change on update")
	}
	stale.Labels["tier"] = "back"
	_, err = pods.Update(ctx, stale)
	wantReason(t, err, api.ReasonConflict, 409)

	// Status written through the main resource is ignored; through /status it sticks.
	updated.Status.Phase = "Running"
	afterMain, err := pods.Update(ctx, updated)
	if err != nil {
		t.Fatal(err)
	}
	if afterMain.Status.Phase != "Pending" {
		t.Fatalf("main-resource update changed status to %q", afterMain.Status.Phase)
	}
	afterMain.Status.Phase = "Running"
	afterStatus, err := pods.UpdateStatus(ctx, afterMain)
	if err != nil {
		t.Fatal(err)
	}
	if afterStatus.Status.Phase != "Running" {
		t.Fatalf("status update lost: %q", afterStatus.Status.Phase)
	}

	if err := pods.Delete(ctx, "web", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = pods.Get(ctx, "web")
	st = wantReason(t, err, api.ReasonNotFound, 404)
	if st.Message != `pods "web" not found` {
		t.Errorf("message %q", st.Message)
	}

	_, err = client.For[api.Pod](tc.admin, "nope").Create(ctx, newPod("x", nil))
	st = wantReason(t, err, api.ReasonNotFound, 404)
	if !strings.Contains(st.Message, `namespaces "nope" not found`) {
		t.Errorf("message %q", st.Message)
	}
}

// The tutorial's Deployment is written in apps/v1beta1 without a selector.
const httpdV1beta1 = `apiVersion: apps/v1beta1
kind: Deployment
metadata:
  name: httpd
spec:
  replicas: 3
  template:
    metadata:
      labels:
        run: httpd
    spec:
      containers:
      - name: httpd
        image: httpd
        ports:
        - containerPort: 80
`

// The tutorial's httpd2.yml writes `port:` where `ports:` is meant.
const httpd2Typo = `apiVersion: apps/v1beta1
kind: Deployment
metadata:
  name: httpd2
  namespace: kube-public
spec:
  replicas: 3
  template:
    metadata:
      labels:
        run: httpd2
    spec:
      containers:
      - name: httpd2
        image: httpd
        port:
        - containerPort: 80
`

func TestLegacyDeploymentIsConvertedWithWarning(t *testing.T) {
	tc := startCluster(t)
	ctx := ctxT(t)
	deployRes, _ := api.NewScheme().ByName("deployments")
	raw, err := tc.admin.Resource(deployRes, "default").Create(ctx, "apps/v1beta1", []byte(httpdV1beta1), client.WriteOptions{FieldValidation: "Strict"})
	if err != nil {
		t.Fatal(err)
	}
	var d api.Deployment
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if d.APIVersion != "apps/v1" || d.Spec.Selector == nil || d.Spec.Selector.MatchLabels["run"] != "httpd" {
		t.Fatalf("not converted to apps/v1 with a defaulted selector: %s", raw)
	}
	warned := false
	for _, w := range tc.warnings.All() {
		if strings.Contains(w, "apps/v1beta1 Deployment is deprecated") {
			warned = true
		}
	}
	if !warned {
		t.Fatalf("no deprecation warning, got %q", tc.warnings.All())
	}
	stored, err := client.For[api.Deployment](tc.admin, "default").Get(ctx, "httpd")
	if err != nil || *stored.Spec.Replicas != 3 {
		t.Fatalf("stored deployment: %v %v", stored, err)
	}
}

func TestStrictDecodingNamesTheFieldAndCreatesNothing(t *testing.T) {
	tc := startCluster(t)
	ctx := ctxT(t)
	deployRes, _ := api.NewScheme().ByName("deployments")
	dyn := tc.admin.Resource(deployRes, "kube-public")
	_, err := dyn.Create(ctx, "apps/v1beta1", []byte(httpd2Typo), client.WriteOptions{FieldValidation: "Strict"})
	st := wantReason(t, err, api.ReasonBadRequest, 400)
	want := `unknown field "spec.template.spec.containers[0].port" (did you mean "ports"?)`
	if !strings.Contains(st.Message, want) {
		t.Fatalf("message %q does not contain %q", st.Message, want)
	}
	if _, err := dyn.Get(ctx, "httpd2"); !api.IsNotFound(err) {
		t.Fatalf("a refused document was stored anyway: %v", err)
	}
	// --validate=false: the unknown field is dropped and the object created.
	if _, err := dyn.Create(ctx, "apps/v1beta1", []byte(httpd2Typo), client.WriteOptions{FieldValidation: "Ignore"}); err != nil {
		t.Fatalf("Ignore: %v", err)
	}
}

func TestValidationErrorsListEveryField(t *testing.T) {
	tc := startCluster(t)
	svc := &api.Service{
		ObjectMeta: api.ObjectMeta{Name: "Bad_Name"},
		Spec:       api.ServiceSpec{Ports: []api.ServicePort{{Port: 0}}},
	}
	_, err := client.For[api.Service](tc.admin, "default").Create(ctxT(t), svc)
	st := wantReason(t, err, api.ReasonInvalid, 422)
	fields := map[string]bool{}
	for _, c := range st.Details.Causes {
		fields[c.Field] = true
	}
	if !fields["metadata.name"] || !fields["spec.ports[0].port"] {
		t.Fatalf("causes %+v should name metadata.name and spec.ports[0].port", st.Details.Causes)
	}
}

func TestListSelectors(t *testing.T) {
	tc := startCluster(t)
	ctx := ctxT(t)
	pods := client.For[api.Pod](tc.admin, "default")
	for i, tier := range []string{"front", "front", "back"} {
		p := newPod(fmt.Sprintf("p%d", i), map[string]string{"tier": tier, "app": "shop"})
		if i == 0 {
			p.Spec.NodeName = "node1"
		}
		if _, err := pods.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		labels, fields string
		want           int
	}{
		{"tier=front", "", 2},
		{"tier!=front", "", 1},
		{"tier in (front,back)", "", 3},
		{"tier notin (front)", "", 1},
		{"app,!missing", "", 3},
		{"", "spec.nodeName=node1", 1},
		{"", "spec.nodeName=", 2},
		{"tier=front", "metadata.name!=p0", 1},
		{"", "status.phase=Pending", 3},
	}
	for _, c := range cases {
		list, err := pods.List(ctx, client.ListOptions{LabelSelector: c.labels, FieldSelector: c.fields})
		if err != nil {
			t.Fatalf("%q %q: %v", c.labels, c.fields, err)
		}
		if len(list.Items) != c.want {
			t.Errorf("labels %q fields %q: %d items, want %d", c.labels, c.fields, len(list.Items), c.want)
		}
		if list.ResourceVersion == "" {
			t.Errorf("list without resourceVersion")
		}
	}
	_, err := pods.List(ctx, client.ListOptions{FieldSelector: "spec.bogus=x"})
	wantReason(t, err, api.ReasonBadRequest, 400)
}

// A client that lists and then watches from the list's resourceVersion must
// see every later write exactly once, even while writes keep coming.
func TestWatchFromListResourceVersionHasNoGap(t *testing.T) {
	tc := startCluster(t)
	ctx := ctxT(t)
	pods := client.For[api.Pod](tc.admin, "default")
	const before, during = 5, 40
	for i := 0; i < before; i++ {
		if _, err := pods.Create(ctx, newPod(fmt.Sprintf("a%d", i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // writes race with the list below
		defer wg.Done()
		for i := 0; i < during; i++ {
			if _, err := pods.Create(ctx, newPod(fmt.Sprintf("b%d", i), nil)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	list, err := pods.List(ctx, client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, p := range list.Items {
		seen[p.Name]++
	}
	events, err := pods.Watch(ctx, client.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for len(seen) < before+during {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("watch ended early; seen %d", len(seen))
			}
			if ev.Type != api.Added {
				t.Fatalf("unexpected event %s", ev.Type)
			}
			seen[ev.Object.Name]++
		case <-ctx.Done():
			t.Fatalf("timed out with %d of %d objects seen", len(seen), before+during)
		}
	}
	for name, n := range seen {
		if n != 1 {
			t.Errorf("%s seen %d times", name, n)
		}
	}
}

func TestWatchFromCompactedRevisionIsGone(t *testing.T) {
	tc := startCluster(t)
	ctx := ctxT(t)
	pods := client.For[api.Pod](tc.admin, "default")
	first, err := pods.Create(ctx, newPod("a", nil))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := pods.Create(ctx, newPod(fmt.Sprintf("b%d", i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	rev, err := tc.store.CurrentRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.store.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	events, err := pods.Watch(ctx, client.ListOptions{ResourceVersion: first.ResourceVersion})
	if err == nil {
		ev, ok := <-events
		if !ok {
			t.Fatal("watch closed without an error event")
		}
		err = ev.Err
	}
	wantReason(t, err, api.ReasonGone, 410)
}

func TestAuthentication(t *testing.T) {
	tc := startCluster(t)
	ctx := ctxT(t)
	for name, token := range map[string]string{"no token": "", "wrong token": "not-the-token"} {
		c := tc.clientWithToken(t, token)
		_, err := client.For[api.Pod](c, "default").List(ctx, client.ListOptions{})
		if st := wantReason(t, err, api.ReasonUnauthorized, 401); st.Message != "Unauthorized" {
			t.Errorf("%s: message %q", name, st.Message)
		}
	}
	// Health checks stay open for load balancers and scripts.
	c := tc.clientWithToken(t, "")
	if _, err := c.Do(ctx, http.MethodGet, "/healthz", nil, nil); err != nil {
		t.Fatalf("healthz: %v", err)
	}
	// The node token may read but may not delete workloads.
	node := tc.clientWithToken(t, tc.tokens.Node)
	if _, err := client.For[api.Pod](node, "default").List(ctx, client.ListOptions{}); err != nil {
		t.Fatalf("node list pods: %v", err)
	}
	err := client.For[api.Deployment](node, "default").Delete(ctx, "x", client.DeleteOptions{})
	wantReason(t, err, api.ReasonForbidden, 403)
}

func TestGracefulPodDeletion(t *testing.T) {
	tc := startCluster(t)
	ctx := ctxT(t)
	pods := client.For[api.Pod](tc.admin, "default")
	p := newPod("running", nil)
	p.Spec.NodeName = "node1"
	if _, err := pods.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	// A Pod on a node gets time to stop: it is only marked.
	if err := pods.Delete(ctx, "running", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	marked, err := pods.Get(ctx, "running")
	if err != nil {
		t.Fatalf("pod gone before its node stopped it: %v", err)
	}
	if marked.DeletionTimestamp == nil || marked.DeletionGracePeriodSeconds == nil || *marked.DeletionGracePeriodSeconds != 30 {
		t.Fatalf("not marked for graceful deletion: %+v", marked.ObjectMeta)
	}
	// The node agent confirms with gracePeriodSeconds=0.
	zero := int64(0)
	if err := pods.Delete(ctx, "running", client.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "running"); !api.IsNotFound(err) {
		t.Fatalf("want NotFound after grace 0, got %v", err)
	}
	// An unscheduled Pod goes at once.
	if _, err := pods.Create(ctx, newPod("pending", nil)); err != nil {
		t.Fatal(err)
	}
	if err := pods.Delete(ctx, "pending", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "pending"); !api.IsNotFound(err) {
		t.Fatalf("want NotFound, got %v", err)
	}
}

func TestFinalizersHoldDeletionUntilRemoved(t *testing.T) {
	tc := startCluster(t)
	ctx := ctxT(t)
	svcs := client.For[api.Service](tc.admin, "default")
	svc := &api.Service{
		ObjectMeta: api.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}},
		Spec:       api.ServiceSpec{ClusterIP: "None", Ports: []api.ServicePort{{Port: 80}}},
	}
	if _, err := svcs.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if err := svcs.Delete(ctx, "held", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	held, err := svcs.Get(ctx, "held")
	if err != nil || held.DeletionTimestamp == nil {
		t.Fatalf("want a marked object, got %v %v", held, err)
	}
	held.Finalizers = nil
	if _, err := svcs.Update(ctx, held); err != nil {
		t.Fatal(err)
	}
	if _, err := svcs.Get(ctx, "held"); !api.IsNotFound(err) {
		t.Fatalf("want NotFound once the last finalizer is gone, got %v", err)
	}
}

func TestScaleBindingAndPatch(t *testing.T) {
	tc := startCluster(t)
	ctx := ctxT(t)
	deployRes, _ := api.NewScheme().ByName("deployments")
	dyn := tc.admin.Resource(deployRes, "default")
	if _, err := dyn.Create(ctx, "apps/v1beta1", []byte(httpdV1beta1), client.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	body, err := dyn.Subresource(ctx, http.MethodPut, "httpd", "scale", nil,
		[]byte(`{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"httpd","namespace":"default"},"spec":{"replicas":5}}`))
	if err != nil {
		t.Fatal(err)
	}
	var sc api.Scale
	_ = json.Unmarshal(body, &sc)
	d, err := client.For[api.Deployment](tc.admin, "default").Get(ctx, "httpd")
	if err != nil {
		t.Fatal(err)
	}
	if sc.Spec.Replicas != 5 || *d.Spec.Replicas != 5 || d.Generation != 2 {
		t.Fatalf("scale: scale=%d deployment=%d generation=%d", sc.Spec.Replicas, *d.Spec.Replicas, d.Generation)
	}

	// Merge patch, as kubectl label / scale send it.
	path := deployRes.Path("default", "httpd")
	if _, err := doWithType(ctx, tc, http.MethodPatch, path, "application/merge-patch+json", `{"metadata":{"labels":{"team":"web"}}}`); err != nil {
		t.Fatal(err)
	}
	d, _ = client.For[api.Deployment](tc.admin, "default").Get(ctx, "httpd")
	if d.Labels["team"] != "web" || *d.Spec.Replicas != 5 {
		t.Fatalf("patch: labels %v replicas %d", d.Labels, *d.Spec.Replicas)
	}

	// Binding sets the node once; a second binding conflicts.
	pods := client.For[api.Pod](tc.admin, "default")
	if _, err := pods.Create(ctx, newPod("p", nil)); err != nil {
		t.Fatal(err)
	}
	podRes, _ := api.NewScheme().ByName("pods")
	binding := `{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"kind":"Node","name":"node1"}}`
	if _, err := tc.admin.Resource(podRes, "default").Subresource(ctx, http.MethodPost, "p", "binding", nil, []byte(binding)); err != nil {
		t.Fatal(err)
	}
	p, _ := pods.Get(ctx, "p")
	if p.Spec.NodeName != "node1" {
		t.Fatalf("binding: nodeName %q", p.Spec.NodeName)
	}
	_, err = tc.admin.Resource(podRes, "default").Subresource(ctx, http.MethodPost, "p", "binding", nil, []byte(binding))
	wantReason(t, err, api.ReasonConflict, 409)
}

func doWithType(ctx context.Context, tc *testCluster, method, path, contentType, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, tc.url+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tc.tokens.Admin)
	req.Header.Set("Content-Type", contentType)
	resp, err := insecureHTTP().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return resp, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return resp, nil
}

func TestDiscoveryAndLimits(t *testing.T) {
	tc := startCluster(t)
	ctx := ctxT(t)
	for _, path := range []string{"/version", "/api", "/api/v1", "/apis", "/apis/apps/v1"} {
		if _, err := tc.admin.Do(ctx, http.MethodGet, path, nil, nil); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
	body, err := tc.admin.Do(ctx, http.MethodGet, "/api/v1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"shortNames":["svc"]`) {
		t.Errorf("/api/v1 lacks short names: %s", body)
	}
	huge := strings.Repeat("x", apiserver.MaxBodyBytes+10)
	_, err = tc.admin.Do(ctx, http.MethodPost, "/api/v1/namespaces/default/pods", url.Values{}, []byte(huge))
	wantReason(t, err, api.ReasonRequestTooLarge, 413)
	_, err = tc.admin.Do(ctx, http.MethodGet, "/api/v1/nonsense", nil, nil)
	wantReason(t, err, api.ReasonNotFound, 404)
}

func insecureHTTP() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}

// kubectl apply of a ClusterIP manifest over a NodePort Service leaves the
// node ports and externalTrafficPolicy in the merged object; the server
// drops them instead of refusing the update, as Kubernetes does.
func TestServiceTypeChangeDropsNodePortFields(t *testing.T) {
	tc := startCluster(t)
	ctx := ctxT(t)
	svcs := client.For[api.Service](tc.admin, "default")
	svc := &api.Service{
		ObjectMeta: api.ObjectMeta{Name: "httpd-svc"},
		Spec: api.ServiceSpec{Type: "NodePort", ClusterIP: "10.96.0.50", Selector: map[string]string{"run": "httpd"},
			Ports: []api.ServicePort{{Port: 8080, TargetPort: api.FromInt(80), NodePort: 31000}}},
	}
	created, err := svcs.Create(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	created.Spec.Type = "ClusterIP"
	updated, err := svcs.Update(ctx, created)
	if err != nil {
		t.Fatalf("type change refused: %v", err)
	}
	if p := updated.Spec.Ports[0]; p.NodePort != 0 || updated.Spec.ExternalTrafficPolicy != "" || updated.Spec.ClusterIP != "10.96.0.50" {
		t.Fatalf("after NodePort→ClusterIP: nodePort=%d externalTrafficPolicy=%q clusterIP=%q",
			p.NodePort, updated.Spec.ExternalTrafficPolicy, updated.Spec.ClusterIP)
	}
}
