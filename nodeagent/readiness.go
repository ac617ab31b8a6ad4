package nodeagent

import (
	"fmt"
	"strings"
	"sync"
)

// Parts of the node that are always there; components add their own.
const (
	partRuntime = "container runtime"
	partNetwork = "pod network"
)

// readiness tracks which parts of the node are up. The Node is Ready when
// all are; until then its Ready condition says which are not.
type readiness struct {
	mu      sync.Mutex
	order   []string          // parts in the order they were registered
	up      map[string]bool   // whether each part is up
	detail  map[string]string // why a part is not up, when known
	changed chan struct{}     // buffered(1): wakes the node status loop
	ready   chan struct{}     // closed the first time every part is up
	closed  bool
}

func newReadiness(parts ...string) *readiness {
	r := &readiness{
		up:      map[string]bool{},
		detail:  map[string]string{},
		changed: make(chan struct{}, 1),
		ready:   make(chan struct{}),
	}
	for _, p := range parts {
		r.order = append(r.order, p)
		r.up[p] = false
	}
	return r
}

// set records whether a part is up, and why not.
func (r *readiness) set(part string, up bool, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, known := r.up[part]; !known {
		r.order = append(r.order, part)
	}
	if r.up[part] == up && r.detail[part] == detail {
		return
	}
	r.up[part], r.detail[part] = up, detail
	select {
	case r.changed <- struct{}{}:
	default:
	}
	if !r.closed && len(r.notReadyLocked()) == 0 {
		r.closed = true
		close(r.ready)
	}
}

// notReady describes the parts that are not up: empty when the node is
// ready.
func (r *readiness) notReady() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.notReadyLocked()
}

func (r *readiness) notReadyLocked() []string {
	var out []string
	for _, p := range r.order {
		if r.up[p] {
			continue
		}
		if d := r.detail[p]; d != "" {
			out = append(out, fmt.Sprintf("%s (%s)", p, d))
		} else {
			out = append(out, p)
		}
	}
	return out
}

// message is the Ready condition's message while the node is not ready.
func notReadyMessage(parts []string) string {
	return "waiting for: " + strings.Join(parts, ", ")
}
