package cache

import (
	"math/rand/v2"
	"time"
)

// backoff yields exponentially growing, capped, jittered retry delays.
// It is not safe for concurrent use; the informer's Run goroutine owns it.
type backoff struct {
	initial, max time.Duration
	current      time.Duration // the next delay before jitter; 0 = initial
}

// next returns the delay before the next attempt and doubles the one after.
// Jitter takes up to a quarter off, so that many clients that failed
// together do not retry in lockstep, and the cap is never exceeded.
func (b *backoff) next() time.Duration {
	if b.current == 0 {
		b.current = b.initial
	}
	delay := min(b.current, b.max)
	b.current = min(2*b.current, b.max)
	if quarter := int64(delay / 4); quarter > 0 {
		delay -= time.Duration(rand.Int64N(quarter + 1))
	}
	return delay
}

// reset starts over from the initial delay after a success.
func (b *backoff) reset() { b.current = 0 }
