package storage_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"kubelite/api"
	"kubelite/apiserver/etcd"
	"kubelite/apiserver/etcd/etcdtest"
	"kubelite/apiserver/storage"
)

func TestCreateGetUpdateDelete(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	ctx := testContext(t)

	input := newPod("default", "web", map[string]string{"run": "httpd"})
	created := mustCreate(t, ctx, env.pods, input)
	if input.ResourceVersion != "" || input.Kind != "" {
		t.Errorf("Create changed the caller's object: resourceVersion %q kind %q", input.ResourceVersion, input.Kind)
	}
	if created.APIVersion != "v1" || created.Kind != "Pod" {
		t.Errorf("created TypeMeta = %+v, want v1 Pod", created.TypeMeta)
	}
	if created.ResourceVersion == "" || created.Status.PodIP != "10.244.1.7" {
		t.Errorf("created = rv %q podIP %q", created.ResourceVersion, created.Status.PodIP)
	}

	// The value is stored under the Kubernetes key, without resourceVersion.
	raw, err := env.client.Get(ctx, "/registry/pods/default/web")
	if err != nil || len(raw.Kvs) != 1 {
		t.Fatalf("raw get: %v, %d keys", err, len(raw.Kvs))
	}
	var stored map[string]any
	if err := json.Unmarshal(raw.Kvs[0].Value, &stored); err != nil {
		t.Fatalf("stored value is not JSON: %v", err)
	}
	if _, has := stored["metadata"].(map[string]any)["resourceVersion"]; has {
		t.Errorf("stored value has a resourceVersion: %s", raw.Kvs[0].Value)
	}
	if stored["kind"] != "Pod" || stored["apiVersion"] != "v1" {
		t.Errorf("stored value lacks apiVersion/kind: %s", raw.Kvs[0].Value)
	}
	if want := strconv.FormatInt(raw.Kvs[0].ModRevision, 10); created.ResourceVersion != want {
		t.Errorf("resourceVersion %q, want the key's ModRevision %s", created.ResourceVersion, want)
	}

	got, err := env.pods.Get(ctx, "default", "web")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.GetObjectMeta().ResourceVersion != created.ResourceVersion || got.GetTypeMeta().Kind != "Pod" {
		t.Errorf("get = rv %q kind %q, want rv %q kind Pod", got.GetObjectMeta().ResourceVersion, got.GetTypeMeta().Kind, created.ResourceVersion)
	}

	updated, err := env.pods.Update(ctx, "default", "web", setLabel("tier", "frontend"))
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if updated.GetObjectMeta().Labels["tier"] != "frontend" || revision(t, updated) <= revision(t, created) {
		t.Errorf("updated = labels %v rv %s, want tier=frontend and rv > %s",
			updated.GetObjectMeta().Labels, updated.GetObjectMeta().ResourceVersion, created.ResourceVersion)
	}

	deleted, err := env.pods.Delete(ctx, "default", "web", "")
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	if deleted.GetObjectMeta().Labels["tier"] != "frontend" {
		t.Errorf("delete returned labels %v, want the last state", deleted.GetObjectMeta().Labels)
	}
	current, err := env.store.CurrentRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if revision(t, deleted) != current {
		t.Errorf("deleted rv %s, want the deletion revision %d", deleted.GetObjectMeta().ResourceVersion, current)
	}
	if _, err := env.pods.Get(ctx, "default", "web"); !api.IsNotFound(err) {
		t.Errorf("get after delete: %v, want NotFound", err)
	}
}

func TestErrorsAreStatusesAndLoseNothing(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	ctx := testContext(t)
	original := mustCreate(t, ctx, env.pods, newPod("default", "web", map[string]string{"run": "httpd"}))

	t.Run("create existing", func(t *testing.T) {
		_, err := env.pods.Create(ctx, newPod("default", "web", nil))
		status := requireStatus(t, err, 409, api.ReasonAlreadyExists)
		if status.Message != `pods "web" already exists` {
			t.Errorf("message %q", status.Message)
		}
	})
	t.Run("create with resourceVersion", func(t *testing.T) {
		pod := newPod("default", "other", nil)
		pod.ResourceVersion = "7"
		_, err := env.pods.Create(ctx, pod)
		requireStatus(t, err, 400, api.ReasonBadRequest)
	})
	t.Run("create without namespace", func(t *testing.T) {
		_, err := env.pods.Create(ctx, newPod("", "other", nil))
		requireStatus(t, err, 400, api.ReasonBadRequest)
	})
	t.Run("create with slash in name", func(t *testing.T) {
		_, err := env.pods.Create(ctx, newPod("default", "a/b", nil))
		requireStatus(t, err, 400, api.ReasonBadRequest)
	})
	t.Run("create another kind", func(t *testing.T) {
		_, err := env.pods.Create(ctx, &api.Service{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "svc"}})
		requireStatus(t, err, 400, api.ReasonBadRequest)
	})
	t.Run("get missing", func(t *testing.T) {
		_, err := env.pods.Get(ctx, "default", "missing")
		status := requireStatus(t, err, 404, api.ReasonNotFound)
		if status.Message != `pods "missing" not found` {
			t.Errorf("message %q", status.Message)
		}
	})
	t.Run("get in other namespace", func(t *testing.T) {
		_, err := env.pods.Get(ctx, "kube-system", "web")
		requireStatus(t, err, 404, api.ReasonNotFound)
	})
	t.Run("update missing", func(t *testing.T) {
		_, err := env.pods.Update(ctx, "default", "missing", setLabel("a", "b"))
		requireStatus(t, err, 404, api.ReasonNotFound)
	})
	t.Run("update aborted by tryUpdate", func(t *testing.T) {
		_, err := env.pods.Update(ctx, "default", "web", func(current api.Object) (api.Object, error) {
			return nil, api.NewConflict("", "pods", "web", fmt.Errorf("stale"))
		})
		requireStatus(t, err, 409, api.ReasonConflict)
	})
	t.Run("update renaming", func(t *testing.T) {
		_, err := env.pods.Update(ctx, "default", "web", func(current api.Object) (api.Object, error) {
			current.GetObjectMeta().Name = "renamed"
			return current, nil
		})
		requireStatus(t, err, 400, api.ReasonBadRequest)
	})
	t.Run("delete missing", func(t *testing.T) {
		_, err := env.pods.Delete(ctx, "default", "missing", "")
		requireStatus(t, err, 404, api.ReasonNotFound)
	})
	t.Run("delete missing with precondition", func(t *testing.T) {
		_, err := env.pods.Delete(ctx, "default", "missing", original.ResourceVersion)
		requireStatus(t, err, 404, api.ReasonNotFound)
	})
	t.Run("delete stale precondition", func(t *testing.T) {
		_, err := env.pods.Delete(ctx, "default", "web", strconv.FormatInt(revision(t, original)-1, 10))
		status := requireStatus(t, err, 409, api.ReasonConflict)
		if status.Details == nil || status.Details.Name != "web" {
			t.Errorf("details %+v", status.Details)
		}
	})
	t.Run("delete bad precondition", func(t *testing.T) {
		_, err := env.pods.Delete(ctx, "default", "web", "latest")
		requireStatus(t, err, 400, api.ReasonBadRequest)
	})

	// Nothing above changed the object.
	got, err := env.pods.Get(ctx, "default", "web")
	if err != nil {
		t.Fatalf("get after failures: %v", err)
	}
	if got.GetObjectMeta().ResourceVersion != original.ResourceVersion {
		t.Errorf("resourceVersion moved from %s to %s", original.ResourceVersion, got.GetObjectMeta().ResourceVersion)
	}
	if items, _, err := env.pods.List(ctx, "", nil); err != nil || len(items) != 1 {
		t.Errorf("list after failures: %d items, %v; want just web", len(items), err)
	}

	// The right precondition deletes.
	if _, err := env.pods.Delete(ctx, "default", "web", original.ResourceVersion); err != nil {
		t.Errorf("delete with current resourceVersion: %v", err)
	}
}

func TestClusterScopedKeys(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	ctx := testContext(t)
	nodes := env.store.For(resource(t, "nodes"))

	if _, err := nodes.Create(ctx, &api.Node{ObjectMeta: api.ObjectMeta{Name: "node-1"}}); err != nil {
		t.Fatalf("create node: %v", err)
	}
	raw, err := env.client.Get(ctx, "/registry/nodes/node-1")
	if err != nil || len(raw.Kvs) != 1 {
		t.Fatalf("node not under /registry/nodes/node-1: %v", err)
	}
	// The namespace argument means nothing for a cluster-scoped resource.
	if _, err := nodes.Get(ctx, "ignored", "node-1"); err != nil {
		t.Errorf("get node: %v", err)
	}
	items, _, err := nodes.List(ctx, "ignored", nil)
	if err != nil || len(items) != 1 {
		t.Errorf("list nodes: %d items, %v", len(items), err)
	}
}

func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	ctx := testContext(t)
	mustCreate(t, ctx, env.pods, newPod("default", "counter", nil))

	const writers, incrementsEach = 20, 5
	increment := func(current api.Object) (api.Object, error) {
		meta := current.GetObjectMeta()
		n, _ := strconv.Atoi(meta.Annotations["counter"])
		if meta.Annotations == nil {
			meta.Annotations = map[string]string{}
		}
		meta.Annotations["counter"] = strconv.Itoa(n + 1)
		return current, nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*incrementsEach)
	for range writers {
		wg.Go(func() {
			for range incrementsEach {
				if _, err := env.pods.Update(ctx, "default", "counter", increment); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("update: %v", err)
	}

	got, err := env.pods.Get(ctx, "default", "counter")
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(writers * incrementsEach); got.GetObjectMeta().Annotations["counter"] != want {
		t.Errorf("counter = %s, want %s", got.GetObjectMeta().Annotations["counter"], want)
	}
}

func TestNoOpUpdateKeepsResourceVersion(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	ctx := testContext(t)
	created := mustCreate(t, ctx, env.pods, newPod("default", "web", map[string]string{"run": "httpd"}))
	before, err := env.store.CurrentRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Setting a label to the value it has changes nothing.
	updated, err := env.pods.Update(ctx, "default", "web", setLabel("run", "httpd"))
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if updated.GetObjectMeta().ResourceVersion != created.ResourceVersion {
		t.Errorf("no-op update moved resourceVersion from %s to %s", created.ResourceVersion, updated.GetObjectMeta().ResourceVersion)
	}
	after, err := env.store.CurrentRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("no-op update wrote to etcd: revision %d → %d", before, after)
	}
}

func TestListSortedFilteredAtRevision(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	ctx := testContext(t)
	for _, p := range []struct{ ns, name, run string }{
		{"kube-system", "dns", "coredns"},
		{"default", "web-b", "httpd"},
		{"default", "web-a", "httpd"},
		{"default", "busybox", "busybox"},
	} {
		mustCreate(t, ctx, env.pods, newPod(p.ns, p.name, map[string]string{"run": p.run}))
	}
	current, err := env.store.CurrentRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}

	all, rev, err := env.pods.List(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if rev != current {
		t.Errorf("list revision %d, want %d", rev, current)
	}
	if got, want := keys(all), []string{"default/busybox", "default/web-a", "default/web-b", "kube-system/dns"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("list all = %v, want %v", got, want)
	}

	httpd := func(obj api.Object) bool { return obj.GetObjectMeta().Labels["run"] == "httpd" }
	filtered, _, err := env.pods.List(ctx, "default", httpd)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keys(filtered), []string{"default/web-a", "default/web-b"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("list default run=httpd = %v, want %v", got, want)
	}
	for _, item := range filtered {
		if item.GetTypeMeta().Kind != "Pod" || item.GetObjectMeta().ResourceVersion == "" {
			t.Errorf("item %s lacks kind or resourceVersion", item.GetObjectMeta().Name)
		}
	}
}

func TestNamespacePrefixIsolation(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	ctx := testContext(t)

	events, err := env.pods.Watch(ctx, "def", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"default", "def", "def-2", "de"} {
		mustCreate(t, ctx, env.pods, newPod(ns, "web", nil))
	}
	items, _, err := env.pods.List(ctx, "def", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(items); fmt.Sprint(got) != "[def/web]" {
		t.Errorf("list def = %v, want [def/web]", got)
	}

	// The only event is def's; a second one in def proves nothing else came between.
	mustCreate(t, ctx, env.pods, newPod("def", "last", nil))
	for _, want := range []string{"def/web", "def/last"} {
		if got := summarize(nextEvent(t, ctx, events)).Key; got != want {
			t.Errorf("watch def saw %s, want %s", got, want)
		}
	}
}

func TestRestartKeepsObjectsAndRevisions(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dataDir := t.TempDir()

	first := etcdtest.StartEmbedded(t, dataDir)
	pods := storage.New(first.Client(), "/registry").For(resource(t, "pods"))
	created := mustCreate(t, ctx, pods, newPod("default", "web", nil))
	updated, err := pods.Update(ctx, "default", "web", setLabel("run", "httpd"))
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	first.Close() // a second Close is harmless

	second := etcdtest.StartEmbedded(t, dataDir)
	store := storage.New(second.Client(), "/registry")
	got, err := store.For(resource(t, "pods")).Get(ctx, "default", "web")
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	if got.GetObjectMeta().ResourceVersion != updated.GetObjectMeta().ResourceVersion || got.GetObjectMeta().Labels["run"] != "httpd" {
		t.Errorf("after restart: rv %s labels %v, want rv %s run=httpd",
			got.GetObjectMeta().ResourceVersion, got.GetObjectMeta().Labels, updated.GetObjectMeta().ResourceVersion)
	}
	current, err := store.CurrentRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if current != revision(t, updated) {
		t.Errorf("current revision after restart %d, want %d", current, revision(t, updated))
	}
	// History survived too: a watch from the creation replays the update.
	events, err := store.For(resource(t, "pods")).Watch(ctx, "default", revision(t, created), nil)
	if err != nil {
		t.Fatal(err)
	}
	if event := summarize(nextEvent(t, ctx, events)); event.Type != api.Modified || event.RV != updated.GetObjectMeta().ResourceVersion {
		t.Errorf("replayed %+v, want the update", event)
	}
}

func TestExternalEtcdCRUD(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	endpoints := etcdtest.StartExternal(t)
	client, err := etcd.Connect(ctx, endpoints)
	if err != nil {
		t.Fatalf("connect to external etcd: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	pods := storage.New(client, "/registry").For(resource(t, "pods"))

	created := mustCreate(t, ctx, pods, newPod("default", "web", nil))
	if _, err := pods.Create(ctx, newPod("default", "web", nil)); !api.IsAlreadyExists(err) {
		t.Errorf("second create: %v, want AlreadyExists", err)
	}
	updated, err := pods.Update(ctx, "default", "web", setLabel("run", "httpd"))
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if revision(t, updated) <= revision(t, created) {
		t.Errorf("update rv %s not after create rv %s", updated.GetObjectMeta().ResourceVersion, created.ResourceVersion)
	}
	if _, err := pods.Delete(ctx, "default", "web", created.ResourceVersion); !api.IsConflict(err) {
		t.Errorf("delete with stale rv: %v, want Conflict", err)
	}
	if _, err := pods.Delete(ctx, "default", "web", updated.GetObjectMeta().ResourceVersion); err != nil {
		t.Errorf("delete: %v", err)
	}
	if _, err := pods.Get(ctx, "default", "web"); !api.IsNotFound(err) {
		t.Errorf("get after delete: %v, want NotFound", err)
	}
}

func keys(items []api.Object) []string {
	out := make([]string, len(items))
	for i, item := range items {
		out[i] = item.GetObjectMeta().Namespace + "/" + item.GetObjectMeta().Name
	}
	return out
}

func revision(t testing.TB, obj api.Object) int64 {
	t.Helper()
	rev, err := strconv.ParseInt(obj.GetObjectMeta().ResourceVersion, 10, 64)
	if err != nil {
		t.Fatalf("resourceVersion %q: %v", obj.GetObjectMeta().ResourceVersion, err)
	}
	return rev
}
