package replicaset_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"testing"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/controller/controllertest"
	"kubelite/controller/replicaset"
	"kubelite/controller/scheduler"
)

// startCluster runs the ReplicaSet controller and the scheduler on a real
// API server with three simulated nodes.
func startCluster(t *testing.T) *controllertest.Cluster {
	t.Helper()
	cluster := controllertest.StartCluster(t, 3)
	rsc := replicaset.New(cluster.Client, cluster.Informers, cluster.Recorder, replicaset.Config{Logger: cluster.Logger})
	sched := scheduler.New(cluster.Client, cluster.Informers, cluster.Recorder, scheduler.Config{Logger: cluster.Logger})
	cluster.Run(t,
		func(ctx context.Context) { rsc.Run(ctx, 2) },
		func(ctx context.Context) { sched.Run(ctx, 2) },
	)
	return cluster
}

func newReplicaSet(name string, replicas int32) *api.ReplicaSet {
	labels := map[string]string{"app": name}
	return &api.ReplicaSet{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"},
		Spec: api.ReplicaSetSpec{
			Replicas: api.Ptr(replicas),
			Selector: &api.LabelSelector{MatchLabels: labels},
			Template: api.PodTemplateSpec{
				ObjectMeta: api.ObjectMeta{Labels: labels},
				Spec:       api.PodSpec{Containers: []api.Container{{Name: "httpd", Image: "httpd"}}},
			},
		},
	}
}

// pods lists the Pods with label app=app.
func pods(t *testing.T, c *client.Client, app string) []api.Pod {
	t.Helper()
	list, err := client.For[api.Pod](c, "default").List(context.Background(), client.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func isRunningReady(p *api.Pod) bool {
	return p.Status.Phase == api.PodRunning && p.IsReady() && p.DeletionTimestamp == nil
}

// waitForRunning waits until exactly n Pods of app are Running and Ready
// and no other Pod of app is left but those matching keep, and returns the
// running ones.
func waitForRunning(t *testing.T, c *client.Client, app string, n int, keep func(*api.Pod) bool) []api.Pod {
	t.Helper()
	var running []api.Pod
	controllertest.Eventually(t, fmt.Sprintf("%d running pods of %s", n, app), func() (bool, string) {
		all := pods(t, c, app)
		running = running[:0]
		others := 0
		for i := range all {
			switch {
			case isRunningReady(&all[i]):
				running = append(running, all[i])
			case keep == nil || !keep(&all[i]):
				others++
			}
		}
		return len(running) == n && others == 0, fmt.Sprintf("%d running, %d others", len(running), others)
	})
	return running
}

func waitForStatus(t *testing.T, c *client.Client, name string, want api.ReplicaSetStatus) {
	t.Helper()
	controllertest.Eventually(t, "status of ReplicaSet "+name, func() (bool, string) {
		rs, err := client.For[api.ReplicaSet](c, "default").Get(context.Background(), name)
		if err != nil {
			return false, err.Error()
		}
		want.ObservedGeneration = rs.Generation
		return rs.Status == want, fmt.Sprintf("%+v", rs.Status)
	})
}

func TestReplicaSetCreatesReplicasAndReportsStatus(t *testing.T) {
	cluster := startCluster(t)
	ctx := t.Context()
	rs, err := client.For[api.ReplicaSet](cluster.Client, "default").Create(ctx, newReplicaSet("web", 10))
	if err != nil {
		t.Fatal(err)
	}

	running := waitForRunning(t, cluster.Client, "web", 10, nil)
	waitForStatus(t, cluster.Client, "web", api.ReplicaSetStatus{Replicas: 10, FullyLabeledReplicas: 10, ReadyReplicas: 10, AvailableReplicas: 10})

	namePattern := regexp.MustCompile(`^web-[bcdfghjklmnpqrstvwxz2456789]{5}$`)
	for _, pod := range running {
		if !namePattern.MatchString(pod.Name) {
			t.Errorf("pod name %q is not web-<5 random characters>", pod.Name)
		}
		ref := pod.ControllerRef()
		if ref == nil || ref.UID != rs.UID || ref.Kind != "ReplicaSet" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
			t.Errorf("pod %s: controller reference %+v", pod.Name, ref)
		}
	}
	// Expectations: the controller never created a Pod its cache had not
	// caught up with, so it created exactly ten.
	if created := cluster.Recorder.Find(replicaset.ReasonSuccessfulCreate, "Created pod: web-"); len(created) != 10 {
		t.Errorf("%d SuccessfulCreate events, want 10: %v", len(created), created)
	}
}

func TestReplicaSetReplacesDeletedAndFailedPods(t *testing.T) {
	cluster := startCluster(t)
	ctx := t.Context()
	if _, err := client.For[api.ReplicaSet](cluster.Client, "default").Create(ctx, newReplicaSet("web", 3)); err != nil {
		t.Fatal(err)
	}
	running := waitForRunning(t, cluster.Client, "web", 3, nil)

	deleted := running[0]
	if err := client.For[api.Pod](cluster.Client, "default").Delete(ctx, deleted.Name, client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	running = waitForRunning(t, cluster.Client, "web", 3, nil)
	for _, pod := range running {
		if pod.Name == deleted.Name || pod.Status.PodIP == deleted.Status.PodIP {
			t.Errorf("replacement %s (%s) reuses the deleted pod's name or IP (%s, %s)", pod.Name, pod.Status.PodIP, deleted.Name, deleted.Status.PodIP)
		}
	}

	// A failed Pod no longer counts: a new one replaces it, and the failed
	// one stays for the user to inspect, as in Kubernetes.
	failed := running[1]
	if err := cluster.Nodes.FailPod(ctx, "default", failed.Name); err != nil {
		t.Fatal(err)
	}
	isFailed := func(p *api.Pod) bool { return p.Name == failed.Name && p.Status.Phase == api.PodFailed }
	running = waitForRunning(t, cluster.Client, "web", 3, isFailed)
	if slices.ContainsFunc(running, func(p api.Pod) bool { return p.Name == failed.Name }) {
		t.Errorf("the failed pod %s counts as running", failed.Name)
	}
	waitForStatus(t, cluster.Client, "web", api.ReplicaSetStatus{Replicas: 3, FullyLabeledReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3})
}

func TestReplicaSetScaleDownDeletesLeastUsefulFirst(t *testing.T) {
	cluster := startCluster(t)
	ctx := t.Context()
	replicaSets := client.For[api.ReplicaSet](cluster.Client, "default")
	if _, err := replicaSets.Create(ctx, newReplicaSet("web", 3)); err != nil {
		t.Fatal(err)
	}
	running := waitForRunning(t, cluster.Client, "web", 3, nil)

	notReady := running[2].Name
	if err := cluster.Nodes.SetPodReady(ctx, "default", notReady, false); err != nil {
		t.Fatal(err)
	}
	waitForStatus(t, cluster.Client, "web", api.ReplicaSetStatus{Replicas: 3, FullyLabeledReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 2})

	scaleReplicaSet(t, cluster.Client, "web", 2)
	remaining := waitForRunning(t, cluster.Client, "web", 2, nil)
	if slices.ContainsFunc(remaining, func(p api.Pod) bool { return p.Name == notReady }) {
		t.Errorf("scale-down kept the not-ready pod %s and deleted a ready one", notReady)
	}
	if got := cluster.Recorder.Find(replicaset.ReasonSuccessfulDelete, "Deleted pod: "+notReady); len(got) != 1 {
		t.Errorf("want one SuccessfulDelete event for %s; events: %v", notReady, cluster.Recorder.Events())
	}

	scaleReplicaSet(t, cluster.Client, "web", 0)
	waitForRunning(t, cluster.Client, "web", 0, nil)
	waitForStatus(t, cluster.Client, "web", api.ReplicaSetStatus{})
}

func TestReplicaSetAdoptsOrphansAndReleasesMismatches(t *testing.T) {
	cluster := startCluster(t)
	ctx := t.Context()
	podsClient := client.For[api.Pod](cluster.Client, "default")

	// An orphan that matches the selector is adopted and counts as a replica.
	orphan, err := podsClient.Create(ctx, &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: "orphan", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec:       api.PodSpec{Containers: []api.Container{{Name: "httpd", Image: "httpd"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := client.For[api.ReplicaSet](cluster.Client, "default").Create(ctx, newReplicaSet("web", 2))
	if err != nil {
		t.Fatal(err)
	}
	running := waitForRunning(t, cluster.Client, "web", 2, nil)
	if !slices.ContainsFunc(running, func(p api.Pod) bool { return p.Name == orphan.Name }) {
		t.Fatalf("the orphan was not adopted as one of the two replicas: %v", running)
	}
	adopted, err := podsClient.Get(ctx, orphan.Name)
	if err != nil {
		t.Fatal(err)
	}
	if ref := adopted.ControllerRef(); ref == nil || ref.UID != rs.UID {
		t.Fatalf("adopted pod's controller reference = %+v", ref)
	}

	// A Pod relabelled out of the selector is released and replaced.
	adopted.Labels = map[string]string{"app": "debug"}
	if _, err := podsClient.Update(ctx, adopted); err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, "the relabelled pod to be released", func() (bool, string) {
		p, err := podsClient.Get(ctx, orphan.Name)
		if err != nil {
			return false, err.Error()
		}
		return p.ControllerRef() == nil, fmt.Sprintf("owners %+v", p.OwnerReferences)
	})
	waitForRunning(t, cluster.Client, "web", 2, nil)
}

func scaleReplicaSet(t *testing.T, c *client.Client, name string, replicas int32) {
	t.Helper()
	replicaSets := client.For[api.ReplicaSet](c, "default")
	for {
		rs, err := replicaSets.Get(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		rs.Spec.Replicas = api.Ptr(replicas)
		_, err = replicaSets.Update(context.Background(), rs)
		if api.IsConflict(err) {
			continue // the controller wrote the status meanwhile
		}
		if err != nil {
			t.Fatal(err)
		}
		return
	}
}
