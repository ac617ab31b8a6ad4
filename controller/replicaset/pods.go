package replicaset

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"kubelite/api"
)

// This file holds the ReplicaSet controller's decisions about Pods, as pure
// functions of their state, so that they are tested without an API server.

// isActive reports whether a Pod counts towards its ReplicaSet's replicas:
// one that finished (Succeeded, Failed) or is terminating does not, so a
// replacement is created for it.
func isActive(pod *api.Pod) bool {
	return pod.Status.Phase != api.PodSucceeded &&
		pod.Status.Phase != api.PodFailed &&
		pod.DeletionTimestamp == nil
}

// activePods returns the active Pods of pods.
func activePods(pods []*api.Pod) []*api.Pod {
	var active []*api.Pod
	for _, pod := range pods {
		if isActive(pod) {
			active = append(active, pod)
		}
	}
	return active
}

// readyCondition returns the Pod's Ready condition, or nil.
func readyCondition(pod *api.Pod) *api.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == api.PodReady {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// isAvailable reports whether pod has been ready for at least
// minReadySeconds at now, as Kubernetes' podutil.IsPodAvailable.
func isAvailable(pod *api.Pod, minReadySeconds int32, now time.Time) bool {
	if !pod.IsReady() {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	readySince := readyCondition(pod).LastTransitionTime
	return !readySince.IsZero() && readySince.Add(time.Duration(minReadySeconds)*time.Second).Before(now)
}

// phaseOrdinal ranks phases from least to most useful when choosing which
// Pods to delete: Pending < Unknown < Running.
var phaseOrdinal = map[string]int{api.PodPending: 0, api.PodUnknown: 1, api.PodRunning: 2}

// lessUseful orders Pods for deletion, least useful first, as Kubernetes'
// controller.ActivePods does:
//  1. unscheduled before scheduled;
//  2. Pending before Unknown before Running;
//  3. not ready before ready;
//  4. ready for less time before ready for longer;
//  5. more container restarts before fewer;
//  6. newer before older;
//
// and, so that the choice is deterministic, by name.
func lessUseful(a, b *api.Pod) int {
	if aScheduled, bScheduled := a.Spec.NodeName != "", b.Spec.NodeName != ""; aScheduled != bScheduled {
		return boolOrder(aScheduled, bScheduled)
	}
	if c := cmp.Compare(phaseOrdinal[a.Status.Phase], phaseOrdinal[b.Status.Phase]); c != 0 {
		return c
	}
	if aReady, bReady := a.IsReady(), b.IsReady(); aReady != bReady {
		return boolOrder(aReady, bReady)
	}
	if a.IsReady() {
		// Both ready: the one ready most recently goes first.
		if c := laterFirst(readyCondition(a).LastTransitionTime.Time, readyCondition(b).LastTransitionTime.Time); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(maxRestarts(b), maxRestarts(a)); c != 0 {
		return c
	}
	if c := laterFirst(a.CreationTimestamp.Time, b.CreationTimestamp.Time); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

// boolOrder puts false before true.
func boolOrder(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	default:
		return 1
	}
}

// laterFirst orders times newest first, with the zero time (unknown) before all.
func laterFirst(a, b time.Time) int {
	switch {
	case a.Equal(b):
		return 0
	case a.IsZero():
		return -1
	case b.IsZero():
		return 1
	case a.After(b):
		return -1
	default:
		return 1
	}
}

func maxRestarts(pod *api.Pod) int32 {
	var most int32
	for _, cs := range pod.Status.ContainerStatuses {
		most = max(most, cs.RestartCount)
	}
	return most
}

// podsToDelete picks the n least useful of pods.
func podsToDelete(pods []*api.Pod, n int) []*api.Pod {
	ranked := slices.Clone(pods)
	slices.SortFunc(ranked, lessUseful)
	return ranked[:min(n, len(ranked))]
}

// calculateStatus is the status of rs given its active Pods at now.
func calculateStatus(rs *api.ReplicaSet, pods []*api.Pod, now time.Time) api.ReplicaSetStatus {
	status := api.ReplicaSetStatus{
		Replicas:           int32(len(pods)),
		ObservedGeneration: rs.Generation,
	}
	for _, pod := range pods {
		if hasLabels(pod.Labels, rs.Spec.Template.Labels) {
			status.FullyLabeledReplicas++
		}
		if pod.IsReady() {
			status.ReadyReplicas++
			if isAvailable(pod, rs.Spec.MinReadySeconds, now) {
				status.AvailableReplicas++
			}
		}
	}
	return status
}

// hasLabels reports whether labels include every label of want.
func hasLabels(labels, want map[string]string) bool {
	for k, v := range want {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// newPod stamps out a Pod from rs's template, controlled by rs, named
// "<rs-name>-<5 random characters>" by the API server.
func newPod(rs *api.ReplicaSet) *api.Pod {
	template := api.DeepCopy(rs.Spec.Template)
	return &api.Pod{
		ObjectMeta: api.ObjectMeta{
			GenerateName:    rs.Name + "-",
			Namespace:       rs.Namespace,
			Labels:          template.Labels,
			Annotations:     template.Annotations,
			Finalizers:      template.Finalizers,
			OwnerReferences: []api.OwnerReference{controllerRef(rs)},
		},
		Spec: template.Spec,
	}
}

// controllerRef is the owner reference rs puts on the Pods it controls.
func controllerRef(rs *api.ReplicaSet) api.OwnerReference {
	return api.OwnerReference{
		APIVersion:         "apps/v1",
		Kind:               "ReplicaSet",
		Name:               rs.Name,
		UID:                rs.UID,
		Controller:         api.Ptr(true),
		BlockOwnerDeletion: api.Ptr(true),
	}
}

// slowStartInitialBatchSize is the first batch of slowStartBatch.
const slowStartInitialBatchSize = 1

// slowStartBatch calls fn count times in batches of growing size (1, 2, 4,
// ...), each batch in parallel, and stops after the first batch with a
// failure, so that a ReplicaSet whose Pods are all refused (quota, an invalid
// template) makes a handful of calls rather than hundreds. It returns the
// number of successful calls and the first error.
func slowStartBatch(count, initialBatchSize int, fn func() error) (int, error) {
	successes := 0
	remaining := count
	for batch := min(remaining, initialBatchSize); batch > 0; batch = min(2*batch, remaining) {
		errs := make([]error, batch)
		var wg sync.WaitGroup
		for i := range batch {
			wg.Go(func() { errs[i] = fn() })
		}
		wg.Wait()
		var firstErr error
		for _, err := range errs {
			if err == nil {
				successes++
			} else if firstErr == nil {
				firstErr = err
			}
		}
		if firstErr != nil {
			return successes, firstErr
		}
		remaining -= batch
	}
	return successes, nil
}
