package gc

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/apiserver/apiservertest"
	"kubelite/controller"
	"kubelite/controller/controllertest"
)

func startCollector(t *testing.T, c *client.Client) {
	t.Helper()
	inf := controller.NewInformers(c, 0)
	gc := New(c, inf, controllertest.NewRecorder(), Config{RecheckInterval: 100 * time.Millisecond})
	controllertest.Go(t, inf.Run)
	controllertest.Go(t, func(ctx context.Context) { gc.Run(ctx, 2) })
}

// waitFor waits until cond holds; an error counts as not yet, and is shown
// if it never does.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	controllertest.Eventually(t, what, func() (bool, string) {
		ok, err := cond()
		return ok && err == nil, fmt.Sprint(err)
	})
}

func waitGone[T any, PT client.ObjectPtr[T]](t *testing.T, objects *client.Typed[T, PT], name string) {
	t.Helper()
	waitFor(t, objects.Resource().Kind+" "+name+" to go", func() (bool, error) {
		_, err := objects.Get(context.Background(), name)
		if api.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

// ownerRef is a plain reference to obj; controllerRef marks it as the
// managing controller too.
func ownerRef(obj api.Object, block bool) api.OwnerReference {
	r := api.ResourceFor(obj)
	return api.OwnerReference{
		APIVersion:         r.APIVersion(),
		Kind:               r.Kind,
		Name:               obj.GetObjectMeta().Name,
		UID:                obj.GetObjectMeta().UID,
		BlockOwnerDeletion: api.Ptr(block),
	}
}

func controllerRef(obj api.Object, block bool) api.OwnerReference {
	ref := ownerRef(obj, block)
	ref.Controller = api.Ptr(true)
	return ref
}

// fixture is a Deployment owning a ReplicaSet owning Pods, made by hand
// (no Deployment or ReplicaSet controller runs in these tests).
type fixture struct {
	c           *client.Client
	deployments *client.Typed[api.Deployment, *api.Deployment]
	replicaSets *client.Typed[api.ReplicaSet, *api.ReplicaSet]
	pods        *client.Typed[api.Pod, *api.Pod]
	deployment  *api.Deployment
	replicaSet  *api.ReplicaSet
}

var labels = map[string]string{"run": "httpd"}

func newFixture(t *testing.T, c *client.Client, podNodes ...string) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{
		c:           c,
		deployments: client.For[api.Deployment](c, "default"),
		replicaSets: client.For[api.ReplicaSet](c, "default"),
		pods:        client.For[api.Pod](c, "default"),
	}
	template := api.PodTemplateSpec{
		ObjectMeta: api.ObjectMeta{Labels: labels},
		Spec:       api.PodSpec{Containers: []api.Container{{Name: "httpd", Image: "httpd"}}},
	}
	var err error
	f.deployment, err = f.deployments.Create(ctx, &api.Deployment{
		ObjectMeta: api.ObjectMeta{Name: "httpd", Namespace: "default"},
		Spec:       api.DeploymentSpec{Selector: &api.LabelSelector{MatchLabels: labels}, Template: template},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.replicaSet, err = f.replicaSets.Create(ctx, &api.ReplicaSet{
		ObjectMeta: api.ObjectMeta{Name: "httpd-6d4b", Namespace: "default", Labels: labels,
			OwnerReferences: []api.OwnerReference{controllerRef(f.deployment, true)}},
		Spec: api.ReplicaSetSpec{Selector: &api.LabelSelector{MatchLabels: labels}, Template: template},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, node := range podNodes {
		_, err := f.pods.Create(ctx, &api.Pod{
			ObjectMeta: api.ObjectMeta{Name: "httpd-6d4b-" + string(rune('a'+i)), Namespace: "default", Labels: labels,
				OwnerReferences: []api.OwnerReference{controllerRef(f.replicaSet, true)}},
			Spec: api.PodSpec{Containers: template.Spec.Containers, NodeName: node},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) podNames(t *testing.T) []string {
	t.Helper()
	list, err := f.pods.List(context.Background(), client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range list.Items {
		names = append(names, p.Name)
	}
	return names
}

func TestBackgroundDeletionCascades(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	startCollector(t, srv.Admin)
	f := newFixture(t, srv.Admin, "", "")

	if err := f.deployments.Delete(context.Background(), "httpd", client.DeleteOptions{PropagationPolicy: "Background"}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, f.replicaSets, f.replicaSet.Name)
	waitFor(t, "the pods to go", func() (bool, error) { return len(f.podNames(t)) == 0, nil })
}

func TestOrphanDeletionKeepsDependents(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	startCollector(t, srv.Admin)
	f := newFixture(t, srv.Admin, "", "")
	ctx := context.Background()

	if err := f.deployments.Delete(ctx, "httpd", client.DeleteOptions{PropagationPolicy: "Orphan"}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, f.deployments, "httpd")
	rs, err := f.replicaSets.Get(ctx, f.replicaSet.Name)
	if err != nil {
		t.Fatalf("the orphaned replica set: %v", err)
	}
	if len(rs.OwnerReferences) != 0 {
		t.Errorf("orphaned replica set still has owners %+v", rs.OwnerReferences)
	}
	// The Pods keep their own owner, and stay.
	if names := f.podNames(t); len(names) != 2 {
		t.Errorf("pods after orphaning: %v, want 2", names)
	}
	list, err := f.pods.List(ctx, client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		if len(p.OwnerReferences) != 1 || p.OwnerReferences[0].UID != rs.UID {
			t.Errorf("pod %s owners = %+v, want its replica set", p.Name, p.OwnerReferences)
		}
	}
}

func TestForegroundDeletionWaitsForDependents(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	startCollector(t, srv.Admin)
	// One Pod runs on a node: it stops gracefully and holds everything up.
	f := newFixture(t, srv.Admin, "node-1")
	ctx := context.Background()
	podName := f.podNames(t)[0]

	if err := f.deployments.Delete(ctx, "httpd", client.DeleteOptions{PropagationPolicy: "Foreground"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pod to be terminating", func() (bool, error) {
		pod, err := f.pods.Get(ctx, podName)
		return err == nil && pod.DeletionTimestamp != nil, err
	})
	for _, check := range []struct {
		what string
		get  func() (*api.ObjectMeta, error)
	}{
		{"deployment", func() (*api.ObjectMeta, error) { d, err := f.deployments.Get(ctx, "httpd"); return metaOf(d, err) }},
		{"replica set", func() (*api.ObjectMeta, error) {
			r, err := f.replicaSets.Get(ctx, f.replicaSet.Name)
			return metaOf(r, err)
		}},
	} {
		meta, err := check.get()
		if err != nil {
			t.Fatalf("the %s went before its dependents: %v", check.what, err)
		}
		if meta.DeletionTimestamp == nil || !slices.Contains(meta.Finalizers, FinalizerForeground) {
			t.Errorf("the %s: deletionTimestamp %v finalizers %v, want deleting in the foreground", check.what, meta.DeletionTimestamp, meta.Finalizers)
		}
	}

	// The node agent confirms the pod stopped; the chain unwinds.
	if err := f.pods.Delete(ctx, podName, client.DeleteOptions{GracePeriodSeconds: api.Ptr(int64(0))}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, f.replicaSets, f.replicaSet.Name)
	waitGone(t, f.deployments, "httpd")
}

func metaOf[T api.Object](obj T, err error) (*api.ObjectMeta, error) {
	if err != nil {
		return nil, err
	}
	return obj.GetObjectMeta(), nil
}

func TestAnotherOwnerKeepsTheDependent(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	startCollector(t, srv.Admin)
	c := srv.Admin
	ctx := context.Background()
	services := client.For[api.Service](c, "default")
	var owners []*api.Service
	for _, name := range []string{"first", "second"} {
		svc, err := services.Create(ctx, &api.Service{
			ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"},
			Spec:       api.ServiceSpec{Ports: []api.ServicePort{{Port: 80}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		owners = append(owners, svc)
	}
	endpoints := client.For[api.Endpoints](c, "default")
	_, err := endpoints.Create(ctx, &api.Endpoints{ObjectMeta: api.ObjectMeta{Name: "shared", Namespace: "default",
		OwnerReferences: []api.OwnerReference{ownerRef(owners[0], false), ownerRef(owners[1], false)}}})
	if err != nil {
		t.Fatal(err)
	}

	if err := services.Delete(ctx, "first", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reference to the deleted owner to go", func() (bool, error) {
		ep, err := endpoints.Get(ctx, "shared")
		if err != nil {
			return false, err
		}
		return len(ep.OwnerReferences) == 1 && ep.OwnerReferences[0].UID == owners[1].UID, nil
	})

	if err := services.Delete(ctx, "second", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, endpoints, "shared")
}

func TestClusterScopedOwner(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	startCollector(t, srv.Admin)
	c := srv.Admin
	ctx := context.Background()
	node, err := client.For[api.Node](c, "").Create(ctx, &api.Node{ObjectMeta: api.ObjectMeta{Name: "node-1"}})
	if err != nil {
		t.Fatal(err)
	}
	// A node agent's heartbeat Lease is owned by its Node, as the kubelet's is.
	leases := client.For[api.Lease](c, api.NamespaceNodeLease)
	_, err = leases.Create(ctx, &api.Lease{ObjectMeta: api.ObjectMeta{Name: "node-1", Namespace: api.NamespaceNodeLease,
		OwnerReferences: []api.OwnerReference{ownerRef(node, false)}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.For[api.Node](c, "").Delete(ctx, "node-1", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, leases, "node-1")
}

func TestDependentsOfLiveOwnersAreKept(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	startCollector(t, srv.Admin)
	f := newFixture(t, srv.Admin, "")
	ctx := context.Background()
	_, err := client.For[api.Endpoints](srv.Admin, "default").Create(ctx, &api.Endpoints{ObjectMeta: api.ObjectMeta{
		Name: "orphan-marker", Namespace: "default",
		OwnerReferences: []api.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: "gone", UID: "no-such-uid"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// Once the collector has dealt with a later, ownerless object, it has
	// seen the fixture too.
	waitGone(t, client.For[api.Endpoints](srv.Admin, "default"), "orphan-marker")
	if _, err := f.replicaSets.Get(ctx, f.replicaSet.Name); err != nil {
		t.Errorf("replica set with an existing owner: %v", err)
	}
	if names := f.podNames(t); len(names) != 1 {
		t.Errorf("pods = %v, want the one pod kept", names)
	}
}
