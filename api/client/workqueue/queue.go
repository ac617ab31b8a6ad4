// Package workqueue is the rate-limited work queue controllers feed from
// informer handlers and drain with workers, in the manner of client-go's:
//
//   - a key is queued at most once however often it is added;
//   - a key being processed is not handed to a second worker; adding it
//     meanwhile queues it again for when the first worker calls Done;
//   - a key that failed is re-added after a per-key exponential backoff
//     (AddRateLimited), which Forget resets once it succeeds.
//
// Keys are "namespace/name" strings (see cache.Key), never objects, so the
// worker always reads the current state from the cache.
package workqueue

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Default per-key backoff, as client-go's: 5ms doubling up to 1000s.
const (
	DefaultBaseDelay = 5 * time.Millisecond
	DefaultMaxDelay  = 1000 * time.Second
)

// Option tunes a Queue.
type Option func(*Queue)

// WithBackoff sets the per-key backoff of AddRateLimited: base doubling up to max.
func WithBackoff(base, max time.Duration) Option {
	return func(q *Queue) { q.limiter = NewExponentialBackoff(base, max) }
}

// WithLogger sets the logger Run reports failures to (default slog.Default()).
func WithLogger(logger *slog.Logger) Option {
	return func(q *Queue) { q.logger = logger }
}

// Queue is a deduplicating, rate-limited queue of keys. It is safe for
// concurrent use.
type Queue struct {
	limiter *ExponentialBackoff
	logger  *slog.Logger

	mu       sync.Mutex
	nonEmpty *sync.Cond // signalled when a key is queued or the queue shuts down

	queue      []string            // keys ready for a worker, in order
	dirty      map[string]struct{} // keys that need processing (queued, or re-added while processing)
	processing map[string]struct{} // keys handed out and not yet Done

	waiting  map[string]time.Time // AddAfter keys and when they become ready
	timer    *time.Timer          // fires at timerAt to promote waiting keys
	timerAt  time.Time
	shutDown bool
}

// New returns an empty queue.
func New(options ...Option) *Queue {
	q := &Queue{
		limiter:    NewExponentialBackoff(DefaultBaseDelay, DefaultMaxDelay),
		logger:     slog.Default(),
		dirty:      make(map[string]struct{}),
		processing: make(map[string]struct{}),
		waiting:    make(map[string]time.Time),
	}
	q.nonEmpty = sync.NewCond(&q.mu)
	for _, o := range options {
		o(q)
	}
	return q
}

// Add queues key unless it is already queued. A key being processed is
// queued again once its worker calls Done. Adds after ShutDown are ignored.
func (q *Queue) Add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(key)
}

func (q *Queue) addLocked(key string) {
	if q.shutDown {
		return
	}
	if _, queued := q.dirty[key]; queued {
		return
	}
	q.dirty[key] = struct{}{}
	if _, busy := q.processing[key]; busy {
		return // Done re-queues it
	}
	q.queue = append(q.queue, key)
	q.nonEmpty.Signal()
}

// Get blocks until a key is ready and hands it out; the caller must call
// Done(key) when finished with it. shutdown is true once the queue has been
// shut down and every queued key has been handed out.
func (q *Queue) Get() (key string, shutdown bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.queue) == 0 && !q.shutDown {
		q.nonEmpty.Wait()
	}
	if len(q.queue) == 0 {
		return "", true
	}
	key = q.queue[0]
	q.queue[0] = "" // let the string be collected
	q.queue = q.queue[1:]
	q.processing[key] = struct{}{}
	delete(q.dirty, key)
	return key, false
}

// Done marks key as processed; if it was added meanwhile, it is queued again.
func (q *Queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, key)
	if _, readded := q.dirty[key]; readded {
		q.queue = append(q.queue, key)
		q.nonEmpty.Signal()
	}
}

// Len is the number of keys ready for a worker.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue)
}

// AddAfter adds key once delay has passed. If key is already waiting, the
// earlier of the two times wins.
func (q *Queue) AddAfter(key string, delay time.Duration) {
	if delay <= 0 {
		q.Add(key)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutDown {
		return
	}
	readyAt := time.Now().Add(delay)
	if at, waiting := q.waiting[key]; waiting && !readyAt.Before(at) {
		return
	}
	q.waiting[key] = readyAt
	if q.timer == nil || readyAt.Before(q.timerAt) {
		q.armTimerLocked(readyAt)
	}
}

// armTimerLocked makes the timer fire at readyAt. One timer serves every
// waiting key; it is re-armed for the earliest remaining one each time it fires.
func (q *Queue) armTimerLocked(readyAt time.Time) {
	q.timerAt = readyAt
	if q.timer == nil {
		q.timer = time.AfterFunc(time.Until(readyAt), q.promoteDue)
		return
	}
	q.timer.Reset(time.Until(readyAt))
}

// promoteDue queues the waiting keys whose time has come.
func (q *Queue) promoteDue() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutDown {
		return
	}
	now := time.Now()
	var earliest time.Time
	for key, readyAt := range q.waiting {
		if !readyAt.After(now) {
			delete(q.waiting, key)
			q.addLocked(key)
		} else if earliest.IsZero() || readyAt.Before(earliest) {
			earliest = readyAt
		}
	}
	if earliest.IsZero() {
		q.timer.Stop()
		q.timer = nil
		return
	}
	q.armTimerLocked(earliest)
}

// AddRateLimited adds key after its backoff: the more often it has been
// rate-limited since its last Forget, the longer the wait.
func (q *Queue) AddRateLimited(key string) {
	q.AddAfter(key, q.limiter.When(key))
}

// Forget resets key's backoff; call it when the key was processed successfully.
func (q *Queue) Forget(key string) { q.limiter.Forget(key) }

// NumRequeues is how often key has been rate-limited since its last Forget.
func (q *Queue) NumRequeues(key string) int { return q.limiter.NumRequeues(key) }

// ShutDown stops the queue: adds are ignored, waiting keys are dropped, and
// Get returns shutdown once the queued keys have been handed out.
func (q *Queue) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.shutDown = true
	if q.timer != nil {
		q.timer.Stop()
		q.timer = nil
	}
	clear(q.waiting)
	q.nonEmpty.Broadcast()
}

// ShuttingDown reports whether ShutDown has been called.
func (q *Queue) ShuttingDown() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.shutDown
}

// Run processes keys with the given number of workers until ctx ends, then
// shuts the queue down and waits for the workers to finish their current
// key. A key whose process call fails is retried with AddRateLimited; one
// that succeeds is forgotten.
func (q *Queue) Run(ctx context.Context, workers int, process func(ctx context.Context, key string) error) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for q.processNext(ctx, process) {
			}
		})
	}
	<-ctx.Done()
	q.ShutDown()
	wg.Wait()
}

// processNext handles one key; it reports whether the worker should go on.
func (q *Queue) processNext(ctx context.Context, process func(ctx context.Context, key string) error) bool {
	key, shutdown := q.Get()
	if shutdown {
		return false
	}
	defer q.Done(key)
	if ctx.Err() != nil {
		return false // shutting down: leave what is left
	}
	if err := process(ctx, key); err != nil {
		q.logger.Warn("processing failed; will retry", "key", key, "retries", q.NumRequeues(key), "err", err)
		q.AddRateLimited(key)
		return true
	}
	q.Forget(key)
	return true
}
