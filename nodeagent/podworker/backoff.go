package podworker

import (
	"time"
)

// BackOff is the kubelet's per-key back-off, used for restarting crashed
// containers (CrashLoopBackOff) and for pulling images that failed
// (ImagePullBackOff). The delay starts at Initial and doubles with each
// retry up to Max; a key left alone for twice Max starts over.
//
// For restarts the kubelet asks "is this key still backing off, counted
// from the container's exit?" before it restarts, and records the restart
// with Next, so a container's first restart is immediate and the ones
// after it wait 10 s, 20 s, 40 s ... 5 min after each exit.
//
// A BackOff is owned by one pod worker and is not safe for concurrent use.
type BackOff struct {
	Initial, Max time.Duration

	entries map[string]backOffEntry
}

type backOffEntry struct {
	delay      time.Duration
	lastUpdate time.Time
}

// NewBackOff returns a back-off from initial doubling up to max.
func NewBackOff(initial, max time.Duration) *BackOff {
	return &BackOff{Initial: initial, Max: max, entries: map[string]backOffEntry{}}
}

// Next records a retry of key at eventTime and lengthens its delay.
func (b *BackOff) Next(key string, eventTime time.Time) {
	entry, ok := b.entries[key]
	if !ok || b.expired(entry, eventTime) {
		entry.delay = b.Initial
	} else {
		entry.delay = min(2*entry.delay, b.Max)
	}
	entry.lastUpdate = eventTime
	b.entries[key] = entry
}

// Delay is key's current delay (0 when it has none).
func (b *BackOff) Delay(key string) time.Duration {
	return b.entries[key].delay
}

// InBackOffSince reports whether key must still wait at now after an event
// at eventTime (a container's exit), and until when.
func (b *BackOff) InBackOffSince(key string, eventTime, now time.Time) (bool, time.Time) {
	entry, ok := b.entries[key]
	if !ok || b.expired(entry, now) {
		return false, time.Time{}
	}
	until := eventTime.Add(entry.delay)
	return now.Before(until), until
}

// InBackOffSinceUpdate reports whether key must still wait at now, counted
// from its last Next (the last failed pull), and until when.
func (b *BackOff) InBackOffSinceUpdate(key string, now time.Time) (bool, time.Time) {
	entry, ok := b.entries[key]
	if !ok || b.expired(entry, now) {
		return false, time.Time{}
	}
	until := entry.lastUpdate.Add(entry.delay)
	return now.Before(until), until
}

// Reset forgets key: its next delay is Initial again.
func (b *BackOff) Reset(key string) { delete(b.entries, key) }

// expired: a key untouched for twice the maximum delay starts over.
func (b *BackOff) expired(entry backOffEntry, now time.Time) bool {
	return now.Sub(entry.lastUpdate) > 2*b.Max
}
