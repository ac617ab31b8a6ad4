package replicaset

import (
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"kubelite/api"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// podSpec describes a test Pod briefly.
type podSpec struct {
	name       string
	node       string
	phase      string
	ready      bool
	readySince time.Time
	created    time.Time
	restarts   int32
	deleting   bool
	labels     map[string]string
}

func makePod(s podSpec) *api.Pod {
	pod := &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: s.name, Namespace: "default", Labels: s.labels, CreationTimestamp: api.NewTime(s.created)},
		Spec:       api.PodSpec{NodeName: s.node},
		Status:     api.PodStatus{Phase: s.phase},
	}
	if s.phase != "" {
		readyStatus := api.ConditionFalse
		if s.ready {
			readyStatus = api.ConditionTrue
		}
		pod.Status.Conditions = []api.PodCondition{{Type: api.PodReady, Status: readyStatus, LastTransitionTime: api.NewTime(s.readySince)}}
		pod.Status.ContainerStatuses = []api.ContainerStatus{{Name: "c", RestartCount: s.restarts}}
	}
	if s.deleting {
		pod.DeletionTimestamp = api.Ptr(api.NewTime(t0))
	}
	return pod
}

func names(pods []*api.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func TestPodsToDeleteLeastUsefulFirst(t *testing.T) {
	tests := []struct {
		name string
		pods []podSpec
		n    int
		want []string
	}{
		{
			name: "unscheduled before scheduled",
			pods: []podSpec{
				{name: "scheduled", node: "node1", phase: api.PodPending},
				{name: "unscheduled", phase: api.PodPending},
			},
			n: 1, want: []string{"unscheduled"},
		},
		{
			name: "pending before unknown before running",
			pods: []podSpec{
				{name: "running", node: "n", phase: api.PodRunning},
				{name: "unknown", node: "n", phase: api.PodUnknown},
				{name: "pending", node: "n", phase: api.PodPending},
			},
			n: 3, want: []string{"pending", "unknown", "running"},
		},
		{
			name: "not ready before ready",
			pods: []podSpec{
				{name: "ready", node: "n", phase: api.PodRunning, ready: true},
				{name: "not-ready", node: "n", phase: api.PodRunning},
			},
			n: 1, want: []string{"not-ready"},
		},
		{
			name: "ready most recently before ready for longer",
			pods: []podSpec{
				{name: "long", node: "n", phase: api.PodRunning, ready: true, readySince: t0},
				{name: "recent", node: "n", phase: api.PodRunning, ready: true, readySince: t0.Add(time.Minute)},
			},
			n: 1, want: []string{"recent"},
		},
		{
			name: "more restarts before fewer",
			pods: []podSpec{
				{name: "stable", node: "n", phase: api.PodRunning},
				{name: "crashy", node: "n", phase: api.PodRunning, restarts: 5},
			},
			n: 1, want: []string{"crashy"},
		},
		{
			name: "newer before older",
			pods: []podSpec{
				{name: "old", node: "n", phase: api.PodRunning, created: t0},
				{name: "new", node: "n", phase: api.PodRunning, created: t0.Add(time.Hour)},
			},
			n: 1, want: []string{"new"},
		},
		{
			name: "then by name",
			pods: []podSpec{
				{name: "b", node: "n", phase: api.PodRunning},
				{name: "a", node: "n", phase: api.PodRunning},
			},
			n: 2, want: []string{"a", "b"},
		},
		{
			name: "more than there are",
			pods: []podSpec{{name: "only", node: "n", phase: api.PodRunning}},
			n:    3, want: []string{"only"},
		},
		{
			name: "scheduling outranks readiness and age",
			pods: []podSpec{
				{name: "ready-new", node: "n", phase: api.PodRunning, ready: true, created: t0.Add(time.Hour)},
				{name: "pending-old", node: "n", phase: api.PodPending, created: t0},
				{name: "unscheduled-old", phase: api.PodPending, created: t0},
			},
			n: 2, want: []string{"unscheduled-old", "pending-old"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pods []*api.Pod
			for _, s := range tt.pods {
				pods = append(pods, makePod(s))
			}
			before := names(pods)
			if got := names(podsToDelete(pods, tt.n)); !slices.Equal(got, tt.want) {
				t.Errorf("podsToDelete = %v, want %v", got, tt.want)
			}
			if !slices.Equal(names(pods), before) {
				t.Error("podsToDelete reordered its input")
			}
		})
	}
}

func TestActivePods(t *testing.T) {
	pods := []*api.Pod{
		makePod(podSpec{name: "running", phase: api.PodRunning}),
		makePod(podSpec{name: "pending", phase: api.PodPending}),
		makePod(podSpec{name: "failed", phase: api.PodFailed}),
		makePod(podSpec{name: "succeeded", phase: api.PodSucceeded}),
		makePod(podSpec{name: "terminating", phase: api.PodRunning, deleting: true}),
	}
	if got, want := names(activePods(pods)), []string{"running", "pending"}; !slices.Equal(got, want) {
		t.Errorf("activePods = %v, want %v", got, want)
	}
}

func TestCalculateStatus(t *testing.T) {
	now := t0.Add(time.Hour)
	rs := &api.ReplicaSet{
		ObjectMeta: api.ObjectMeta{Generation: 4},
		Spec: api.ReplicaSetSpec{
			MinReadySeconds: 30,
			Template:        api.PodTemplateSpec{ObjectMeta: api.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "front"}}},
		},
	}
	full := map[string]string{"app": "web", "tier": "front", "extra": "x"}
	partial := map[string]string{"app": "web"}
	pods := []*api.Pod{
		makePod(podSpec{name: "available", phase: api.PodRunning, ready: true, readySince: now.Add(-time.Minute), labels: full}),
		makePod(podSpec{name: "ready-too-recently", phase: api.PodRunning, ready: true, readySince: now.Add(-10 * time.Second), labels: full}),
		makePod(podSpec{name: "not-ready", phase: api.PodRunning, labels: partial}),
		makePod(podSpec{name: "pending", phase: api.PodPending, labels: partial}),
	}
	got := calculateStatus(rs, pods, now)
	want := api.ReplicaSetStatus{Replicas: 4, FullyLabeledReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 1, ObservedGeneration: 4}
	if got != want {
		t.Errorf("calculateStatus = %+v, want %+v", got, want)
	}

	rs.Spec.MinReadySeconds = 0
	if got := calculateStatus(rs, pods, now).AvailableReplicas; got != 2 {
		t.Errorf("without minReadySeconds %d available, want every ready pod (2)", got)
	}
}

func TestNewPodFromTemplate(t *testing.T) {
	rs := &api.ReplicaSet{
		ObjectMeta: api.ObjectMeta{Name: "httpd-5f7c8d9b6", Namespace: "web", UID: "rs-uid"},
		Spec: api.ReplicaSetSpec{Template: api.PodTemplateSpec{
			ObjectMeta: api.ObjectMeta{Labels: map[string]string{"run": "httpd"}, Annotations: map[string]string{"a": "b"}},
			Spec:       api.PodSpec{Containers: []api.Container{{Name: "httpd", Image: "httpd"}}},
		}},
	}
	pod := newPod(rs)
	if pod.GenerateName != "httpd-5f7c8d9b6-" || pod.Name != "" || pod.Namespace != "web" {
		t.Errorf("name %q generateName %q namespace %q", pod.Name, pod.GenerateName, pod.Namespace)
	}
	if pod.Labels["run"] != "httpd" || pod.Annotations["a"] != "b" || pod.Spec.Containers[0].Image != "httpd" {
		t.Errorf("pod does not carry the template: %+v", pod)
	}
	ref := pod.ControllerRef()
	if ref == nil || ref.Kind != "ReplicaSet" || ref.APIVersion != "apps/v1" || ref.Name != rs.Name || ref.UID != "rs-uid" ||
		ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("controller reference = %+v", ref)
	}
	pod.Labels["run"] = "changed"
	if rs.Spec.Template.Labels["run"] != "httpd" {
		t.Error("the Pod shares its labels with the template")
	}
}

func TestSlowStartBatch(t *testing.T) {
	tests := []struct {
		name          string
		count         int
		failAfter     int // calls after which every call fails; -1 never
		wantSuccesses int
		wantCalls     int
	}{
		{name: "all succeed", count: 10, failAfter: -1, wantSuccesses: 10, wantCalls: 10},
		{name: "nothing to do", count: 0, failAfter: -1, wantSuccesses: 0, wantCalls: 0},
		// Batches 1, 2, 4: the batch of 4 has failures, no batch of 8 is tried.
		{name: "stops after a failing batch", count: 20, failAfter: 5, wantSuccesses: 5, wantCalls: 7},
		{name: "first call fails", count: 100, failAfter: 0, wantSuccesses: 0, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			successes, err := slowStartBatch(tt.count, 1, func() error {
				if n := int(calls.Add(1)); tt.failAfter >= 0 && n > tt.failAfter {
					return errors.New("quota exceeded")
				}
				return nil
			})
			if successes != tt.wantSuccesses || int(calls.Load()) != tt.wantCalls {
				t.Errorf("successes %d, calls %d; want %d, %d", successes, calls.Load(), tt.wantSuccesses, tt.wantCalls)
			}
			if (err != nil) != (tt.failAfter >= 0) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestExpectations(t *testing.T) {
	now := t0
	e := newExpectations(func() time.Time { return now })
	const key = "default/web"

	if !e.satisfied(key) {
		t.Fatal("a ReplicaSet that expects nothing must be satisfied")
	}
	e.expectCreations(key, 2)
	if e.satisfied(key) {
		t.Fatal("satisfied with two creates outstanding")
	}
	e.creationObserved(key)
	e.creationObserved(key)
	if !e.satisfied(key) {
		t.Fatal("not satisfied after both creates were seen")
	}

	e.expectDeletions(key, []string{"default/a", "default/b"})
	e.deletionObserved(key, "default/a")
	e.deletionObserved(key, "default/a") // seen twice: terminating, then gone
	if e.satisfied(key) {
		t.Fatal("satisfied with a delete outstanding")
	}
	e.deletionObserved(key, "default/b")
	if !e.satisfied(key) {
		t.Fatal("not satisfied after both deletes were seen")
	}

	e.expectCreations(key, 1)
	now = now.Add(expectationsTimeout + time.Second)
	if !e.satisfied(key) {
		t.Fatal("expectations must expire, or a lost watch event would stall the ReplicaSet")
	}

	e.expectCreations(key, 1)
	e.forget(key)
	if !e.satisfied(key) {
		t.Fatal("forget must drop the expectations")
	}
}
