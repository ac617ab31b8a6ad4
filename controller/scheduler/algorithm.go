package scheduler

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"kubelite/api"
)

// This file is the scheduling decision, as pure functions of the Pod, the
// nodes and the Pods already placed, so that it is table-tested.

// Why a node cannot take a Pod, in Kubernetes' words where it has them.
const (
	reasonNotReady      = "node(s) were not ready"
	reasonUnschedulable = "node(s) were unschedulable"
	reasonNodeSelector  = "node(s) didn't match Pod's node affinity/selector"
	reasonNoPodCIDR     = "node(s) had no pod CIDR assigned"
	// reasonUntoleratedTaint is completed with the taint: {key: value}.
	reasonUntoleratedTaint = "node(s) had untolerated taint {%s: %s}"
)

// FitError says why a Pod fits on no node: the number of nodes, and for
// each reason how many nodes it ruled out.
type FitError struct {
	NumAllNodes int
	Reasons     map[string]int // reason -> number of nodes
}

// Error is Kubernetes' scheduler message, reasons sorted:
// "0/3 nodes are available: 1 node(s) didn't match Pod's node
// affinity/selector, 2 node(s) were not ready."
func (e *FitError) Error() string {
	if e.NumAllNodes == 0 {
		return "no nodes available to schedule pods"
	}
	histogram := make([]string, 0, len(e.Reasons))
	for reason, count := range e.Reasons {
		histogram = append(histogram, fmt.Sprintf("%d %s", count, reason))
	}
	slices.Sort(histogram)
	return fmt.Sprintf("0/%d nodes are available: %s.", e.NumAllNodes, strings.Join(histogram, ", "))
}

// unfitReason returns why node cannot take pod, or "" when it can. The
// checks run in a fixed order and the first failure is the reason, as the
// Kubernetes scheduler's filter plugins do.
func unfitReason(pod *api.Pod, node *api.Node) string {
	switch {
	case !node.IsReady():
		return reasonNotReady
	case node.Spec.Unschedulable:
		return reasonUnschedulable
	case !matchesNodeSelector(pod.Spec.NodeSelector, node.Labels):
		return reasonNodeSelector
	}
	if taint := untoleratedTaint(pod.Spec.Tolerations, node.Spec.Taints); taint != nil {
		return fmt.Sprintf(reasonUntoleratedTaint, taint.Key, taint.Value)
	}
	// A host-network Pod takes the node's address and needs no pod network.
	if !pod.Spec.HostNetwork && node.Spec.PodCIDR == "" && len(node.Spec.PodCIDRs) == 0 {
		return reasonNoPodCIDR
	}
	return ""
}

// matchesNodeSelector reports whether the node has every label of selector.
func matchesNodeSelector(selector, nodeLabels map[string]string) bool {
	for k, v := range selector {
		if got, ok := nodeLabels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Taint effects that keep new Pods off a node; PreferNoSchedule only
// discourages, and kubelite does not weigh it.
const (
	taintNoSchedule = "NoSchedule"
	taintNoExecute  = "NoExecute"
)

// untoleratedTaint returns the first NoSchedule or NoExecute taint that no
// toleration tolerates, or nil.
func untoleratedTaint(tolerations []api.Toleration, taints []api.Taint) *api.Taint {
	for i := range taints {
		taint := &taints[i]
		if taint.Effect != taintNoSchedule && taint.Effect != taintNoExecute {
			continue
		}
		if !slices.ContainsFunc(tolerations, func(t api.Toleration) bool { return tolerates(t, taint) }) {
			return taint
		}
	}
	return nil
}

// tolerates reports whether t tolerates taint, as Kubernetes'
// Toleration.ToleratesTaint: an empty effect or key matches all, and
// operator Exists matches any value.
func tolerates(t api.Toleration, taint *api.Taint) bool {
	if t.Effect != "" && t.Effect != taint.Effect {
		return false
	}
	if t.Key != "" && t.Key != taint.Key {
		return false
	}
	switch t.Operator {
	case "", "Equal":
		return t.Value == taint.Value
	case "Exists":
		return true
	default:
		return false
	}
}

// nodeScore is what ranks the nodes that fit: fewer replicas of the Pod's
// owner first, then fewer Pods.
type nodeScore struct {
	name      string
	ownerPods int // Pods with the same controller as the Pod being placed
	pods      int // all Pods that still occupy the node
}

// selectNode picks the node for pod among nodes, given the Pods already
// placed on nodes (spec.nodeName set). Among the nodes that fit it prefers
// the one with the fewest replicas of the same owner (spreading a
// ReplicaSet across nodes), then the least loaded, then the first by name.
func selectNode(pod *api.Pod, nodes []*api.Node, placed []*api.Pod) (string, *FitError) {
	fitErr := &FitError{NumAllNodes: len(nodes), Reasons: map[string]int{}}
	scores := make(map[string]*nodeScore)
	for _, node := range nodes {
		if reason := unfitReason(pod, node); reason != "" {
			fitErr.Reasons[reason]++
			continue
		}
		scores[node.Name] = &nodeScore{name: node.Name}
	}
	if len(scores) == 0 {
		return "", fitErr
	}

	owner := ownerUID(pod)
	for _, other := range placed {
		score, ok := scores[other.Spec.NodeName]
		if !ok || !occupiesNode(other) || other.UID == pod.UID && pod.UID != "" {
			continue
		}
		score.pods++
		if owner != "" && ownerUID(other) == owner {
			score.ownerPods++
		}
	}
	ranked := slices.Collect(maps.Values(scores))
	slices.SortFunc(ranked, func(a, b *nodeScore) int {
		return cmp.Or(
			cmp.Compare(a.ownerPods, b.ownerPods),
			cmp.Compare(a.pods, b.pods),
			cmp.Compare(a.name, b.name),
		)
	})
	return ranked[0].name, nil
}

// ownerUID is the UID of the Pod's controller, or "".
func ownerUID(pod *api.Pod) string {
	if ref := pod.ControllerRef(); ref != nil {
		return ref.UID
	}
	return ""
}

// occupiesNode reports whether a placed Pod still uses its node: not
// finished and not on its way out.
func occupiesNode(pod *api.Pod) bool {
	return pod.Status.Phase != api.PodSucceeded &&
		pod.Status.Phase != api.PodFailed &&
		pod.DeletionTimestamp == nil
}
