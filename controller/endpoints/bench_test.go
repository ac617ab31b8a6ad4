package endpoints

import (
	"context"
	"testing"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/apiserver/apiservertest"
)

// BenchmarkPodReadyToEndpoints measures the time from a Pod's readiness
// change being written to a watcher of the Endpoints (the service proxy)
// seeing it. Each iteration flips the Pod between ready and not ready.
//
// The baseline does the same two writes by hand — the Pod's status, then
// the Endpoints — with no controller, so the difference is what the
// controller adds: the watch to its cache, the queue, the reconcile.
func BenchmarkPodReadyToEndpoints(b *testing.B) {
	b.Run("controller", func(b *testing.B) { benchmarkReadiness(b, true) })
	b.Run("baseline-direct-writes", func(b *testing.B) { benchmarkReadiness(b, false) })
}

func benchmarkReadiness(b *testing.B, withController bool) {
	srv := apiservertest.Start(b, apiservertest.Options{})
	c := srv.Admin
	ctx := context.Background()
	web := map[string]string{"app": "web"}
	svc := createService(b, c, &api.Service{
		ObjectMeta: api.ObjectMeta{Name: "web", Namespace: "default"},
		Spec:       api.ServiceSpec{Selector: web, Ports: []api.ServicePort{{Port: 80}}},
	})
	pods := client.For[api.Pod](c, "default")
	endpoints := client.For[api.Endpoints](c, "default")
	pod := createPod(b, c, "web-1", web)
	pod.Status.Phase = api.PodRunning
	pod.Status.PodIP = "10.244.1.5"
	pod.Status.Conditions = []api.PodCondition{{Type: api.PodReady, Status: api.ConditionFalse}}
	pod, err := pods.UpdateStatus(ctx, pod)
	if err != nil {
		b.Fatal(err)
	}
	if withController {
		startController(b, c)
	} else if _, err := endpoints.Create(ctx, desiredEndpoints(svc, []*api.Pod{pod})); err != nil {
		b.Fatal(err)
	}
	waitForEndpoints(b, c, "web", true, nil, []string{"10.244.1.5"})
	current, err := endpoints.Get(ctx, "web")
	if err != nil {
		b.Fatal(err)
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	changes, err := endpoints.Watch(watchCtx, client.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}

	ready := false
	for b.Loop() {
		ready = !ready
		status := api.ConditionFalse
		if ready {
			status = api.ConditionTrue
		}
		pod.Status.Conditions[0].Status = status
		if pod, err = pods.UpdateStatus(ctx, pod); err != nil {
			b.Fatal(err)
		}
		if !withController {
			current.Subsets = DesiredSubsets(svc, []*api.Pod{pod})
			if current, err = endpoints.Update(ctx, current); err != nil {
				b.Fatal(err)
			}
		}
		for event := range changes {
			if event.Type == api.Error {
				b.Fatal(event.Err)
			}
			ep := event.Object
			if ep.Name == "web" && len(ep.Subsets) == 1 && (len(ep.Subsets[0].Addresses) == 1) == ready {
				break
			}
		}
	}
}
