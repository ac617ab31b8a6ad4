package deployment

import (
	"sync"
	"time"

	"kubelite/api"
)

// writeTimeout bounds how long a sync waits for the cache to show one of
// the controller's own ReplicaSet writes before it assumes the event was
// lost and acts on what it has.
const writeTimeout = time.Minute

// writeTracker remembers, per Deployment, the generation of each
// ReplicaSet the controller last wrote, until the ReplicaSet cache shows
// it. A sync acting on an older cached copy would misjudge the rollout:
// take a just-scaled ReplicaSet for its old size, or not see a just-created
// one. It plays the part of the ReplicaSet controller's expectations. It is
// safe for concurrent use.
type writeTracker struct {
	now func() time.Time

	mu      sync.Mutex
	pending map[string]map[string]pendingWrite // Deployment key -> ReplicaSet name -> write
}

type pendingWrite struct {
	generation int64
	at         time.Time
}

func newWriteTracker(now func() time.Time) *writeTracker {
	return &writeTracker{now: now, pending: make(map[string]map[string]pendingWrite)}
}

// record notes a write of ReplicaSet rsName at generation, for Deployment key.
func (w *writeTracker) record(key, rsName string, generation int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending[key] == nil {
		w.pending[key] = make(map[string]pendingWrite)
	}
	w.pending[key][rsName] = pendingWrite{generation: generation, at: w.now()}
}

// caughtUp reports whether the cache shows every write recorded for
// Deployment key; cachedGeneration looks a ReplicaSet up in the cache.
// Writes the cache shows, or that are too old to wait for, are forgotten.
func (w *writeTracker) caughtUp(key string, cachedGeneration func(rsName string) (int64, bool)) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, write := range w.pending[key] {
		generation, ok := cachedGeneration(name)
		if ok && generation >= write.generation || w.now().Sub(write.at) > writeTimeout {
			delete(w.pending[key], name)
		}
	}
	if len(w.pending[key]) == 0 {
		delete(w.pending, key)
		return true
	}
	return false
}

// forgetReplicaSet drops the writes of a deleted ReplicaSet.
func (w *writeTracker) forgetReplicaSet(key, rsName string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.pending[key], rsName)
}

// forget drops the writes for a deleted Deployment.
func (w *writeTracker) forget(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.pending, key)
}

// ownWrites keeps the last version of each Deployment this controller
// wrote until the Deployment cache shows it. The Deployment's own watch
// often delivers a write after the ReplicaSet events it caused; a sync
// started by those would read the older copy, and its status update would
// fail with a conflict. The versions a write replaced are known, so a
// cached copy at one of them is certainly older than the one written; any
// other version is the cache's news. It is safe for concurrent use.
type ownWrites struct {
	mu    sync.Mutex
	byKey map[string]*ownWrite
}

type ownWrite struct {
	latest   *api.Deployment
	replaced map[string]bool // resourceVersions older than latest
}

func newOwnWrites() *ownWrites {
	return &ownWrites{byKey: make(map[string]*ownWrite)}
}

// record notes that a write replaced resourceVersion before with written.
func (w *ownWrites) record(key, before string, written *api.Deployment) {
	w.mu.Lock()
	defer w.mu.Unlock()
	write, ok := w.byKey[key]
	if !ok {
		write = &ownWrite{replaced: make(map[string]bool)}
		w.byKey[key] = write
	}
	write.replaced[before] = true
	write.latest = written
}

// freshest returns a copy of the newer of cached and the last write.
func (w *ownWrites) freshest(key string, cached *api.Deployment) *api.Deployment {
	w.mu.Lock()
	defer w.mu.Unlock()
	if write, ok := w.byKey[key]; ok {
		if write.replaced[cached.ResourceVersion] {
			return api.DeepCopy(write.latest)
		}
		delete(w.byKey, key) // the cache has caught up, or moved past
	}
	return api.DeepCopy(cached)
}

// forget drops what is kept for a deleted Deployment.
func (w *ownWrites) forget(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.byKey, key)
}
