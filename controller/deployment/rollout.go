package deployment

import (
	"context"
	"reflect"
	"slices"
	"time"

	"kubelite/api"
)

// rolloutRolling takes one step of a rolling update (Kubernetes'
// rolloutRolling): grow the new ReplicaSet within maxSurge; if it could not
// grow, shrink old ones within maxUnavailable; once complete, trim the
// history. Each step waits for the Pods of the previous one, since the
// ReplicaSets' status changes bring the Deployment back.
func (s *deploymentSync) rolloutRolling(ctx context.Context, rsList []*api.ReplicaSet) error {
	newRS, oldRSs, err := s.newAndOldReplicaSets(ctx, rsList, true)
	if err != nil {
		return err
	}
	allRSs := append(slices.Clone(oldRSs), newRS)

	scaledUp, err := s.applyScale(ctx,
		[]scaleTarget{{rs: newRS, replicas: rollingNewReplicas(s.d, allRSs, newRS)}}, &allRSs)
	if err != nil {
		return err
	}
	newRS = allRSs[len(allRSs)-1]
	if scaledUp {
		return s.syncRolloutStatus(ctx, newRS, allRSs)
	}

	scaledDown, err := s.applyScale(ctx, planOldScaleDown(s.d, newRS, oldRSs), &oldRSs, &allRSs)
	if err != nil {
		return err
	}
	if scaledDown {
		return s.syncRolloutStatus(ctx, newRS, allRSs)
	}

	if deploymentComplete(s.d, &s.d.Status) {
		if err := s.cleanUpHistory(ctx, oldRSs); err != nil {
			return err
		}
	}
	return s.syncRolloutStatus(ctx, newRS, allRSs)
}

// rolloutRecreate takes one step of a Recreate rollout: scale every old
// ReplicaSet to zero, wait until their Pods are gone, then create or scale
// up the new one.
func (s *deploymentSync) rolloutRecreate(ctx context.Context, rsList []*api.ReplicaSet) error {
	newRS, oldRSs, err := s.newAndOldReplicaSets(ctx, rsList, false)
	if err != nil {
		return err
	}
	allRSs := append(slices.Clone(oldRSs), newRS)

	var scaleDown []scaleTarget
	for _, rs := range activeReplicaSets(oldRSs) {
		scaleDown = append(scaleDown, scaleTarget{rs: rs, replicas: 0})
	}
	scaledDown, err := s.applyScale(ctx, scaleDown, &oldRSs, &allRSs)
	if err != nil {
		return err
	}
	if scaledDown || s.oldPodsRunning(oldRSs) {
		return s.syncRolloutStatus(ctx, newRS, allRSs)
	}

	if newRS == nil {
		if newRS, oldRSs, err = s.newAndOldReplicaSets(ctx, rsList, true); err != nil {
			return err
		}
		allRSs = append(slices.Clone(oldRSs), newRS)
	}
	if _, err := s.applyScale(ctx, []scaleTarget{{rs: newRS, replicas: replicasOf(s.d)}}, &allRSs); err != nil {
		return err
	}
	newRS = allRSs[len(allRSs)-1]

	if deploymentComplete(s.d, &s.d.Status) {
		if err := s.cleanUpHistory(ctx, oldRSs); err != nil {
			return err
		}
	}
	return s.syncRolloutStatus(ctx, newRS, allRSs)
}

// oldPodsRunning reports whether any Pod of the old ReplicaSets may still
// run: their controller has not caught up with the scale-down, they report
// Pods, or the Pod cache holds one that has not finished (terminating Pods
// included: Recreate promises that old and new never run together).
func (s *deploymentSync) oldPodsRunning(oldRSs []*api.ReplicaSet) bool {
	oldUIDs := make(map[string]bool, len(oldRSs))
	for _, rs := range oldRSs {
		if rs.Status.Replicas > 0 || rs.Status.ObservedGeneration < rs.Generation {
			return true
		}
		oldUIDs[rs.UID] = true
	}
	running := s.pods.ListSelector(s.d.Namespace, func(pod *api.Pod) bool {
		ref := pod.ControllerRef()
		return ref != nil && oldUIDs[ref.UID] &&
			pod.Status.Phase != api.PodSucceeded && pod.Status.Phase != api.PodFailed
	})
	return len(running) > 0
}

// scale resizes the ReplicaSets after a change of spec.replicas, or while
// the Deployment is paused, without rolling anything out.
func (s *deploymentSync) scale(ctx context.Context, rsList []*api.ReplicaSet) error {
	newRS, oldRSs, err := s.newAndOldReplicaSets(ctx, rsList, false)
	if err != nil {
		return err
	}
	allRSs := append(slices.Clone(oldRSs), newRS)
	if _, err := s.applyScale(ctx, planScale(s.d, newRS, oldRSs), &oldRSs, &allRSs); err != nil {
		return err
	}
	newRS = allRSs[len(allRSs)-1]
	if s.d.Spec.Paused {
		if err := s.cleanUpHistory(ctx, oldRSs); err != nil {
			return err
		}
	}
	return s.syncStatus(ctx, newRS, allRSs)
}

// syncStatusOnly records the status of a Deployment being deleted.
func (s *deploymentSync) syncStatusOnly(ctx context.Context, rsList []*api.ReplicaSet) error {
	newRS, oldRSs := splitReplicaSets(s.d, rsList)
	return s.syncStatus(ctx, newRS, append(oldRSs, newRS))
}

// syncStatus records the replica counts and the Available condition.
func (s *deploymentSync) syncStatus(ctx context.Context, newRS *api.ReplicaSet, allRSs []*api.ReplicaSet) error {
	status := calculateStatus(s.d, newRS, allRSs, api.Now())
	if reflect.DeepEqual(s.d.Status, status) {
		return nil
	}
	s.d.Status = status
	return s.updateStatus(ctx)
}

// syncRolloutStatus records the status with the Progressing condition of
// the rollout, and makes sure a stuck rollout is looked at again when its
// progress deadline passes (nothing else would bring it back).
func (s *deploymentSync) syncRolloutStatus(ctx context.Context, newRS *api.ReplicaSet, allRSs []*api.ReplicaSet) error {
	now := api.Now()
	status := calculateStatus(s.d, newRS, allRSs, now)
	applyRolloutProgress(s.d, newRS, &status, now)
	if !reflect.DeepEqual(s.d.Status, status) {
		s.d.Status = status
		if err := s.updateStatus(ctx); err != nil {
			return err
		}
	}
	if wait, ok := untilDeadline(s.d, &s.d.Status, now.Time); ok {
		s.queue.AddAfter(s.key, wait)
	}
	return nil
}

// untilDeadline is how long until an unfinished rollout's progress deadline
// passes; ok is false when there is nothing to watch for.
func untilDeadline(d *api.Deployment, status *api.DeploymentStatus, now time.Time) (time.Duration, bool) {
	deadline, ok := progressDeadline(d)
	cond := getCondition(status, api.DeploymentProgressing)
	if !ok || cond == nil || deploymentComplete(d, status) ||
		cond.Reason == ReasonNewReplicaSetAvailable || cond.Reason == ReasonProgressDeadlineExceeded {
		return 0, false
	}
	// A second late, so that the deadline has surely passed at second precision.
	return max(cond.LastUpdateTime.Add(deadline).Sub(now)+time.Second, 0), true
}
