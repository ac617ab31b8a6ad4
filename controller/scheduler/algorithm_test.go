package scheduler

import (
	"fmt"
	"testing"
	"time"

	"kubelite/api"
)

// node builds a test node: Ready, schedulable, with a pod CIDR, unless told otherwise.
type nodeSpec struct {
	name          string
	notReady      bool
	unschedulable bool
	noCIDR        bool
	labels        map[string]string
	taints        []api.Taint
}

func makeNode(s nodeSpec) *api.Node {
	ready := api.ConditionTrue
	if s.notReady {
		ready = api.ConditionFalse
	}
	node := &api.Node{
		ObjectMeta: api.ObjectMeta{Name: s.name, Labels: s.labels},
		Spec:       api.NodeSpec{Unschedulable: s.unschedulable, Taints: s.taints, PodCIDR: "10.244.1.0/24"},
		Status:     api.NodeStatus{Conditions: []api.NodeCondition{{Type: api.NodeReady, Status: ready}}},
	}
	if s.noCIDR {
		node.Spec.PodCIDR = ""
	}
	return node
}

// placedPod is a Pod on a node, controlled by owner ("" for none).
func placedPod(name, node, owner string) *api.Pod {
	pod := &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default", UID: "uid-" + name},
		Spec:       api.PodSpec{NodeName: node},
		Status:     api.PodStatus{Phase: api.PodRunning},
	}
	if owner != "" {
		pod.OwnerReferences = []api.OwnerReference{{Kind: "ReplicaSet", Name: owner, UID: owner, Controller: api.Ptr(true)}}
	}
	return pod
}

func nodes(specs ...nodeSpec) []*api.Node {
	var out []*api.Node
	for _, s := range specs {
		out = append(out, makeNode(s))
	}
	return out
}

func TestSelectNode(t *testing.T) {
	web := placedPod("new", "", "web")
	web.UID = "uid-new"
	withSelector := placedPod("picky", "", "")
	withSelector.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	tolerant := placedPod("tolerant", "", "")
	tolerant.Spec.Tolerations = []api.Toleration{{Key: "dedicated", Operator: "Equal", Value: "db", Effect: "NoSchedule"}}
	hostNet := placedPod("hostnet", "", "")
	hostNet.Spec.HostNetwork = true

	finished := placedPod("done", "node1", "web")
	finished.Status.Phase = api.PodSucceeded
	terminating := placedPod("leaving", "node1", "web")
	terminating.DeletionTimestamp = api.Ptr(api.Now())

	dbTaint := []api.Taint{{Key: "dedicated", Value: "db", Effect: "NoSchedule"}}
	tests := []struct {
		name   string
		pod    *api.Pod
		nodes  []*api.Node
		placed []*api.Pod
		want   string
	}{
		{
			name:  "ties go to the first name",
			pod:   web,
			nodes: nodes(nodeSpec{name: "node3"}, nodeSpec{name: "node1"}, nodeSpec{name: "node2"}),
			want:  "node1",
		},
		{
			name:   "spreads replicas of one owner before balancing load",
			pod:    web,
			nodes:  nodes(nodeSpec{name: "node1"}, nodeSpec{name: "node2"}),
			placed: []*api.Pod{placedPod("w1", "node1", "web"), placedPod("x1", "node2", "other"), placedPod("x2", "node2", "other")},
			want:   "node2",
		},
		{
			name:   "least loaded when the owner is spread evenly",
			pod:    web,
			nodes:  nodes(nodeSpec{name: "node1"}, nodeSpec{name: "node2"}),
			placed: []*api.Pod{placedPod("w1", "node1", "web"), placedPod("w2", "node2", "web"), placedPod("x1", "node1", "")},
			want:   "node2",
		},
		{
			name:   "finished and terminating pods do not count",
			pod:    web,
			nodes:  nodes(nodeSpec{name: "node1"}, nodeSpec{name: "node2"}),
			placed: []*api.Pod{finished, terminating, placedPod("x1", "node2", "")},
			want:   "node1",
		},
		{
			name:   "the pod itself does not count",
			pod:    web,
			nodes:  nodes(nodeSpec{name: "node1"}, nodeSpec{name: "node2"}),
			placed: []*api.Pod{placedPod("new", "node1", "web")},
			want:   "node1",
		},
		{
			name:  "skips not ready, unschedulable and CIDR-less nodes",
			pod:   web,
			nodes: nodes(nodeSpec{name: "a", notReady: true}, nodeSpec{name: "b", unschedulable: true}, nodeSpec{name: "c", noCIDR: true}, nodeSpec{name: "d"}),
			want:  "d",
		},
		{
			name:  "honours the node selector",
			pod:   withSelector,
			nodes: nodes(nodeSpec{name: "node1"}, nodeSpec{name: "node2", labels: map[string]string{"disk": "ssd"}}),
			want:  "node2",
		},
		{
			name:  "a tolerated taint is no obstacle",
			pod:   tolerant,
			nodes: nodes(nodeSpec{name: "node1", taints: dbTaint}),
			want:  "node1",
		},
		{
			name:  "a host-network pod needs no pod CIDR",
			pod:   hostNet,
			nodes: nodes(nodeSpec{name: "node1", noCIDR: true}),
			want:  "node1",
		},
		{
			name:  "PreferNoSchedule taints do not filter",
			pod:   web,
			nodes: nodes(nodeSpec{name: "node1", taints: []api.Taint{{Key: "k", Effect: "PreferNoSchedule"}}}),
			want:  "node1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fitErr := selectNode(tt.pod, tt.nodes, tt.placed)
			if fitErr != nil || got != tt.want {
				t.Errorf("selectNode = %q, %v; want %q", got, fitErr, tt.want)
			}
		})
	}
}

func TestSelectNodeExplainsWhyNothingFits(t *testing.T) {
	picky := placedPod("picky", "", "")
	picky.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	tests := []struct {
		name  string
		pod   *api.Pod
		nodes []*api.Node
		want  string
	}{
		{
			name:  "no nodes",
			pod:   picky,
			nodes: nil,
			want:  "no nodes available to schedule pods",
		},
		{
			name:  "Kubernetes' message, reasons sorted",
			pod:   picky,
			nodes: nodes(nodeSpec{name: "a", notReady: true}, nodeSpec{name: "b"}, nodeSpec{name: "c", notReady: true}),
			want:  "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 node(s) were not ready.",
		},
		{
			name: "each node counted once, for its first reason",
			pod:  picky,
			nodes: nodes(
				nodeSpec{name: "a", notReady: true, unschedulable: true},
				nodeSpec{name: "b", unschedulable: true},
				nodeSpec{name: "c", labels: map[string]string{"disk": "ssd"}, taints: []api.Taint{{Key: "dedicated", Value: "db", Effect: "NoExecute"}}},
				nodeSpec{name: "d", labels: map[string]string{"disk": "ssd"}, noCIDR: true},
			),
			want: "0/4 nodes are available: 1 node(s) had no pod CIDR assigned, 1 node(s) had untolerated taint {dedicated: db}, 1 node(s) were not ready, 1 node(s) were unschedulable.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fitErr := selectNode(tt.pod, tt.nodes, nil)
			if fitErr == nil {
				t.Fatalf("selectNode = %q, want a FitError", got)
			}
			if fitErr.Error() != tt.want {
				t.Errorf("message\n got: %s\nwant: %s", fitErr.Error(), tt.want)
			}
		})
	}
}

func TestTolerates(t *testing.T) {
	taint := &api.Taint{Key: "dedicated", Value: "db", Effect: "NoSchedule"}
	tests := []struct {
		toleration api.Toleration
		want       bool
	}{
		{api.Toleration{Key: "dedicated", Value: "db", Effect: "NoSchedule"}, true},
		{api.Toleration{Key: "dedicated", Operator: "Equal", Value: "db"}, true},
		{api.Toleration{Key: "dedicated", Operator: "Exists"}, true},
		{api.Toleration{Operator: "Exists"}, true}, // tolerates everything
		{api.Toleration{Key: "dedicated", Value: "web", Effect: "NoSchedule"}, false},
		{api.Toleration{Key: "dedicated", Value: "db", Effect: "NoExecute"}, false},
		{api.Toleration{Key: "other", Operator: "Exists"}, false},
		{api.Toleration{Key: "dedicated", Operator: "Bogus", Value: "db"}, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%+v", tt.toleration), func(t *testing.T) {
			if got := tolerates(tt.toleration, taint); got != tt.want {
				t.Errorf("tolerates = %v, want %v", got, tt.want)
			}
		})
	}
}

func t0() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) }

func TestSetUnschedulable(t *testing.T) {
	earlier, now := api.NewTime(t0()), api.Now()
	var status api.PodStatus
	if !setUnschedulable(&status, "0/1 nodes are available: 1 node(s) were not ready.", earlier) {
		t.Fatal("adding the condition reported no change")
	}
	if setUnschedulable(&status, "0/1 nodes are available: 1 node(s) were not ready.", now) {
		t.Error("the same condition again reported a change")
	}
	if !setUnschedulable(&status, "0/2 nodes are available: 2 node(s) were not ready.", now) {
		t.Fatal("a new message reported no change")
	}
	if len(status.Conditions) != 1 {
		t.Fatalf("conditions = %+v, want one", status.Conditions)
	}
	c := status.Conditions[0]
	if c.Type != api.PodScheduled || c.Status != api.ConditionFalse || c.Reason != ReasonUnschedulable ||
		!c.LastTransitionTime.Equal(earlier.Time) {
		t.Errorf("condition = %+v; want PodScheduled False Unschedulable, transition time kept", c)
	}
}
