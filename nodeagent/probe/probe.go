// Package probe runs a container's liveness, readiness and startup probes
// the way the kubelet does.
//
// A probe has three parts, kept apart so that each can be tested alone:
//
//   - a Checker performs one check (an HTTP GET, a TCP connect, a command
//     run in the container) and says whether it passed;
//   - a Tracker turns single outcomes into the probe's result, honouring
//     successThreshold and failureThreshold;
//   - a Worker runs the checks on the probe's schedule (initialDelaySeconds,
//     periodSeconds, timeoutSeconds) and reports each result change.
//
// What a result means is the caller's business: the pod worker marks a
// container ready after its readiness probe succeeds, restarts it when its
// liveness probe fails, and holds both back until its startup probe has
// succeeded.
package probe

import (
	"time"

	"kubelite/api"
)

// Kind says which of a container's probes this is.
type Kind string

// The three probes of a container.
const (
	Liveness  Kind = "Liveness"
	Readiness Kind = "Readiness"
	Startup   Kind = "Startup"
)

// Result is the outcome of one check, or the standing result of a probe.
type Result int

// Results. Unknown is the standing result of a probe that has not decided
// yet (a startup probe before its first success, for example).
const (
	Unknown Result = iota
	Success
	Failure
)

func (r Result) String() string {
	switch r {
	case Success:
		return "Success"
	case Failure:
		return "Failure"
	default:
		return "Unknown"
	}
}

// Timing is a probe's schedule and thresholds, with the kubelet's defaults
// filled in for fields left at zero.
type Timing struct {
	InitialDelay     time.Duration // before the first check, counted from the container's start
	Period           time.Duration // between checks
	Timeout          time.Duration // for one check
	SuccessThreshold int           // consecutive successes that make the result Success
	FailureThreshold int           // consecutive failures that make the result Failure
}

// Kubelet defaults for a probe's timing fields.
const (
	DefaultPeriod           = 10 * time.Second
	DefaultTimeout          = time.Second
	DefaultSuccessThreshold = 1
	DefaultFailureThreshold = 3
)

// TimingOf reads a probe's timing fields. Liveness and startup probes
// always use a success threshold of 1, as the API requires.
func TimingOf(kind Kind, p *api.Probe) Timing {
	t := Timing{
		InitialDelay:     time.Duration(p.InitialDelaySeconds) * time.Second,
		Period:           time.Duration(p.PeriodSeconds) * time.Second,
		Timeout:          time.Duration(p.TimeoutSeconds) * time.Second,
		SuccessThreshold: int(p.SuccessThreshold),
		FailureThreshold: int(p.FailureThreshold),
	}
	if t.Period <= 0 {
		t.Period = DefaultPeriod
	}
	if t.Timeout <= 0 {
		t.Timeout = DefaultTimeout
	}
	if t.SuccessThreshold <= 0 || kind != Readiness {
		t.SuccessThreshold = DefaultSuccessThreshold
	}
	if t.FailureThreshold <= 0 {
		t.FailureThreshold = DefaultFailureThreshold
	}
	return t
}

// InitialResult is what a probe reports before it has decided anything: a
// container is not ready until its readiness probe passes, is alive until
// its liveness probe fails, and has not started until its startup probe
// passes.
func InitialResult(kind Kind) Result {
	switch kind {
	case Liveness:
		return Success
	case Readiness:
		return Failure
	default:
		return Unknown
	}
}

// Tracker turns the outcomes of single checks into a probe's standing
// result: it changes to Success after SuccessThreshold successes in a row,
// and to Failure after FailureThreshold failures in a row. It is not safe
// for concurrent use; each Worker has its own.
type Tracker struct {
	timing    Timing
	result    Result
	successes int // consecutive successes so far
	failures  int // consecutive failures so far
}

// NewTracker starts a tracker at kind's initial result.
func NewTracker(kind Kind, timing Timing) *Tracker {
	return &Tracker{timing: timing, result: InitialResult(kind)}
}

// Result is the probe's standing result.
func (t *Tracker) Result() Result { return t.result }

// Observe records one check's outcome and reports whether the standing
// result changed. An Unknown outcome (the check could not run) counts as a
// failure, as the kubelet counts errors.
func (t *Tracker) Observe(outcome Result) (changed bool) {
	if outcome == Success {
		t.successes++
		t.failures = 0
	} else {
		t.failures++
		t.successes = 0
	}
	next := t.result
	switch {
	case t.successes >= t.timing.SuccessThreshold:
		next = Success
	case t.failures >= t.timing.FailureThreshold:
		next = Failure
	}
	if next == t.result {
		return false
	}
	t.result = next
	return true
}
