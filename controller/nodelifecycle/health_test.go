package nodelifecycle

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"kubelite/api"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestDesiredTaints(t *testing.T) {
	added := api.NewTime(t0.Add(-time.Hour))
	unreachable := api.Taint{Key: TaintUnreachable, Effect: "NoExecute", TimeAdded: &added}
	notReady := api.Taint{Key: TaintNotReady, Effect: "NoExecute", TimeAdded: &added}
	custom := api.Taint{Key: "dedicated", Value: "db", Effect: "NoSchedule"}
	tests := []struct {
		name        string
		taints      []api.Taint
		ready       string
		wantKeys    []string
		wantChanged bool
	}{
		{name: "ready, untainted", ready: api.ConditionTrue, wantKeys: nil},
		{name: "ready again: taints go, others stay", taints: []api.Taint{custom, unreachable}, ready: api.ConditionTrue,
			wantKeys: []string{"dedicated"}, wantChanged: true},
		{name: "unknown: unreachable", taints: []api.Taint{custom}, ready: api.ConditionUnknown,
			wantKeys: []string{"dedicated", TaintUnreachable}, wantChanged: true},
		{name: "unknown, already tainted", taints: []api.Taint{unreachable}, ready: api.ConditionUnknown,
			wantKeys: []string{TaintUnreachable}},
		{name: "false: not-ready replaces unreachable", taints: []api.Taint{unreachable}, ready: api.ConditionFalse,
			wantKeys: []string{TaintNotReady}, wantChanged: true},
		{name: "false, already tainted", taints: []api.Taint{notReady}, ready: api.ConditionFalse,
			wantKeys: []string{TaintNotReady}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := slices.Clone(tt.taints)
			got, changed := desiredTaints(tt.taints, tt.ready, t0)
			var keys []string
			for _, taint := range got {
				keys = append(keys, taint.Key)
				if taint.Key == TaintUnreachable || taint.Key == TaintNotReady {
					if taint.Effect != "NoExecute" || taint.TimeAdded == nil {
						t.Errorf("taint %+v, want NoExecute with timeAdded", taint)
					}
					if !changed && !taint.TimeAdded.Equal(added.Time) {
						t.Errorf("an existing taint's timeAdded changed")
					}
				}
			}
			if !slices.Equal(keys, tt.wantKeys) || changed != tt.wantChanged {
				t.Errorf("taints %v changed %v, want %v %v", keys, changed, tt.wantKeys, tt.wantChanged)
			}
			if !slices.EqualFunc(before, tt.taints, func(a, b api.Taint) bool { return a.Key == b.Key }) {
				t.Error("the input was modified")
			}
		})
	}
}

func TestMarkUnknown(t *testing.T) {
	beat := api.NewTime(t0.Add(-time.Minute))
	node := &api.Node{Status: api.NodeStatus{Conditions: []api.NodeCondition{
		{Type: api.NodeReady, Status: api.ConditionTrue, LastHeartbeatTime: beat},
		{Type: "MemoryPressure", Status: api.ConditionFalse},
	}}}
	if !markUnknown(node, t0) {
		t.Fatal("nothing changed")
	}
	for _, c := range node.Status.Conditions {
		if c.Status != api.ConditionUnknown || c.Reason != ReasonNodeStatusUnknown || c.Message != MessageNodeStatusUnknown ||
			!c.LastTransitionTime.Equal(t0) {
			t.Errorf("condition %+v, want Unknown since t0", c)
		}
	}
	if !readyCondition(node).LastHeartbeatTime.Equal(beat.Time) {
		t.Error("the last heartbeat must stay what the agent reported")
	}
	if markUnknown(node, t0.Add(time.Second)) {
		t.Error("a second call changed something")
	}

	never := &api.Node{}
	if !markUnknown(never, t0) || readyStatus(never) != api.ConditionUnknown ||
		readyCondition(never).Reason != ReasonNodeStatusNeverUpdated {
		t.Errorf("a node that never reported: %+v", never.Status.Conditions)
	}
}

func TestHeartbeatOf(t *testing.T) {
	node := &api.Node{Status: api.NodeStatus{Conditions: []api.NodeCondition{
		{Type: api.NodeReady, Status: api.ConditionTrue, LastHeartbeatTime: api.NewTime(t0)},
	}}}
	lease := &api.Lease{Spec: api.LeaseSpec{RenewTime: &api.MicroTime{Time: t0}}}
	base := heartbeatOf(node, lease)

	renewed := &api.Lease{Spec: api.LeaseSpec{RenewTime: &api.MicroTime{Time: t0.Add(time.Millisecond)}}}
	if heartbeatOf(node, renewed) == base {
		t.Error("a renewed lease is not a new heartbeat")
	}
	reported := api.DeepCopy(node)
	reported.Status.Conditions[0].LastHeartbeatTime = api.NewTime(t0.Add(10 * time.Second))
	if heartbeatOf(reported, lease) == base {
		t.Error("a new status heartbeat is not a new heartbeat")
	}
	// What the controller itself writes is no heartbeat.
	marked := api.DeepCopy(node)
	markUnknown(marked, t0.Add(time.Minute))
	marked.Spec.Taints = []api.Taint{{Key: TaintUnreachable, Effect: "NoExecute"}}
	if heartbeatOf(marked, lease) != base {
		t.Error("the controller's own writes count as a heartbeat")
	}
}

func TestEvictionDelay(t *testing.T) {
	seconds := func(n int64) *int64 { return &n }
	tests := []struct {
		name        string
		tolerations []api.Toleration
		taint       string
		wantDelay   time.Duration
		wantEvicts  bool
	}{
		{name: "no toleration: the default", taint: TaintUnreachable, wantDelay: time.Minute, wantEvicts: true},
		{name: "tolerated for 300 s", taint: TaintUnreachable,
			tolerations: []api.Toleration{{Key: TaintUnreachable, Operator: "Exists", Effect: "NoExecute", TolerationSeconds: seconds(300)}},
			wantDelay:   5 * time.Minute, wantEvicts: true},
		{name: "tolerated forever", taint: TaintUnreachable,
			tolerations: []api.Toleration{{Key: TaintUnreachable, Operator: "Exists"}}},
		{name: "tolerates everything", taint: TaintNotReady,
			tolerations: []api.Toleration{{Operator: "Exists"}}},
		{name: "tolerates another taint only", taint: TaintUnreachable,
			tolerations: []api.Toleration{{Key: TaintNotReady, Operator: "Exists", TolerationSeconds: seconds(1)}},
			wantDelay:   time.Minute, wantEvicts: true},
		{name: "tolerates NoSchedule only", taint: TaintUnreachable,
			tolerations: []api.Toleration{{Key: TaintUnreachable, Operator: "Exists", Effect: "NoSchedule"}},
			wantDelay:   time.Minute, wantEvicts: true},
		{name: "Equal with an empty value", taint: TaintNotReady,
			tolerations: []api.Toleration{{Key: TaintNotReady, Operator: "Equal", TolerationSeconds: seconds(0)}},
			wantDelay:   0, wantEvicts: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &api.Pod{Spec: api.PodSpec{Tolerations: tt.tolerations}}
			delay, evicts := evictionDelay(pod, tt.taint, time.Minute)
			if delay != tt.wantDelay || evicts != tt.wantEvicts {
				t.Errorf("evictionDelay = %v %v, want %v %v", delay, evicts, tt.wantDelay, tt.wantEvicts)
			}
		})
	}
}

func TestMarkPodNotReady(t *testing.T) {
	pod := &api.Pod{Status: api.PodStatus{Conditions: []api.PodCondition{{Type: api.PodReady, Status: api.ConditionTrue}}}}
	if !markPodNotReady(pod, t0) || pod.IsReady() {
		t.Fatalf("conditions %+v, want Ready False", pod.Status.Conditions)
	}
	if markPodNotReady(pod, t0) {
		t.Error("a second call changed something")
	}
	if markPodNotReady(&api.Pod{}, t0) {
		t.Error("a pod without a Ready condition changed")
	}
}

func TestCIDRRange(t *testing.T) {
	r, err := parseCIDRRange("10.244.0.0/16", 24)
	if err != nil {
		t.Fatal(err)
	}
	if r.count != 256 || r.subnet(0).String() != "10.244.0.0/24" || r.subnet(255).String() != "10.244.255.0/24" {
		t.Errorf("range %+v: first %v last %v", r, r.subnet(0), r.subnet(255))
	}
	for cidr, want := range map[string]bool{
		"10.244.7.0/24": true, "10.244.7.0/25": false, "10.244.7.1/24": false, "10.245.0.0/24": false, "bogus": false,
	} {
		if got := r.contains(cidr); got != want {
			t.Errorf("contains(%s) = %v, want %v", cidr, got, want)
		}
	}
	small, err := parseCIDRRange("10.0.0.0/22", 24)
	if err != nil {
		t.Fatal(err)
	}
	// The lowest free one wins; one taken meanwhile is skipped.
	used := map[string]bool{"10.0.0.0/24": true}
	got, err := small.firstFree(used, func(cidr string) (bool, error) { return cidr != "10.0.1.0/24", nil })
	if err != nil || got != "10.0.2.0/24" {
		t.Errorf("firstFree = %q, %v; want 10.0.2.0/24", got, err)
	}
	_, err = small.firstFree(map[string]bool{"10.0.0.0/24": true, "10.0.1.0/24": true, "10.0.2.0/24": true, "10.0.3.0/24": true},
		func(string) (bool, error) { return true, nil })
	if err != errRangeFull {
		t.Errorf("a full range: err = %v, want errRangeFull", err)
	}
	for _, bad := range []struct {
		cidr string
		mask int
	}{{"10.0.0.0/24", 16}, {"fd00::/64", 80}, {"nonsense", 24}, {"10.0.0.0/8", 30}} {
		if _, err := parseCIDRRange(bad.cidr, bad.mask); err == nil {
			t.Errorf("parseCIDRRange(%s, %d) succeeded", bad.cidr, bad.mask)
		}
	}
}

func TestMemoryClaims(t *testing.T) {
	ctx := context.Background()
	claims := newMemoryClaims()
	for i, node := range []string{"a", "b"} {
		holder, err := claims.claim(ctx, "10.244.0.0/24", node)
		if err != nil || holder != "a" {
			t.Errorf("claim %d by %s: holder %q, %v; want a", i, node, holder, err)
		}
	}
	if err := claims.release(ctx, "10.244.0.0/24", "b"); err != nil {
		t.Fatal(err)
	}
	if all, _ := claims.list(ctx); fmt.Sprint(all) != "map[10.244.0.0/24:a]" {
		t.Errorf("another node released a's claim: %v", all)
	}
}
