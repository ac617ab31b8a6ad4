package podworker

import (
	"fmt"
	"strings"
	"time"

	"kubelite/api"
	"kubelite/nodeagent/runtime"
)

// Waiting reasons and terminated reasons the agent reports, as the kubelet
// names them.
const (
	ReasonContainerCreating    = "ContainerCreating"
	ReasonCrashLoopBackOff     = "CrashLoopBackOff"
	ReasonImagePullBackOff     = "ImagePullBackOff"
	ReasonErrImagePull         = "ErrImagePull"
	ReasonCreateContainerError = "CreateContainerError"
	ReasonRunContainerError    = "RunContainerError"
	ReasonCompleted            = "Completed"
	ReasonError                = "Error"
	ReasonStatusUnknown        = "ContainerStatusUnknown"
	ReasonStartError           = "StartError"
)

// ContainerIDPrefix starts every containerID in a Pod's status.
const ContainerIDPrefix = "containerd://"

// containerRecord is one container the runtime has for a container of the
// Pod: one attempt at running it.
type containerRecord struct {
	id        string
	attempt   int    // 0 for the first container of its name, +1 for each restart
	logPath   string // CRI-format log file
	image     string // normalised image name: docker.io/library/httpd:latest
	imageID   string // docker.io/library/httpd@sha256:...
	sandboxID string // the pod network it was made for
	status    runtime.ContainerStatus
	// startError is why the runtime could not start it; such an attempt
	// counts as exited with 128, as the kubelet's StartError.
	startError string
}

// containerView is what the status of one of the Pod's containers is
// computed from.
type containerView struct {
	spec     *api.Container
	current  *containerRecord // the latest attempt; nil before the first
	previous *containerRecord // the one before it, for lastState
	// waiting says why no container runs now (ErrImagePull,
	// CrashLoopBackOff, ...); nil when nothing is wrong.
	waiting *api.ContainerStateWaiting
	started bool // its startup probe has passed, or it has none
	ready   bool // running, started, and its readiness probe passes
}

// statusInput is everything a Pod's status is computed from.
type statusInput struct {
	pod            *api.Pod // its spec, and the status last reported (for times that carry over)
	hostIP         string
	podIP          string
	initContainers []containerView // in the order of spec.initContainers
	containers     []containerView // in the order of spec.containers
	now            time.Time
}

// computeStatus is the Pod's status as the agent reports it. It is a pure
// function of its input: the pod worker gathers the facts, this decides
// what they mean.
func computeStatus(in statusInput) api.PodStatus {
	old := in.pod.Status
	status := api.PodStatus{
		HostIP:   in.hostIP,
		PodIP:    in.podIP,
		QOSClass: qosClass(in.pod),
	}
	if in.podIP != "" {
		status.PodIPs = []api.PodIP{{IP: in.podIP}}
	}
	status.StartTime = old.StartTime
	if status.StartTime == nil {
		start := api.NewTime(in.now)
		status.StartTime = &start
	}
	var uninitialized []string
	for _, v := range in.initContainers {
		cs := containerStatus(v)
		// An init container is ready once it has completed.
		cs.Ready = cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0
		status.InitContainerStatuses = append(status.InitContainerStatuses, cs)
		if !cs.Ready {
			uninitialized = append(uninitialized, cs.Name)
		}
	}
	var unready []string
	for _, v := range in.containers {
		cs := containerStatus(v)
		status.ContainerStatuses = append(status.ContainerStatuses, cs)
		if !cs.Ready {
			unready = append(unready, cs.Name)
		}
	}
	status.Phase = podPhase(in.pod.Spec.RestartPolicy, status.InitContainerStatuses, status.ContainerStatuses)

	ready := api.PodCondition{Type: api.PodReady, Status: api.ConditionTrue}
	switch {
	case status.Phase == api.PodSucceeded || status.Phase == api.PodFailed:
		ready = api.PodCondition{Type: api.PodReady, Status: api.ConditionFalse, Reason: "PodCompleted"}
	case len(unready) > 0 || len(in.containers) == 0:
		ready = api.PodCondition{Type: api.PodReady, Status: api.ConditionFalse, Reason: "ContainersNotReady",
			Message: fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))}
	}
	containersReady := ready
	containersReady.Type = api.ContainersReady
	scheduled := api.PodCondition{Type: api.PodScheduled, Status: api.ConditionTrue}
	if c := findCondition(old.Conditions, api.PodScheduled); c != nil {
		scheduled = *c // the scheduler's, not ours
	}
	initialized := api.PodCondition{Type: api.PodInitialized, Status: api.ConditionTrue}
	if len(uninitialized) > 0 {
		initialized = api.PodCondition{Type: api.PodInitialized, Status: api.ConditionFalse, Reason: "ContainersNotInitialized",
			Message: fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(uninitialized, " "))}
	}
	for _, c := range []api.PodCondition{
		initialized,
		ready,
		containersReady,
		scheduled,
	} {
		status.Conditions = append(status.Conditions, withTransitionTime(c, old.Conditions, in.now))
	}
	return status
}

// containerStatus is one entry of status.containerStatuses.
func containerStatus(v containerView) api.ContainerStatus {
	cs := api.ContainerStatus{Name: v.spec.Name, Image: normalizedImage(v.spec.Image)}
	cur := v.current
	if cur != nil {
		cs.ContainerID = ContainerIDPrefix + cur.id
		cs.RestartCount = int32(cur.attempt)
		cs.Image, cs.ImageID = cur.image, cur.imageID
	}
	// The last termination: the current container's when it has exited
	// and waits to be restarted, else the previous one's.
	switch {
	case cur != nil && v.waiting != nil && exited(cur.status):
		cs.LastState.Terminated = terminatedState(cur)
	case v.previous != nil && exited(v.previous.status):
		cs.LastState.Terminated = terminatedState(v.previous)
	}
	switch {
	case v.waiting != nil:
		w := *v.waiting
		cs.State.Waiting = &w
	case cur == nil || cur.status.State == runtime.StateCreated:
		cs.State.Waiting = &api.ContainerStateWaiting{Reason: ReasonContainerCreating}
	case cur.status.State == runtime.StateRunning:
		cs.State.Running = &api.ContainerStateRunning{StartedAt: api.NewTime(cur.status.StartedAt)}
		cs.Ready = v.ready
	default:
		cs.State.Terminated = terminatedState(cur)
	}
	started := cs.State.Running != nil && v.started
	cs.Started = &started
	return cs
}

func exited(s runtime.ContainerStatus) bool {
	return s.State == runtime.StateExited || s.State == runtime.StateUnknown
}

func terminatedState(r *containerRecord) *api.ContainerStateTerminated {
	t := &api.ContainerStateTerminated{
		ExitCode:    int32(r.status.ExitCode),
		StartedAt:   api.NewTime(r.status.StartedAt),
		FinishedAt:  api.NewTime(r.status.FinishedAt),
		ContainerID: ContainerIDPrefix + r.id,
		Reason:      ReasonError,
	}
	switch {
	case r.startError != "":
		t.Reason, t.Message = ReasonStartError, r.startError
	case r.status.State == runtime.StateUnknown:
		t.Reason, t.ExitCode = ReasonStatusUnknown, 137
		t.Message = "the container's exit was never recorded"
	case r.status.ExitCode == 0:
		t.Reason = ReasonCompleted
	}
	return t
}

// podPhase is the kubelet's reading of the containers' states:
//
//	an init container failed, restartPolicy Never  Failed
//	init containers not all completed              Pending
//	some container never ran yet                   Pending
//	all ran, some running                          Running
//	all exited: restartPolicy Always               Running (they will be restarted)
//	            all exit codes 0                   Succeeded
//	            restartPolicy Never                Failed
//	            restartPolicy OnFailure            Running (the failed ones restart)
func podPhase(restartPolicy string, initStatuses, statuses []api.ContainerStatus) string {
	for _, s := range initStatuses {
		if t := s.State.Terminated; t != nil && t.ExitCode == 0 {
			continue
		}
		if t := s.State.Terminated; t != nil && restartPolicy == api.RestartNever {
			return api.PodFailed
		}
		return api.PodPending
	}
	var pending, running, stopped, succeeded int
	for _, s := range statuses {
		switch {
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil:
			stopped++
			if s.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case s.LastState.Terminated != nil: // waiting to be restarted
			stopped++
		default:
			pending++
		}
	}
	switch {
	case len(statuses) == 0 || pending > 0:
		return api.PodPending
	case running > 0:
		return api.PodRunning
	case restartPolicy == api.RestartAlways || restartPolicy == "":
		return api.PodRunning
	case succeeded == stopped:
		return api.PodSucceeded
	case restartPolicy == api.RestartNever:
		return api.PodFailed
	default:
		return api.PodRunning
	}
}

// shouldRestart says whether a container that exited with exitCode is run
// again under the Pod's restartPolicy.
func shouldRestart(restartPolicy string, exitCode int) bool {
	switch restartPolicy {
	case api.RestartNever:
		return false
	case api.RestartOnFailure:
		return exitCode != 0
	default:
		return true
	}
}

func findCondition(conditions []api.PodCondition, conditionType string) *api.PodCondition {
	for i := range conditions {
		if conditions[i].Type == conditionType {
			return &conditions[i]
		}
	}
	return nil
}

// withTransitionTime keeps a condition's lastTransitionTime while its
// status stays the same.
func withTransitionTime(c api.PodCondition, old []api.PodCondition, now time.Time) api.PodCondition {
	if prev := findCondition(old, c.Type); prev != nil && prev.Status == c.Status && !prev.LastTransitionTime.IsZero() {
		c.LastTransitionTime = prev.LastTransitionTime
		return c
	}
	if c.LastTransitionTime.IsZero() {
		c.LastTransitionTime = api.NewTime(now)
	}
	return c
}

// qosClass is the Pod's quality of service class: BestEffort without any
// request or limit, Guaranteed when every container's cpu and memory
// limits equal its requests, Burstable otherwise.
func qosClass(pod *api.Pod) string {
	constrained, guaranteed := false, true
	for _, c := range pod.Spec.Containers {
		for _, resource := range []string{"cpu", "memory"} {
			request, hasRequest := c.Resources.Requests[resource]
			limit, hasLimit := c.Resources.Limits[resource]
			if hasRequest || hasLimit {
				constrained = true
			}
			if !hasLimit || (hasRequest && request != limit) {
				guaranteed = false
			}
		}
	}
	switch {
	case !constrained:
		return "BestEffort"
	case guaranteed:
		return "Guaranteed"
	default:
		return "Burstable"
	}
}

// normalizedImage is the image's full name, or the name as written when it
// does not parse (the runtime reports that error).
func normalizedImage(ref string) string {
	if name, err := runtime.NormalizeImage(ref); err == nil {
		return name
	}
	return ref
}

// imageID is the status' imageID: the repository with the digest,
// docker.io/library/httpd@sha256:....
func imageID(img runtime.Image) string {
	if img.Digest == "" {
		return ""
	}
	repo := img.Name
	if i := strings.LastIndexAny(repo, ":@"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return repo + "@" + img.Digest
}
