package namespace

import (
	"context"
	"fmt"
	"testing"
	"time"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/apiserver/apiservertest"
	"kubelite/controller"
	"kubelite/controller/controllertest"
)

func startController(t *testing.T, c *client.Client, rec controller.EventRecorder) {
	t.Helper()
	inf := controller.NewInformers(c, 0)
	ctrl := New(c, inf, rec, Config{RecheckInterval: 100 * time.Millisecond})
	controllertest.Go(t, inf.Run)
	controllertest.Go(t, func(ctx context.Context) { ctrl.Run(ctx, 2) })
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

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestDeletingANamespaceDeletesItsContentThenItself(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	c := srv.Admin
	rec := controllertest.NewRecorder()
	startController(t, c, rec)
	ctx := context.Background()

	must[*api.Namespace](t)(client.For[api.Namespace](c, "").Create(ctx, &api.Namespace{ObjectMeta: api.ObjectMeta{Name: "shop"}}))
	container := []api.Container{{Name: "web", Image: "httpd"}}
	must[*api.Pod](t)(client.For[api.Pod](c, "shop").Create(ctx, &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: "unscheduled", Namespace: "shop"},
		Spec:       api.PodSpec{Containers: container},
	}))
	// A Pod on a node stops gracefully: it stays until its node agent confirms.
	must[*api.Pod](t)(client.For[api.Pod](c, "shop").Create(ctx, &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: "running", Namespace: "shop"},
		Spec:       api.PodSpec{Containers: container, NodeName: "node-1"},
	}))
	must[*api.Service](t)(client.For[api.Service](c, "shop").Create(ctx, &api.Service{
		ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec:       api.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []api.ServicePort{{Port: 80}}},
	}))
	must[*api.Deployment](t)(client.For[api.Deployment](c, "shop").Create(ctx, &api.Deployment{
		ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec: api.DeploymentSpec{
			Selector: &api.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: api.PodTemplateSpec{
				ObjectMeta: api.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       api.PodSpec{Containers: container},
			},
		},
	}))
	must[*api.Event](t)(client.For[api.Event](c, "shop").Create(ctx, &api.Event{
		ObjectMeta:     api.ObjectMeta{Name: "web.1", Namespace: "shop"},
		InvolvedObject: api.ObjectReference{Kind: "Service", Namespace: "shop", Name: "web"},
		Reason:         "Test", Type: api.EventNormal,
	}))
	// Somewhere else: must survive.
	must[*api.Service](t)(client.For[api.Service](c, "default").Create(ctx, &api.Service{
		ObjectMeta: api.ObjectMeta{Name: "keep", Namespace: "default"},
		Spec:       api.ServiceSpec{Selector: map[string]string{"app": "keep"}, Ports: []api.ServicePort{{Port: 80}}},
	}))

	namespaces := client.For[api.Namespace](c, "")
	if err := namespaces.Delete(ctx, "shop", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	pods := client.For[api.Pod](c, "shop")
	waitFor(t, "everything but the running pod to go", func() (bool, error) {
		for _, r := range api.Resources() {
			if !r.Namespaced {
				continue
			}
			items, err := listMetadata(ctx, c.Resource(r, "shop"))
			if err != nil {
				return false, err
			}
			for _, m := range items {
				if !(r.Kind == "Pod" && m.Name == "running" && m.DeletionTimestamp != nil) {
					return false, nil
				}
			}
		}
		return true, nil
	})
	ns := must[*api.Namespace](t)(namespaces.Get(ctx, "shop"))
	if ns.Status.Phase != api.NamespaceTerminating {
		t.Errorf("namespace phase = %q while a pod is still stopping, want Terminating", ns.Status.Phase)
	}

	// The node agent confirms the pod stopped.
	if err := pods.Delete(ctx, "running", client.DeleteOptions{GracePeriodSeconds: api.Ptr(int64(0))}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the namespace to go", func() (bool, error) {
		_, err := namespaces.Get(ctx, "shop")
		if api.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if _, err := client.For[api.Service](c, "default").Get(ctx, "keep"); err != nil {
		t.Errorf("a service in another namespace: %v", err)
	}
	controllertest.Eventually(t, "a NamespaceContentDeleted event", func() (bool, string) {
		return len(rec.Find("NamespaceContentDeleted", "namespace shop")) > 0, fmt.Sprint(rec.Events())
	})
}

func TestAnEmptyNamespaceGoesAtOnce(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	c := srv.Admin
	startController(t, c, controllertest.NewRecorder())
	ctx := context.Background()
	namespaces := client.For[api.Namespace](c, "")
	must[*api.Namespace](t)(namespaces.Create(ctx, &api.Namespace{ObjectMeta: api.ObjectMeta{Name: "empty"}}))
	if err := namespaces.Delete(ctx, "empty", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the namespace to go", func() (bool, error) {
		_, err := namespaces.Get(ctx, "empty")
		if api.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}
