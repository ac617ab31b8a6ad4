package deployment

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"kubelite/api"
	"kubelite/api/client"
)

// splitReplicaSets returns the ReplicaSet that runs the Deployment's
// current template (the oldest, should there be several) and the others.
func splitReplicaSets(d *api.Deployment, rsList []*api.ReplicaSet) (newRS *api.ReplicaSet, oldRSs []*api.ReplicaSet) {
	sorted := slices.Clone(rsList)
	slices.SortFunc(sorted, byCreation)
	for _, rs := range sorted {
		if newRS == nil && equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			newRS = rs
			continue
		}
		oldRSs = append(oldRSs, rs)
	}
	return newRS, oldRSs
}

// newAndOldReplicaSets splits the Deployment's ReplicaSets into the new one and the
// old ones, creating the new one when create is set and there is none,
// and brings revision annotations up to date (Kubernetes'
// getAllReplicaSetsAndSyncRevision). newRS is nil when there is none and
// create is not set.
func (s *deploymentSync) newAndOldReplicaSets(ctx context.Context, rsList []*api.ReplicaSet, create bool) (newRS *api.ReplicaSet, oldRSs []*api.ReplicaSet, err error) {
	newRS, oldRSs = splitReplicaSets(s.d, rsList)
	newRevision := maxRevision(oldRSs) + 1
	switch {
	case newRS != nil:
		newRS, err = s.syncNewReplicaSet(ctx, newRS, newRevision)
	case create:
		newRS, err = s.createNewReplicaSet(ctx, oldRSs, newRevision)
	}
	return newRS, oldRSs, err
}

// syncNewReplicaSet brings an existing new ReplicaSet's annotations and
// minReadySeconds up to date, and the Deployment's revision with it. A
// template used before (a rollback) becomes the newest revision again.
func (s *deploymentSync) syncNewReplicaSet(ctx context.Context, newRS *api.ReplicaSet, newRevision int64) (*api.ReplicaSet, error) {
	rs := api.DeepCopy(newRS)
	changed := setNewReplicaSetAnnotations(s.d, rs, newRevision)
	if rs.Spec.MinReadySeconds != s.d.Spec.MinReadySeconds {
		rs.Spec.MinReadySeconds = s.d.Spec.MinReadySeconds
		changed = true
	}
	if changed {
		updated, err := client.For[api.ReplicaSet](s.client, rs.Namespace).Update(ctx, rs)
		if err != nil {
			return nil, fmt.Errorf("updating ReplicaSet %s/%s: %w", rs.Namespace, rs.Name, err)
		}
		s.writes.record(s.key, updated.Name, updated.Generation)
		rs = updated
	}

	if setRevisionAnnotation(&s.d.ObjectMeta, rs.Annotations[AnnotationRevision]) {
		if err := s.updateDeployment(ctx); err != nil {
			return nil, err
		}
	}
	// A Deployment from before progress reporting starts its clock when
	// its new ReplicaSet is first seen.
	if _, ok := progressDeadline(s.d); ok && getCondition(&s.d.Status, api.DeploymentProgressing) == nil {
		setCondition(&s.d.Status, newCondition(api.DeploymentProgressing, api.ConditionTrue,
			ReasonFoundNewReplicaSet, fmt.Sprintf("Found new replica set %q", rs.Name), api.Now()))
		if err := s.updateStatus(ctx); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// createNewReplicaSet creates the ReplicaSet of the current template,
// sized for the first step of the rollout.
func (s *deploymentSync) createNewReplicaSet(ctx context.Context, oldRSs []*api.ReplicaSet, newRevision int64) (*api.ReplicaSet, error) {
	d := s.d
	hash := podTemplateHash(&d.Spec.Template, d.Status.CollisionCount)
	template := api.DeepCopy(d.Spec.Template)
	template.Labels = withEntry(template.Labels, LabelPodTemplateHash, hash)
	selector := api.DeepCopy(d.Spec.Selector)
	selector.MatchLabels = withEntry(selector.MatchLabels, LabelPodTemplateHash, hash)
	rs := &api.ReplicaSet{
		ObjectMeta: api.ObjectMeta{
			// A deterministic name makes a repeated create fail rather than
			// make a second ReplicaSet.
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			Labels:          template.Labels,
			OwnerReferences: []api.OwnerReference{controllerRef(d)},
		},
		Spec: api.ReplicaSetSpec{
			Replicas:        api.Ptr[int32](0),
			MinReadySeconds: d.Spec.MinReadySeconds,
			Selector:        selector,
			Template:        template,
		},
	}
	setNewReplicaSetAnnotations(d, rs, newRevision)
	setReplicasAnnotations(rs, replicasOf(d), replicasOf(d)+maxSurge(d))
	replicas := replicasOf(d) // Recreate starts its new ReplicaSet at full size
	if isRollingUpdate(d) {
		replicas = rollingNewReplicas(d, append(slices.Clone(oldRSs), rs), rs)
	}
	rs.Spec.Replicas = &replicas

	replicaSets := client.For[api.ReplicaSet](s.client, d.Namespace)
	created, err := replicaSets.Create(ctx, rs)
	alreadyExisted := false
	switch {
	case api.IsAlreadyExists(err):
		existing, getErr := replicaSets.Get(ctx, rs.Name)
		if getErr != nil {
			return nil, fmt.Errorf("reading existing ReplicaSet %s/%s: %w", d.Namespace, rs.Name, getErr)
		}
		if ref := existing.ControllerRef(); ref != nil && ref.UID == d.UID && equalIgnoreHash(&existing.Spec.Template, &d.Spec.Template) {
			// Ours, created by an earlier sync the cache did not show yet.
			created, alreadyExisted = existing, true
			break
		}
		// Another template hashed to the same name: hash again with a
		// bumped collision count, on the next sync.
		d.Status.CollisionCount = api.Ptr(collisionCount(d) + 1)
		if err := s.updateStatus(ctx); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("ReplicaSet name %s is taken by another template; retrying with collision count %d", rs.Name, *d.Status.CollisionCount)
	case err != nil:
		message := fmt.Sprintf("Failed to create new replica set %q: %v", rs.Name, err)
		s.recorder.Event(d, api.EventWarning, ReasonReplicaSetCreateError, message)
		if _, ok := progressDeadline(d); ok {
			setCondition(&d.Status, newCondition(api.DeploymentProgressing, api.ConditionFalse,
				ReasonReplicaSetCreateError, message, api.Now()))
			if statusErr := s.updateStatus(ctx); statusErr != nil {
				s.logger.Warn("recording the failed create", "err", statusErr)
			}
		}
		return nil, fmt.Errorf("creating ReplicaSet %s/%s: %w", d.Namespace, rs.Name, err)
	}
	s.writes.record(s.key, created.Name, created.Generation)
	if !alreadyExisted {
		s.logger.Info("created ReplicaSet", "replicaSet", created.Name, "replicas", replicas, "revision", newRevision)
		if replicas > 0 {
			s.recorder.Event(d, api.EventNormal, ReasonScalingReplicaSet,
				fmt.Sprintf("Scaled up replica set %s to %d", created.Name, replicas))
		}
	}

	if setRevisionAnnotation(&s.d.ObjectMeta, strconv.FormatInt(newRevision, 10)) {
		if err := s.updateDeployment(ctx); err != nil {
			return nil, err
		}
	}
	if _, ok := progressDeadline(s.d); ok && !alreadyExisted {
		setCondition(&s.d.Status, newCondition(api.DeploymentProgressing, api.ConditionTrue,
			ReasonNewReplicaSetCreated, fmt.Sprintf("Created new replica set %q", created.Name), api.Now()))
		if err := s.updateStatus(ctx); err != nil {
			return nil, err
		}
	}
	return created, nil
}

func collisionCount(d *api.Deployment) int32 {
	if d.Status.CollisionCount == nil {
		return 0
	}
	return *d.Status.CollisionCount
}

// scaleReplicaSet sets rs's size and records the Deployment size it was
// sized for (the annotations scaling decisions read). It reports whether
// the size changed and returns the ReplicaSet as written.
func (s *deploymentSync) scaleReplicaSet(ctx context.Context, rs *api.ReplicaSet, replicas int32) (bool, *api.ReplicaSet, error) {
	d := s.d
	oldReplicas := specReplicas(rs)
	resize := oldReplicas != replicas
	scaled := api.DeepCopy(rs)
	annotationsChanged := setReplicasAnnotations(scaled, replicasOf(d), replicasOf(d)+maxSurge(d))
	if !resize && !annotationsChanged {
		return false, rs, nil
	}
	scaled.Spec.Replicas = &replicas
	updated, err := client.For[api.ReplicaSet](s.client, rs.Namespace).Update(ctx, scaled)
	if err != nil {
		return false, nil, fmt.Errorf("scaling ReplicaSet %s/%s to %d: %w", rs.Namespace, rs.Name, replicas, err)
	}
	s.writes.record(s.key, updated.Name, updated.Generation)
	if resize {
		direction := "up"
		if replicas < oldReplicas {
			direction = "down"
		}
		s.logger.Info("scaled ReplicaSet", "replicaSet", rs.Name, "from", oldReplicas, "to", replicas)
		s.recorder.Event(d, api.EventNormal, ReasonScalingReplicaSet,
			fmt.Sprintf("Scaled %s replica set %s to %d", direction, rs.Name, replicas))
	}
	return resize, updated, nil
}

// applyScale carries out scale decisions, in order, and returns the
// ReplicaSets as written in place of the ones scaled; it reports whether any
// size changed.
func (s *deploymentSync) applyScale(ctx context.Context, plan []scaleTarget, rss ...*[]*api.ReplicaSet) (bool, error) {
	anyScaled := false
	for _, target := range plan {
		scaled, updated, err := s.scaleReplicaSet(ctx, target.rs, target.replicas)
		if err != nil {
			return anyScaled, err
		}
		anyScaled = anyScaled || scaled
		for _, list := range rss {
			for i, rs := range *list {
				if rs != nil && rs.UID == updated.UID {
					(*list)[i] = updated
				}
			}
		}
	}
	return anyScaled, nil
}

// cleanUpHistory deletes the old ReplicaSets beyond revisionHistoryLimit.
func (s *deploymentSync) cleanUpHistory(ctx context.Context, oldRSs []*api.ReplicaSet) error {
	for _, rs := range replicaSetsToDelete(s.d, oldRSs) {
		err := client.For[api.ReplicaSet](s.client, rs.Namespace).Delete(ctx, rs.Name, client.DeleteOptions{})
		if err != nil && !api.IsNotFound(err) {
			return fmt.Errorf("deleting old ReplicaSet %s/%s: %w", rs.Namespace, rs.Name, err)
		}
		s.logger.Info("deleted old ReplicaSet beyond the revision history limit", "replicaSet", rs.Name, "revision", revisionOf(&rs.ObjectMeta))
	}
	return nil
}

// setNewReplicaSetAnnotations copies the Deployment's annotations to its
// new ReplicaSet and raises its revision to newRevision; it reports whether
// anything changed.
func setNewReplicaSetAnnotations(d *api.Deployment, rs *api.ReplicaSet, newRevision int64) bool {
	changed := false
	for k, v := range d.Annotations {
		if annotationsNotCopied[k] || rs.Annotations[k] == v {
			continue
		}
		rs.Annotations = withEntry(rs.Annotations, k, v)
		changed = true
	}
	if revisionOf(&rs.ObjectMeta) < newRevision {
		rs.Annotations = withEntry(rs.Annotations, AnnotationRevision, strconv.FormatInt(newRevision, 10))
		changed = true
	}
	return changed
}

// setReplicasAnnotations records the Deployment size and maximum rs was
// sized for; it reports whether they changed.
func setReplicasAnnotations(rs *api.ReplicaSet, desired, maxReplicas int32) bool {
	changed := false
	for key, value := range map[string]string{
		AnnotationDesiredReplicas: strconv.Itoa(int(desired)),
		AnnotationMaxReplicas:     strconv.Itoa(int(maxReplicas)),
	} {
		if rs.Annotations[key] != value {
			rs.Annotations = withEntry(rs.Annotations, key, value)
			changed = true
		}
	}
	return changed
}

// setRevisionAnnotation sets an object's revision annotation; it reports
// whether it changed.
func setRevisionAnnotation(meta *api.ObjectMeta, revision string) bool {
	if revision == "" || meta.Annotations[AnnotationRevision] == revision {
		return false
	}
	meta.Annotations = withEntry(meta.Annotations, AnnotationRevision, revision)
	return true
}

// withEntry returns a copy of m with key set to value (for labels,
// selectors and annotations alike).
func withEntry(m map[string]string, key, value string) map[string]string {
	out := maps.Clone(m)
	if out == nil {
		out = make(map[string]string, 1)
	}
	out[key] = value
	return out
}
