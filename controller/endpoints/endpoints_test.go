package endpoints

import (
	"context"
	"fmt"
	"testing"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/apiserver/apiservertest"
	"kubelite/controller"
	"kubelite/controller/controllertest"
)

// startController runs the informers and the controller until the test ends.
func startController(t testing.TB, c *client.Client) {
	t.Helper()
	inf := controller.NewInformers(c, 0)
	ctrl := New(c, inf, controllertest.NewRecorder(), Config{})
	controllertest.Go(t, inf.Run)
	controllertest.Go(t, func(ctx context.Context) { ctrl.Run(ctx, 2) })
}

// waitFor waits until cond holds; an error counts as not yet, and is shown
// if it never does.
func waitFor(t testing.TB, what string, cond func() (bool, error)) {
	t.Helper()
	controllertest.Eventually(t, what, func() (bool, string) {
		ok, err := cond()
		return ok && err == nil, fmt.Sprint(err)
	})
}

// waitForEndpoints waits until the Endpoints default/{name} list exactly
// the given ready and not-ready IPs (with any ports) — or, with exists
// false, until there is no such Endpoints.
func waitForEndpoints(t testing.TB, c *client.Client, name string, exists bool, ready, notReady []string, ports ...int32) *api.Endpoints {
	t.Helper()
	var ep *api.Endpoints
	waitFor(t, "endpoints "+name, func() (bool, error) {
		var err error
		ep, err = client.For[api.Endpoints](c, "default").Get(context.Background(), name)
		if api.IsNotFound(err) {
			return !exists, nil
		}
		if err != nil || !exists {
			return false, err
		}
		var gotReady, gotNotReady []string
		var gotPorts []int32
		for _, s := range ep.Subsets {
			for _, a := range s.Addresses {
				gotReady = append(gotReady, a.IP)
			}
			for _, a := range s.NotReadyAddresses {
				gotNotReady = append(gotNotReady, a.IP)
			}
			for _, p := range s.Ports {
				gotPorts = append(gotPorts, p.Port)
			}
		}
		return equalStrings(gotReady, ready) && equalStrings(gotNotReady, notReady) &&
			(ports == nil || sameJSON(gotPorts, ports)), nil
	})
	return ep
}

func equalStrings(a, b []string) bool { return len(a) == len(b) && (len(a) == 0 || sameJSON(a, b)) }

func createPod(t testing.TB, c *client.Client, name string, labels map[string]string, ports ...api.ContainerPort) *api.Pod {
	t.Helper()
	pod, err := client.For[api.Pod](c, "default").Create(context.Background(), &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default", Labels: labels},
		Spec:       api.PodSpec{Containers: []api.Container{{Name: "web", Image: "httpd", Ports: ports}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// setPodStatus plays the node agent: the pod runs with ip, ready or not.
func setPodStatus(t *testing.T, c *client.Client, name, ip string, ready bool) {
	t.Helper()
	pods := client.For[api.Pod](c, "default")
	waitFor(t, "pod status update", func() (bool, error) {
		pod, err := pods.Get(context.Background(), name)
		if err != nil {
			return false, err
		}
		status := api.ConditionFalse
		if ready {
			status = api.ConditionTrue
		}
		pod.Status.Phase = api.PodRunning
		pod.Status.PodIP = ip
		pod.Status.PodIPs = []api.PodIP{{IP: ip}}
		pod.Status.Conditions = []api.PodCondition{{Type: api.PodReady, Status: status}}
		_, err = pods.UpdateStatus(context.Background(), pod)
		return err == nil, err
	})
}

func createService(t testing.TB, c *client.Client, svc *api.Service) *api.Service {
	t.Helper()
	created, err := client.For[api.Service](c, "default").Create(context.Background(), svc)
	if err != nil {
		t.Fatal(err)
	}
	return created
}

func TestEndpointsFollowPods(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	c := srv.Admin
	startController(t, c)
	web := map[string]string{"app": "web"}

	createService(t, c, &api.Service{
		ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "default", Labels: map[string]string{"tier": "front"}},
		Spec: api.ServiceSpec{
			Selector: web,
			Ports:    []api.ServicePort{{Name: "http", Port: 8080, TargetPort: api.FromString("http")}},
		},
	})
	ep := waitForEndpoints(t, c, "web", true, nil, nil)
	if ep.Labels["tier"] != "front" || ep.Annotations[ManagedByAnnotation] != ControllerName {
		t.Errorf("endpoints metadata = labels %v annotations %v", ep.Labels, ep.Annotations)
	}

	// A pod starts, not ready yet: listed as not ready, on its named port.
	httpPort := api.ContainerPort{Name: "http", ContainerPort: 80}
	createPod(t, c, "web-1", web, httpPort)
	setPodStatus(t, c, "web-1", "10.244.1.5", false)
	waitForEndpoints(t, c, "web", true, nil, []string{"10.244.1.5"}, 80)

	// It turns ready.
	setPodStatus(t, c, "web-1", "10.244.1.5", true)
	ep = waitForEndpoints(t, c, "web", true, []string{"10.244.1.5"}, nil, 80)
	got := ep.Subsets[0].Addresses[0]
	if got.TargetRef == nil || got.TargetRef.Kind != "Pod" || got.TargetRef.Name != "web-1" || got.TargetRef.UID == "" {
		t.Errorf("targetRef = %+v", got.TargetRef)
	}

	// A second pod without the named port is left out; a third has it under another number.
	createPod(t, c, "web-2", web)
	setPodStatus(t, c, "web-2", "10.244.1.6", true)
	createPod(t, c, "web-3", web, api.ContainerPort{Name: "http", ContainerPort: 8000})
	setPodStatus(t, c, "web-3", "10.244.2.7", true)
	waitForEndpoints(t, c, "web", true, []string{"10.244.1.5", "10.244.2.7"}, nil)

	// A pod that stops matching the selector leaves.
	pods := client.For[api.Pod](c, "default")
	waitFor(t, "relabel web-3", func() (bool, error) {
		pod, err := pods.Get(context.Background(), "web-3")
		if err != nil {
			return false, err
		}
		pod.Labels = map[string]string{"app": "other"}
		_, err = pods.Update(context.Background(), pod)
		return err == nil, err
	})
	waitForEndpoints(t, c, "web", true, []string{"10.244.1.5"}, nil, 80)

	// Not ready again, then deleted.
	setPodStatus(t, c, "web-1", "10.244.1.5", false)
	waitForEndpoints(t, c, "web", true, nil, []string{"10.244.1.5"}, 80)
	if err := pods.Delete(context.Background(), "web-1", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForEndpoints(t, c, "web", true, nil, nil)
}

func TestEndpointsGoWithTheServiceOrItsSelector(t *testing.T) {
	srv := apiservertest.Start(t, apiservertest.Options{})
	c := srv.Admin
	startController(t, c)
	ctx := context.Background()
	services := client.For[api.Service](c, "default")

	for _, name := range []string{"a", "b"} {
		createService(t, c, &api.Service{
			ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"},
			Spec:       api.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []api.ServicePort{{Port: 80}}},
		})
		waitForEndpoints(t, c, name, true, nil, nil)
	}

	// Deleted by someone: put back.
	if err := client.For[api.Endpoints](c, "default").Delete(ctx, "a", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForEndpoints(t, c, "a", true, nil, nil)

	// The Service goes: so do its Endpoints.
	if err := services.Delete(ctx, "a", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForEndpoints(t, c, "a", false, nil, nil)

	// The Service loses its selector: its managed Endpoints go.
	waitFor(t, "selector removed", func() (bool, error) {
		svc, err := services.Get(ctx, "b")
		if err != nil {
			return false, err
		}
		svc.Spec.Selector = nil
		_, err = services.Update(ctx, svc)
		return err == nil, err
	})
	waitForEndpoints(t, c, "b", false, nil, nil)

	// Endpoints the user writes for a selector-less Service are left alone.
	createService(t, c, &api.Service{
		ObjectMeta: api.ObjectMeta{Name: "external", Namespace: "default"},
		Spec:       api.ServiceSpec{Ports: []api.ServicePort{{Port: 5432}}},
	})
	manual := &api.Endpoints{
		ObjectMeta: api.ObjectMeta{Name: "external", Namespace: "default"},
		Subsets: []api.EndpointSubset{{
			Addresses: []api.EndpointAddress{{IP: "192.0.2.10"}},
			Ports:     []api.EndpointPort{{Port: 5432}},
		}},
	}
	if _, err := client.For[api.Endpoints](c, "default").Create(ctx, manual); err != nil {
		t.Fatal(err)
	}
	// An ExternalName Service gets none, selector or not.
	createService(t, c, &api.Service{
		ObjectMeta: api.ObjectMeta{Name: "alias", Namespace: "default"},
		Spec: api.ServiceSpec{Type: api.ServiceTypeExternalName, ExternalName: "db.example.com",
			Selector: map[string]string{"app": "alias"}},
	})
	// A later change to an unrelated, managed Service proves the
	// controller has run past the manual Endpoints and the alias.
	createService(t, c, &api.Service{
		ObjectMeta: api.ObjectMeta{Name: "marker", Namespace: "default"},
		Spec:       api.ServiceSpec{Selector: map[string]string{"app": "marker"}, Ports: []api.ServicePort{{Port: 80}}},
	})
	waitForEndpoints(t, c, "marker", true, nil, nil)
	waitForEndpoints(t, c, "alias", false, nil, nil)
	ep := waitForEndpoints(t, c, "external", true, []string{"192.0.2.10"}, nil)
	if ep.Annotations[ManagedByAnnotation] != "" {
		t.Errorf("manual endpoints were taken over: annotations %v", ep.Annotations)
	}
}
