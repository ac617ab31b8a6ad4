package nodelifecycle

import (
	"slices"
	"time"

	"kubelite/api"
)

// Taints the controller puts on nodes that are not Ready, as Kubernetes' does.
const (
	TaintUnreachable = "node.kubernetes.io/unreachable"
	TaintNotReady    = "node.kubernetes.io/not-ready"
)

// Reasons and messages of the Ready condition the controller writes.
const (
	ReasonNodeStatusUnknown      = "NodeStatusUnknown"
	MessageNodeStatusUnknown     = "Kubelet stopped posting node status."
	ReasonNodeStatusNeverUpdated = "NodeStatusNeverUpdated"
	MessageNodeNeverUpdated      = "Kubelet never posted node status."
)

// Clock tells the time. The controller's timeouts are measured on it, so
// tests use a fake one instead of waiting out 40 s.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// readyCondition returns the node's Ready condition, or nil.
func readyCondition(node *api.Node) *api.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == api.NodeReady {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

// readyStatus is the node's Ready status: True, False or Unknown (also when
// it reports none).
func readyStatus(node *api.Node) string {
	if c := readyCondition(node); c != nil {
		return c.Status
	}
	return api.ConditionUnknown
}

// heartbeatOf sums up what a node agent last reported: its Lease's renew
// time and its Ready condition's heartbeat. A change of either is a sign
// of life; the controller measures silence on its own clock from the last
// change it saw, so that clock skew between machines does not matter.
func heartbeatOf(node *api.Node, lease *api.Lease) string {
	var beat string
	if lease != nil && lease.Spec.RenewTime != nil {
		beat = lease.Spec.RenewTime.UTC().Format(time.RFC3339Nano)
	}
	beat += "|"
	if c := readyCondition(node); c != nil {
		beat += c.LastHeartbeatTime.UTC().Format(time.RFC3339)
	}
	return beat
}

// markUnknown sets every condition the node agent reports to Unknown, as
// Kubernetes does for a silent node; it reports whether anything changed.
// A node that never reported Ready gets a Ready condition saying so.
func markUnknown(node *api.Node, now time.Time) bool {
	changed := false
	sawReady := false
	for i := range node.Status.Conditions {
		c := &node.Status.Conditions[i]
		if c.Type == api.NodeReady {
			sawReady = true
		}
		if c.Status == api.ConditionUnknown {
			continue
		}
		c.Status = api.ConditionUnknown
		c.Reason = ReasonNodeStatusUnknown
		c.Message = MessageNodeStatusUnknown
		c.LastTransitionTime = api.NewTime(now)
		changed = true
	}
	if !sawReady {
		node.Status.Conditions = append(node.Status.Conditions, api.NodeCondition{
			Type:               api.NodeReady,
			Status:             api.ConditionUnknown,
			Reason:             ReasonNodeStatusNeverUpdated,
			Message:            MessageNodeNeverUpdated,
			LastTransitionTime: api.NewTime(now),
		})
		changed = true
	}
	return changed
}

// desiredTaints returns the node's taints with the NoExecute taint that
// matches its Ready status — unreachable for Unknown, not-ready for False,
// none for True — and reports whether that changed anything. A taint
// already there keeps its timeAdded.
func desiredTaints(taints []api.Taint, ready string, now time.Time) ([]api.Taint, bool) {
	want := ""
	switch ready {
	case api.ConditionUnknown:
		want = TaintUnreachable
	case api.ConditionFalse:
		want = TaintNotReady
	}
	out := slices.DeleteFunc(slices.Clone(taints), func(t api.Taint) bool {
		return (t.Key == TaintUnreachable || t.Key == TaintNotReady) && t.Key != want
	})
	changed := len(out) != len(taints)
	if want != "" && !slices.ContainsFunc(out, func(t api.Taint) bool { return t.Key == want }) {
		added := api.NewTime(now)
		out = append(out, api.Taint{Key: want, Effect: "NoExecute", TimeAdded: &added})
		changed = true
	}
	return out, changed
}

// evictionDelay is how long after its node stopped being Ready a Pod is
// evicted: the tolerationSeconds of a toleration of the node's NoExecute
// taint, or the default timeout; forever (ok false) when it tolerates the
// taint without a limit.
func evictionDelay(pod *api.Pod, taintKey string, defaultTimeout time.Duration) (delay time.Duration, ok bool) {
	for _, t := range pod.Spec.Tolerations {
		if !tolerates(t, taintKey) {
			continue
		}
		if t.TolerationSeconds == nil {
			return 0, false
		}
		return time.Duration(max(*t.TolerationSeconds, 0)) * time.Second, true
	}
	return defaultTimeout, true
}

// tolerates reports whether t tolerates the NoExecute taint taintKey.
func tolerates(t api.Toleration, taintKey string) bool {
	if t.Effect != "" && t.Effect != "NoExecute" {
		return false
	}
	switch t.Operator {
	case "Exists":
		return t.Key == "" || t.Key == taintKey
	case "", "Equal":
		return t.Key == taintKey && t.Value == ""
	}
	return false
}

// isTerminal reports whether a Pod has finished for good.
func isTerminal(pod *api.Pod) bool {
	return pod.Status.Phase == api.PodSucceeded || pod.Status.Phase == api.PodFailed
}

// markPodNotReady sets the Pod's Ready condition False; it reports whether
// anything changed.
func markPodNotReady(pod *api.Pod, now time.Time) bool {
	for i := range pod.Status.Conditions {
		c := &pod.Status.Conditions[i]
		if c.Type != api.PodReady {
			continue
		}
		if c.Status == api.ConditionFalse {
			return false
		}
		c.Status = api.ConditionFalse
		c.Reason = "NodeNotReady"
		c.LastTransitionTime = api.NewTime(now)
		return true
	}
	return false // a Pod that never was Ready has nothing to withdraw
}
