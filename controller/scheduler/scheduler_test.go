package scheduler_test

import (
	"context"
	"fmt"
	"testing"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/controller/controllertest"
	"kubelite/controller/scheduler"
)

func startScheduler(t *testing.T, nodes int) *controllertest.Cluster {
	t.Helper()
	cluster := controllertest.StartCluster(t, nodes)
	sched := scheduler.New(cluster.Client, cluster.Informers, cluster.Recorder, scheduler.Config{Logger: cluster.Logger})
	cluster.Run(t, func(ctx context.Context) { sched.Run(ctx, 2) })
	return cluster
}

func newPod(name string, owner *api.OwnerReference) *api.Pod {
	pod := &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       api.PodSpec{Containers: []api.Container{{Name: "httpd", Image: "httpd"}}},
	}
	if owner != nil {
		pod.OwnerReferences = []api.OwnerReference{*owner}
	}
	return pod
}

func waitForPod(t *testing.T, c *client.Client, name, what string, cond func(*api.Pod) bool) *api.Pod {
	t.Helper()
	var pod *api.Pod
	controllertest.Eventually(t, fmt.Sprintf("pod %s: %s", name, what), func() (bool, string) {
		var err error
		if pod, err = client.For[api.Pod](c, "default").Get(context.Background(), name); err != nil {
			return false, err.Error()
		}
		return cond(pod), fmt.Sprintf("node %q phase %s conditions %+v", pod.Spec.NodeName, pod.Status.Phase, pod.Status.Conditions)
	})
	return pod
}

func TestSchedulerSpreadsReplicasOfAnOwner(t *testing.T) {
	cluster := startScheduler(t, 3)
	ctx := t.Context()
	owner := &api.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "web-uid", Controller: api.Ptr(true)}
	for i := range 6 {
		if _, err := client.For[api.Pod](cluster.Client, "default").Create(ctx, newPod(fmt.Sprintf("web-%d", i), owner)); err != nil {
			t.Fatal(err)
		}
	}
	perNode := map[string]int{}
	for i := range 6 {
		name := fmt.Sprintf("web-%d", i)
		pod := waitForPod(t, cluster.Client, name, "running", func(p *api.Pod) bool { return p.Status.Phase == api.PodRunning })
		perNode[pod.Spec.NodeName]++
		want := fmt.Sprintf("Successfully assigned default/%s to %s", name, pod.Spec.NodeName)
		if len(cluster.Recorder.Find(scheduler.ReasonScheduled, want)) != 1 {
			t.Errorf("no Scheduled event %q; events: %v", want, cluster.Recorder.Events())
		}
	}
	if perNode["node1"] != 2 || perNode["node2"] != 2 || perNode["node3"] != 2 {
		t.Errorf("pods per node = %v, want 2 on each of the 3 nodes", perNode)
	}
}

func TestUnschedulablePodWaitsForAMatchingNode(t *testing.T) {
	cluster := startScheduler(t, 3)
	ctx := t.Context()
	if err := cluster.Nodes.MakeNotReady(ctx, "node3"); err != nil {
		t.Fatal(err)
	}
	pod := newPod("picky", nil)
	pod.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	if _, err := client.For[api.Pod](cluster.Client, "default").Create(ctx, pod); err != nil {
		t.Fatal(err)
	}

	const wantMessage = "0/3 nodes are available: 1 node(s) were not ready, 2 node(s) didn't match Pod's node affinity/selector."
	pending := waitForPod(t, cluster.Client, "picky", "PodScheduled=False", func(p *api.Pod) bool {
		for _, c := range p.Status.Conditions {
			if c.Type == api.PodScheduled && c.Status == api.ConditionFalse && c.Reason == scheduler.ReasonUnschedulable && c.Message == wantMessage {
				return true
			}
		}
		return false
	})
	if pending.Spec.NodeName != "" || pending.Status.Phase != api.PodPending {
		t.Errorf("unschedulable pod: node %q phase %s; want unbound and Pending", pending.Spec.NodeName, pending.Status.Phase)
	}
	if events := cluster.Recorder.Find(scheduler.ReasonFailedScheduling, wantMessage); len(events) == 0 || events[0].Type != api.EventWarning {
		t.Errorf("no Warning FailedScheduling event %q; events: %v", wantMessage, cluster.Recorder.Events())
	}

	// A matching node appears: the pod goes there.
	if err := cluster.Nodes.AddNode(ctx, "node4", map[string]string{"disk": "ssd"}); err != nil {
		t.Fatal(err)
	}
	running := waitForPod(t, cluster.Client, "picky", "running on node4", func(p *api.Pod) bool {
		return p.Spec.NodeName != "" && p.Status.Phase == api.PodRunning
	})
	if running.Spec.NodeName != "node4" {
		t.Errorf("pod scheduled to %s, want node4", running.Spec.NodeName)
	}
	if len(cluster.Recorder.Find(scheduler.ReasonScheduled, "Successfully assigned default/picky to node4")) != 1 {
		t.Errorf("no Scheduled event; events: %v", cluster.Recorder.Events())
	}
}

func TestSchedulerLeavesOtherSchedulersPodsAlone(t *testing.T) {
	cluster := startScheduler(t, 1)
	ctx := t.Context()
	other := newPod("other", nil)
	other.Spec.SchedulerName = "my-scheduler"
	mine := newPod("mine", nil)
	for _, pod := range []*api.Pod{other, mine} {
		if _, err := client.For[api.Pod](cluster.Client, "default").Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}
	// Once a later pod of ours is bound, the other one has surely been seen.
	waitForPod(t, cluster.Client, "mine", "bound", func(p *api.Pod) bool { return p.Spec.NodeName != "" })
	if got, err := client.For[api.Pod](cluster.Client, "default").Get(ctx, "other"); err != nil || got.Spec.NodeName != "" {
		t.Errorf("pod of another scheduler: node %q, err %v; want it left unbound", got.Spec.NodeName, err)
	}
}
