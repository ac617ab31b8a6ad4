package workqueue

import (
	"math"
	"sync"
	"time"
)

// ExponentialBackoff is a per-key failure backoff: base * 2^failures,
// capped at max. It is safe for concurrent use.
type ExponentialBackoff struct {
	base, max time.Duration

	mu       sync.Mutex
	failures map[string]int
}

// NewExponentialBackoff returns a backoff starting at base and capped at max.
func NewExponentialBackoff(base, max time.Duration) *ExponentialBackoff {
	return &ExponentialBackoff{base: base, max: max, failures: make(map[string]int)}
}

// When records one more failure of key and returns how long to wait before
// retrying it.
func (b *ExponentialBackoff) When(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	exp := b.failures[key]
	b.failures[key] = exp + 1
	// Computed in floating point: base << exp overflows long before the cap
	// stops mattering.
	delay := float64(b.base) * math.Pow(2, float64(exp))
	if delay >= float64(b.max) {
		return b.max
	}
	return time.Duration(delay)
}

// Forget clears key's failures.
func (b *ExponentialBackoff) Forget(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.failures, key)
}

// NumRequeues is the number of failures recorded for key.
func (b *ExponentialBackoff) NumRequeues(key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failures[key]
}
