package deployment

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"kubelite/api"
)

// This file holds the Deployment controller's arithmetic and bookkeeping as
// pure functions of the Deployment and its ReplicaSets, following
// Kubernetes' pkg/controller/deployment/util, so that they are table-tested.

// Labels and annotations the controller maintains, with Kubernetes' names.
const (
	// LabelPodTemplateHash tells apart the ReplicaSets (and Pods) of each
	// template of a Deployment.
	LabelPodTemplateHash = "pod-template-hash"
	// AnnotationRevision numbers the templates a Deployment has had.
	AnnotationRevision = "deployment.kubernetes.io/revision"
	// AnnotationDesiredReplicas is the Deployment's spec.replicas when a
	// ReplicaSet was last scaled; a difference means the user scaled.
	AnnotationDesiredReplicas = "deployment.kubernetes.io/desired-replicas"
	// AnnotationMaxReplicas is replicas+maxSurge when a ReplicaSet was last
	// scaled, the base of proportional scaling.
	AnnotationMaxReplicas = "deployment.kubernetes.io/max-replicas"
)

// annotationsNotCopied are the Deployment annotations a new ReplicaSet does
// not inherit: the controller's own and kubectl's record of the manifest.
var annotationsNotCopied = map[string]bool{
	AnnotationRevision:                                 true,
	AnnotationDesiredReplicas:                          true,
	AnnotationMaxReplicas:                              true,
	"deployment.kubernetes.io/revision-history":        true,
	"kubectl.kubernetes.io/last-applied-configuration": true,
}

// Condition and event reasons, as Kubernetes writes them.
const (
	ReasonMinimumReplicasAvailable   = "MinimumReplicasAvailable"
	ReasonMinimumReplicasUnavailable = "MinimumReplicasUnavailable"
	ReasonNewReplicaSetCreated       = "NewReplicaSetCreated"
	ReasonFoundNewReplicaSet         = "FoundNewReplicaSet"
	ReasonReplicaSetUpdated          = "ReplicaSetUpdated"
	ReasonNewReplicaSetAvailable     = "NewReplicaSetAvailable"
	ReasonProgressDeadlineExceeded   = "ProgressDeadlineExceeded"
	ReasonReplicaSetCreateError      = "ReplicaSetCreateError"
	ReasonScalingReplicaSet          = "ScalingReplicaSet"
	ReasonSelectingAll               = "SelectingAll"
)

// ---- Template hash ----

// safeEncodingAlphabet has no vowels (no words) and no confusable
// characters, as Kubernetes' rand.SafeEncodeString.
const safeEncodingAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// safeEncodeString maps each character of s into safeEncodingAlphabet.
func safeEncodeString(s string) string {
	encoded := make([]byte, 0, len(s))
	for _, r := range s {
		encoded = append(encoded, safeEncodingAlphabet[int(r)%len(safeEncodingAlphabet)])
	}
	return string(encoded)
}

// podTemplateHash is the pod-template-hash of a template, as Kubernetes'
// controller.ComputeHash: an FNV-32a of a stable rendering of the template
// (JSON, whose maps are written in key order), with the collision count
// mixed in when there is one, written as a decimal number in the safe
// alphabet, e.g. "5f7c8d9b6".
func podTemplateHash(template *api.PodTemplateSpec, collisionCount *int32) string {
	hasher := fnv.New32a()
	data, err := json.Marshal(template)
	if err != nil {
		panic("deployment: encoding a pod template: " + err.Error()) // plain data cannot fail
	}
	hasher.Write(data)
	if collisionCount != nil {
		var buf [8]byte
		binary.LittleEndian.PutUint32(buf[:], uint32(*collisionCount))
		hasher.Write(buf[:])
	}
	return safeEncodeString(strconv.FormatUint(uint64(hasher.Sum32()), 10))
}

// equalIgnoreHash reports whether two templates are the same but for the
// pod-template-hash label: whether a ReplicaSet runs a Deployment's template.
func equalIgnoreHash(a, b *api.PodTemplateSpec) bool {
	return string(templateJSONWithoutHash(a)) == string(templateJSONWithoutHash(b))
}

func templateJSONWithoutHash(t *api.PodTemplateSpec) []byte {
	stripped := *t
	if _, ok := t.Labels[LabelPodTemplateHash]; ok {
		stripped.Labels = maps.Clone(t.Labels)
		delete(stripped.Labels, LabelPodTemplateHash)
	}
	data, err := json.Marshal(&stripped)
	if err != nil {
		panic("deployment: encoding a pod template: " + err.Error())
	}
	return data
}

// ---- Replica arithmetic ----

// replicasOf is a Deployment's spec.replicas, which defaults to 1.
func replicasOf(d *api.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// specReplicas is a ReplicaSet's spec.replicas; a nil ReplicaSet has none.
func specReplicas(rs *api.ReplicaSet) int32 {
	switch {
	case rs == nil:
		return 0
	case rs.Spec.Replicas == nil:
		return 1
	default:
		return *rs.Spec.Replicas
	}
}

// countedAvailable is how many of a ReplicaSet's Pods a rollout may count
// as available: its reported available Pods, but never more than it is
// asked to keep. Right after a scale-down the status still counts Pods the
// ReplicaSet controller is about to delete; counting them would let the
// next step scale down again and drop below the allowed minimum.
func countedAvailable(rs *api.ReplicaSet) int32 {
	if rs == nil {
		return 0
	}
	return min(specReplicas(rs), rs.Status.AvailableReplicas)
}

// sumOf adds up f over the (non-nil) ReplicaSets.
func sumOf(rss []*api.ReplicaSet, f func(*api.ReplicaSet) int32) int32 {
	var total int32
	for _, rs := range rss {
		if rs != nil {
			total += f(rs)
		}
	}
	return total
}

func statusReplicas(rs *api.ReplicaSet) int32    { return rs.Status.Replicas }
func statusReady(rs *api.ReplicaSet) int32       { return rs.Status.ReadyReplicas }
func statusAvailable(rs *api.ReplicaSet) int32   { return rs.Status.AvailableReplicas }
func isActiveReplicaSet(rs *api.ReplicaSet) bool { return rs != nil && specReplicas(rs) > 0 }

// activeReplicaSets are those asked to run Pods.
func activeReplicaSets(rss []*api.ReplicaSet) []*api.ReplicaSet {
	var active []*api.ReplicaSet
	for _, rs := range rss {
		if isActiveReplicaSet(rs) {
			active = append(active, rs)
		}
	}
	return active
}

// scaledValue resolves an absolute number or a percentage of total,
// rounding a percentage up or down, as Kubernetes'
// intstr.GetScaledValueFromIntOrPercent.
func scaledValue(v *api.IntOrString, total int32, roundUp bool) (int32, error) {
	if v == nil {
		return 0, nil
	}
	if !v.IsString {
		return v.IntVal, nil
	}
	digits, isPercent := strings.CutSuffix(v.StrVal, "%")
	percent, err := strconv.Atoi(digits)
	if !isPercent || err != nil {
		return 0, fmt.Errorf("invalid value for IntOrString: %q is neither a number nor a percentage", v.StrVal)
	}
	scaled := float64(percent) * float64(total) / 100
	if roundUp {
		return int32(math.Ceil(scaled)), nil
	}
	return int32(math.Floor(scaled)), nil
}

// rollingParameters returns maxSurge and maxUnavailable of a rolling
// update, 25% each when unset.
func rollingParameters(d *api.Deployment) (surge, unavailable *api.IntOrString) {
	surge = api.Ptr(api.FromString(api.DefaultMaxSurge))
	unavailable = api.Ptr(api.FromString(api.DefaultMaxUnavailable))
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
		if ru.MaxSurge != nil {
			surge = ru.MaxSurge
		}
		if ru.MaxUnavailable != nil {
			unavailable = ru.MaxUnavailable
		}
	}
	return surge, unavailable
}

// resolveFenceposts turns maxSurge and maxUnavailable into Pod counts for
// desired replicas: surge rounds up, unavailable down; when both come to
// zero, one Pod may be unavailable, or a rollout could never start.
func resolveFenceposts(maxSurge, maxUnavailable *api.IntOrString, desired int32) (surge, unavailable int32, err error) {
	if surge, err = scaledValue(maxSurge, desired, true); err != nil {
		return 0, 0, err
	}
	if unavailable, err = scaledValue(maxUnavailable, desired, false); err != nil {
		return 0, 0, err
	}
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return surge, unavailable, nil
}

func isRollingUpdate(d *api.Deployment) bool {
	return d.Spec.Strategy.Type != api.RecreateStrategy
}

// maxSurge is how many Pods above spec.replicas a rollout may run.
func maxSurge(d *api.Deployment) int32 {
	if !isRollingUpdate(d) {
		return 0
	}
	surge, unavailable := rollingParameters(d)
	s, _, err := resolveFenceposts(surge, unavailable, replicasOf(d))
	if err != nil {
		return 0 // refused by validation; be conservative
	}
	return s
}

// maxUnavailable is how many of spec.replicas may be unavailable during a
// rollout, never more than all of them.
func maxUnavailable(d *api.Deployment) int32 {
	if !isRollingUpdate(d) || replicasOf(d) == 0 {
		return 0
	}
	surge, unavailable := rollingParameters(d)
	_, u, err := resolveFenceposts(surge, unavailable, replicasOf(d))
	if err != nil {
		return 0
	}
	return min(u, replicasOf(d))
}

// ---- Rolling update steps ----

// scaleTarget is a decision: scale rs to replicas.
type scaleTarget struct {
	rs       *api.ReplicaSet
	replicas int32
}

// rollingNewReplicas is the new ReplicaSet's size for the next step of a
// rolling update (Kubernetes' reconcileNewReplicaSet and NewRSNewReplicas):
// grow it by as much as maxSurge allows above spec.replicas, counting every
// ReplicaSet's spec, and never beyond spec.replicas; one that is larger
// (the Deployment was scaled down) shrinks to spec.replicas.
func rollingNewReplicas(d *api.Deployment, allRSs []*api.ReplicaSet, newRS *api.ReplicaSet) int32 {
	if specReplicas(newRS) >= replicasOf(d) {
		return replicasOf(d)
	}
	current := sumOf(allRSs, specReplicas)
	maxTotal := replicasOf(d) + maxSurge(d)
	if current >= maxTotal {
		return specReplicas(newRS) // at the surge limit: wait for old Pods to go
	}
	scaleUp := min(maxTotal-current, replicasOf(d)-specReplicas(newRS))
	return specReplicas(newRS) + max(scaleUp, 0)
}

// planOldScaleDown is the rolling update's step down (Kubernetes'
// reconcileOldReplicaSets): how far the old ReplicaSets may shrink now
// without taking available Pods below spec.replicas-maxUnavailable. It
// first removes old Pods that are not available anyway (oldest ReplicaSet
// first), then available ones down to the minimum. It returns the new sizes
// of the ReplicaSets that change, in the order to apply them.
func planOldScaleDown(d *api.Deployment, newRS *api.ReplicaSet, oldRSs []*api.ReplicaSet) []scaleTarget {
	old := slices.Clone(activeReplicaSets(oldRSs))
	if len(old) == 0 {
		return nil
	}
	slices.SortFunc(old, byCreation)
	sizes := make([]int32, len(old)) // the planned spec.replicas of old[i]
	for i, rs := range old {
		sizes[i] = specReplicas(rs)
	}
	available := func(i int) int32 { return min(sizes[i], countedAvailable(old[i])) }

	minAvailable := replicasOf(d) - maxUnavailable(d)
	newUnavailable := specReplicas(newRS) - countedAvailable(newRS)
	allPods := sumOf(old, specReplicas) + specReplicas(newRS)
	maxScaledDown := allPods - minAvailable - newUnavailable
	if maxScaledDown <= 0 {
		return nil
	}

	// Unavailable old Pods first: removing them costs no availability.
	var cleaned int32
	for i := range old {
		if cleaned >= maxScaledDown {
			break
		}
		unhealthy := sizes[i] - available(i)
		if unhealthy <= 0 {
			continue
		}
		step := min(maxScaledDown-cleaned, unhealthy)
		sizes[i] -= step
		cleaned += step
	}

	// Then available ones, as far as the minimum allows.
	totalAvailable := countedAvailable(newRS)
	for i := range old {
		totalAvailable += available(i)
	}
	if excess := totalAvailable - minAvailable; excess > 0 {
		var scaledDown int32
		for i := range old {
			if scaledDown >= excess {
				break
			}
			step := min(sizes[i], excess-scaledDown)
			sizes[i] -= step
			scaledDown += step
		}
	}

	var plan []scaleTarget
	for i, rs := range old {
		if sizes[i] != specReplicas(rs) {
			plan = append(plan, scaleTarget{rs: rs, replicas: sizes[i]})
		}
	}
	return plan
}

// ---- Scaling without a template change ----

// findActiveOrLatest returns the only active ReplicaSet, or the newest one
// when none is active; nil when several are active (a rollout is under way).
func findActiveOrLatest(newRS *api.ReplicaSet, oldRSs []*api.ReplicaSet) *api.ReplicaSet {
	if newRS == nil && len(oldRSs) == 0 {
		return nil
	}
	active := activeReplicaSets(append(slices.Clone(oldRSs), newRS))
	switch len(active) {
	case 0:
		if newRS != nil {
			return newRS
		}
		return slices.MaxFunc(oldRSs, byCreation)
	case 1:
		return active[0]
	default:
		return nil
	}
}

// desiredReplicasAnnotation is the Deployment size rs was last scaled for.
func desiredReplicasAnnotation(rs *api.ReplicaSet) (int32, bool) {
	return int32Annotation(rs, AnnotationDesiredReplicas)
}

func int32Annotation(rs *api.ReplicaSet, key string) (int32, bool) {
	v, ok := rs.Annotations[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}

// isScalingEvent reports whether the user changed spec.replicas since the
// active ReplicaSets were last sized.
func isScalingEvent(d *api.Deployment, allRSs []*api.ReplicaSet) bool {
	for _, rs := range activeReplicaSets(allRSs) {
		if desired, ok := desiredReplicasAnnotation(rs); ok && desired != replicasOf(d) {
			return true
		}
	}
	return false
}

// isSaturated reports whether the new ReplicaSet runs all of spec.replicas, available.
func isSaturated(d *api.Deployment, rs *api.ReplicaSet) bool {
	if rs == nil {
		return false
	}
	desired, ok := desiredReplicasAnnotation(rs)
	return ok && desired == replicasOf(d) &&
		specReplicas(rs) == replicasOf(d) &&
		rs.Status.AvailableReplicas == replicasOf(d)
}

// planScale sizes the ReplicaSets after the user scaled the Deployment
// (Kubernetes' DeploymentController.scale): with one active ReplicaSet it
// takes the new size; with a saturated new ReplicaSet the old ones go to
// zero; during a rolling update the change is spread over the active
// ReplicaSets in proportion to their sizes, so that neither old nor new
// Pods are favoured.
func planScale(d *api.Deployment, newRS *api.ReplicaSet, oldRSs []*api.ReplicaSet) []scaleTarget {
	if rs := findActiveOrLatest(newRS, oldRSs); rs != nil {
		// Even at the right size it is "scaled", to record the new
		// desired-replicas annotation that ends the scaling event.
		return []scaleTarget{{rs: rs, replicas: replicasOf(d)}}
	}
	if isSaturated(d, newRS) {
		var plan []scaleTarget
		for _, old := range activeReplicaSets(oldRSs) {
			plan = append(plan, scaleTarget{rs: old, replicas: 0})
		}
		return plan
	}
	if !isRollingUpdate(d) {
		return nil // Recreate never runs two ReplicaSets for long
	}
	return planProportionalScale(d, newRS, oldRSs)
}

// planProportionalScale spreads the difference between the allowed size
// (replicas+maxSurge) and the active ReplicaSets' total over them, in
// proportion to their sizes; what rounding leaves over goes to the largest.
func planProportionalScale(d *api.Deployment, newRS *api.ReplicaSet, oldRSs []*api.ReplicaSet) []scaleTarget {
	active := activeReplicaSets(append(slices.Clone(oldRSs), newRS))
	var allowed int32
	if replicasOf(d) > 0 {
		allowed = replicasOf(d) + maxSurge(d)
	}
	toAdd := allowed - sumOf(active, specReplicas)
	if len(active) == 0 {
		return nil
	}
	if toAdd > 0 {
		slices.SortFunc(active, bySizeThenNewer) // grow the newest first
	} else {
		slices.SortFunc(active, bySizeThenOlder) // shrink the oldest first
	}
	sizes := make([]int32, len(active))
	var added int32
	for i, rs := range active {
		p := proportion(rs, d, toAdd, added)
		sizes[i] = specReplicas(rs) + p
		added += p
	}
	sizes[0] = max(sizes[0]+toAdd-added, 0)

	// Every active ReplicaSet is "scaled", even to its own size, so that all
	// record the new desired-replicas annotation that ends the scaling event.
	plan := make([]scaleTarget, len(active))
	for i, rs := range active {
		plan[i] = scaleTarget{rs: rs, replicas: sizes[i]}
	}
	return plan
}

// proportion is how many replicas rs gains (or loses) of toAdd, given that
// added have been handed out already (Kubernetes' GetProportion).
func proportion(rs *api.ReplicaSet, d *api.Deployment, toAdd, added int32) int32 {
	if specReplicas(rs) == 0 || toAdd == 0 || toAdd == added {
		return 0
	}
	fraction := replicaSetFraction(rs, d)
	allowed := toAdd - added
	if toAdd > 0 {
		return min(fraction, allowed)
	}
	return max(fraction, allowed)
}

// replicaSetFraction is rs's share of the new allowed size, measured
// against the allowed size it was last scaled for.
func replicaSetFraction(rs *api.ReplicaSet, d *api.Deployment) int32 {
	if replicasOf(d) == 0 {
		return -specReplicas(rs)
	}
	newMax := replicasOf(d) + maxSurge(d)
	oldMax, ok := int32Annotation(rs, AnnotationMaxReplicas)
	if !ok || oldMax == 0 {
		oldMax = d.Status.Replicas
		if oldMax == 0 {
			return 0
		}
	}
	scaled := float64(specReplicas(rs)) * float64(newMax) / float64(oldMax)
	return int32(math.Round(scaled)) - specReplicas(rs)
}

// ---- Revisions and history ----

// revisionOf is an object's revision annotation, 0 when missing.
func revisionOf(meta *api.ObjectMeta) int64 {
	n, err := strconv.ParseInt(meta.Annotations[AnnotationRevision], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// maxRevision is the highest revision among the ReplicaSets.
func maxRevision(rss []*api.ReplicaSet) int64 {
	var highest int64
	for _, rs := range rss {
		highest = max(highest, revisionOf(&rs.ObjectMeta))
	}
	return highest
}

// replicaSetsToDelete returns the old ReplicaSets beyond
// revisionHistoryLimit that may go: the oldest revisions first, and only
// those scaled to zero whose controller has seen it and whose Pods are gone.
func replicaSetsToDelete(d *api.Deployment, oldRSs []*api.ReplicaSet) []*api.ReplicaSet {
	if d.Spec.RevisionHistoryLimit == nil {
		return nil
	}
	var alive []*api.ReplicaSet
	for _, rs := range oldRSs {
		if rs.DeletionTimestamp == nil {
			alive = append(alive, rs)
		}
	}
	excess := len(alive) - int(*d.Spec.RevisionHistoryLimit)
	if excess <= 0 {
		return nil
	}
	slices.SortFunc(alive, byRevision)
	var doomed []*api.ReplicaSet
	for _, rs := range alive[:excess] {
		if rs.Status.Replicas != 0 || specReplicas(rs) != 0 || rs.Generation > rs.Status.ObservedGeneration {
			continue
		}
		doomed = append(doomed, rs)
	}
	return doomed
}

// ---- Orders ----

// byCreation orders ReplicaSets oldest first, then by name.
func byCreation(a, b *api.ReplicaSet) int {
	return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Name, b.Name))
}

// byRevision orders ReplicaSets by revision, then oldest first.
func byRevision(a, b *api.ReplicaSet) int {
	return cmp.Or(cmp.Compare(revisionOf(&a.ObjectMeta), revisionOf(&b.ObjectMeta)), byCreation(a, b))
}

// bySizeThenNewer orders larger first, then newer first.
func bySizeThenNewer(a, b *api.ReplicaSet) int {
	return cmp.Or(cmp.Compare(specReplicas(b), specReplicas(a)), byCreation(b, a))
}

// bySizeThenOlder orders larger first, then older first.
func bySizeThenOlder(a, b *api.ReplicaSet) int {
	return cmp.Or(cmp.Compare(specReplicas(b), specReplicas(a)), byCreation(a, b))
}

// ---- Status and conditions ----

// calculateStatus is the Deployment's status from its ReplicaSets, with the
// Available condition; other conditions are carried over.
func calculateStatus(d *api.Deployment, newRS *api.ReplicaSet, allRSs []*api.ReplicaSet, now api.Time) api.DeploymentStatus {
	available := sumOf(allRSs, statusAvailable)
	status := api.DeploymentStatus{
		ObservedGeneration:  d.Generation,
		Replicas:            sumOf(allRSs, statusReplicas),
		UpdatedReplicas:     sumOf([]*api.ReplicaSet{newRS}, statusReplicas),
		ReadyReplicas:       sumOf(allRSs, statusReady),
		AvailableReplicas:   available,
		UnavailableReplicas: max(sumOf(allRSs, specReplicas)-available, 0),
		Conditions:          slices.Clone(d.Status.Conditions),
		CollisionCount:      d.Status.CollisionCount,
	}
	if available >= replicasOf(d)-maxUnavailable(d) {
		setCondition(&status, newCondition(api.DeploymentAvailable, api.ConditionTrue,
			ReasonMinimumReplicasAvailable, "Deployment has minimum availability.", now))
	} else {
		setCondition(&status, newCondition(api.DeploymentAvailable, api.ConditionFalse,
			ReasonMinimumReplicasUnavailable, "Deployment does not have minimum availability.", now))
	}
	return status
}

// progressDeadline is spec.progressDeadlineSeconds; ok is false when the
// Deployment opted out of progress reporting (math.MaxInt32, as Kubernetes).
func progressDeadline(d *api.Deployment) (deadline time.Duration, ok bool) {
	seconds := int32(api.DefaultProgressDeadlineSeconds)
	if d.Spec.ProgressDeadlineSeconds != nil {
		seconds = *d.Spec.ProgressDeadlineSeconds
	}
	if seconds == math.MaxInt32 {
		return 0, false
	}
	return time.Duration(seconds) * time.Second, true
}

// deploymentComplete reports whether every replica runs the new template,
// is available, and no old one is left, for the current generation.
func deploymentComplete(d *api.Deployment, status *api.DeploymentStatus) bool {
	replicas := replicasOf(d)
	return status.UpdatedReplicas == replicas &&
		status.Replicas == replicas &&
		status.AvailableReplicas == replicas &&
		status.ObservedGeneration >= d.Generation
}

// deploymentProgressing reports whether status shows progress over the
// Deployment's recorded status: more new, ready or available Pods, or fewer old.
func deploymentProgressing(d *api.Deployment, status *api.DeploymentStatus) bool {
	old := d.Status
	oldOld := old.Replicas - old.UpdatedReplicas
	newOld := status.Replicas - status.UpdatedReplicas
	return status.UpdatedReplicas > old.UpdatedReplicas ||
		newOld < oldOld ||
		status.ReadyReplicas > old.ReadyReplicas ||
		status.AvailableReplicas > old.AvailableReplicas
}

// deploymentTimedOut reports whether the rollout made no progress for
// longer than its progress deadline.
func deploymentTimedOut(d *api.Deployment, status *api.DeploymentStatus, now time.Time) bool {
	deadline, ok := progressDeadline(d)
	if !ok {
		return false
	}
	cond := getCondition(status, api.DeploymentProgressing)
	switch {
	case cond == nil || cond.Reason == ReasonNewReplicaSetAvailable:
		return false
	case cond.Reason == ReasonProgressDeadlineExceeded:
		return true
	}
	return cond.LastUpdateTime.Add(deadline).Before(now)
}

// applyRolloutProgress sets the Progressing condition of status after a
// rollout step (Kubernetes' syncRolloutStatus): complete, progressing, or
// timed out. newRS may be nil (Recreate before its new ReplicaSet exists).
func applyRolloutProgress(d *api.Deployment, newRS *api.ReplicaSet, status *api.DeploymentStatus, now api.Time) {
	if _, ok := progressDeadline(d); !ok {
		removeCondition(status, api.DeploymentProgressing)
		return
	}
	current := getCondition(&d.Status, api.DeploymentProgressing)
	alreadyComplete := status.Replicas == status.UpdatedReplicas &&
		current != nil && current.Reason == ReasonNewReplicaSetAvailable
	if alreadyComplete {
		return
	}
	subject := fmt.Sprintf("Deployment %q", d.Name)
	if newRS != nil {
		subject = fmt.Sprintf("ReplicaSet %q", newRS.Name)
	}
	switch {
	case deploymentComplete(d, status):
		setCondition(status, newCondition(api.DeploymentProgressing, api.ConditionTrue,
			ReasonNewReplicaSetAvailable, subject+" has successfully progressed.", now))
	case deploymentProgressing(d, status):
		// Progress refreshes lastUpdateTime even with the same reason,
		// which setCondition would not; the transition time stays.
		cond := newCondition(api.DeploymentProgressing, api.ConditionTrue,
			ReasonReplicaSetUpdated, subject+" is progressing.", now)
		if current != nil && current.Status == api.ConditionTrue {
			cond.LastTransitionTime = current.LastTransitionTime
		}
		removeCondition(status, api.DeploymentProgressing)
		setCondition(status, cond)
	case deploymentTimedOut(d, status, now.Time):
		setCondition(status, newCondition(api.DeploymentProgressing, api.ConditionFalse,
			ReasonProgressDeadlineExceeded, subject+" has timed out progressing.", now))
	}
}

func newCondition(conditionType, status, reason, message string, now api.Time) api.DeploymentCondition {
	return api.DeploymentCondition{
		Type:               conditionType,
		Status:             status,
		LastUpdateTime:     now,
		LastTransitionTime: now,
		Reason:             reason,
		Message:            message,
	}
}

func getCondition(status *api.DeploymentStatus, conditionType string) *api.DeploymentCondition {
	for i := range status.Conditions {
		if status.Conditions[i].Type == conditionType {
			return &status.Conditions[i]
		}
	}
	return nil
}

// setCondition records cond unless a condition of its type has the same
// status and reason; the transition time moves only when the status does.
func setCondition(status *api.DeploymentStatus, cond api.DeploymentCondition) {
	current := getCondition(status, cond.Type)
	if current != nil && current.Status == cond.Status && current.Reason == cond.Reason {
		return
	}
	if current != nil && current.Status == cond.Status {
		cond.LastTransitionTime = current.LastTransitionTime
	}
	removeCondition(status, cond.Type)
	status.Conditions = append(status.Conditions, cond)
}

func removeCondition(status *api.DeploymentStatus, conditionType string) {
	status.Conditions = slices.DeleteFunc(status.Conditions, func(c api.DeploymentCondition) bool {
		return c.Type == conditionType
	})
}
