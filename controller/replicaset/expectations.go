package replicaset

import (
	"sync"
	"time"
)

// expectationsTimeout is how long a ReplicaSet waits for the cache to
// confirm its own creates and deletes before it assumes a watch event was
// lost and looks at the cache again, as Kubernetes' ExpectationsTimeout.
const expectationsTimeout = 5 * time.Minute

// expectations remember, per ReplicaSet key, the Pod creates and deletes a
// sync asked for and the Pod cache has not shown yet (client-go's
// UIDTrackingControllerExpectations). Until they are seen the ReplicaSet's
// view of its Pods is stale, and acting on it would create or delete too
// many: a sync only manages replicas once its expectations are satisfied.
// It is safe for concurrent use.
type expectations struct {
	now func() time.Time

	mu    sync.Mutex
	byKey map[string]*expectation
}

// expectation is what one ReplicaSet still waits for.
type expectation struct {
	creates int                 // creates not yet seen in the cache
	deletes map[string]struct{} // keys of Pods whose deletion is not yet seen
	setAt   time.Time
}

func newExpectations(now func() time.Time) *expectations {
	return &expectations{now: now, byKey: make(map[string]*expectation)}
}

// satisfied reports whether the ReplicaSet key may act on the cache: it
// expects nothing, everything it expected has been seen, or it waited too long.
func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	exp, ok := e.byKey[key]
	if !ok {
		return true
	}
	if exp.creates <= 0 && len(exp.deletes) == 0 {
		return true
	}
	return e.now().Sub(exp.setAt) > expectationsTimeout
}

// expectCreations records that key is about to create n Pods.
func (e *expectations) expectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.byKey[key] = &expectation{creates: n, deletes: map[string]struct{}{}, setAt: e.now()}
}

// expectDeletions records that key is about to delete the given Pods.
func (e *expectations) expectDeletions(key string, podKeys []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	deletes := make(map[string]struct{}, len(podKeys))
	for _, k := range podKeys {
		deletes[k] = struct{}{}
	}
	e.byKey[key] = &expectation{deletes: deletes, setAt: e.now()}
}

// creationObserved records that one of key's creates showed up (or failed
// and will never show up).
func (e *expectations) creationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if exp, ok := e.byKey[key]; ok && exp.creates > 0 {
		exp.creates--
	}
}

// deletionObserved records that the Pod podKey, deleted by key, is gone or
// terminating (or that its delete failed and it will not go).
func (e *expectations) deletionObserved(key, podKey string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if exp, ok := e.byKey[key]; ok {
		delete(exp.deletes, podKey)
	}
}

// forget drops what key expected, when the ReplicaSet is deleted.
func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.byKey, key)
}
