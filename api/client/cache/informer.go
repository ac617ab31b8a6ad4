// Package cache is the shared list+watch cache (an "informer"): it lists a
// resource, then watches from the list's resourceVersion, keeps an
// in-memory copy, and tells handlers what changed. On a broken watch it
// resumes from the last seen resourceVersion; on 410 Gone it re-lists.
// Objects handed out are shared: never mutate them (api.DeepCopy first).
package cache

import (
	"context"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"kubelite/api"
	"kubelite/api/client"
)

// Handler is told about changes. Controllers only enqueue keys here and do
// their work elsewhere (level-triggered). Any func may be nil.
type Handler[PT any] struct {
	OnAdd    func(obj PT)
	OnUpdate func(oldObj, newObj PT)
	OnDelete func(obj PT)
}

// OnChange is the handler of a controller that only needs to know which
// object changed, however (added, updated or deleted): f gets the object.
func OnChange[PT any](f func(obj PT)) Handler[PT] {
	return Handler[PT]{OnAdd: f, OnUpdate: func(_, obj PT) { f(obj) }, OnDelete: f}
}

// Option tunes an Informer.
type Option func(*settings)

type settings struct {
	logger         *slog.Logger
	initialBackoff time.Duration
	maxBackoff     time.Duration
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(logger *slog.Logger) Option {
	return func(s *settings) { s.logger = logger }
}

// WithBackoff sets the retry delay after a failed list or watch: it starts
// at initial, doubles on each further failure up to max, and starts over
// after a success. Defaults: 250ms and 30s.
func WithBackoff(initial, max time.Duration) Option {
	return func(s *settings) { s.initialBackoff, s.maxBackoff = initial, max }
}

// healthyWatchDuration is how long a watch that delivered nothing must have
// lasted to count as a success: a server that ends every watch at once must
// not be hammered with new ones.
const healthyWatchDuration = time.Second

// Informer caches one resource.
//
// Run owns a single goroutine that lists, watches, updates the store and
// calls the handlers, in that order, so handlers see changes one at a time
// and the store already holds the new state when they are called.
type Informer[T any, PT client.ObjectPtr[T]] struct {
	source   *client.Typed[T, PT]
	opts     client.ListOptions
	resync   time.Duration
	settings settings
	logger   *slog.Logger

	mu      sync.RWMutex
	objects map[string]PT // by Key

	handlersMu sync.Mutex
	handlers   []Handler[PT]

	synced  chan struct{} // closed once the first list has been delivered
	running atomic.Bool

	// lastResourceVersion is where a watch resumes; only Run's goroutine uses it.
	lastResourceVersion string
}

// NewInformer caches the objects that lw lists and watches (typically a
// *client.Typed for all namespaces). resync > 0 re-delivers every cached
// object as an update at that period. opts.ResourceVersion is ignored:
// lists are consistent reads and watches resume where the cache is.
func NewInformer[T any, PT client.ObjectPtr[T]](lw *client.Typed[T, PT], opts client.ListOptions, resync time.Duration, options ...Option) *Informer[T, PT] {
	s := settings{logger: slog.Default(), initialBackoff: 250 * time.Millisecond, maxBackoff: 30 * time.Second}
	for _, o := range options {
		o(&s)
	}
	opts.ResourceVersion = ""
	return &Informer[T, PT]{
		source:   lw,
		opts:     opts,
		resync:   resync,
		settings: s,
		logger:   s.logger.With("resource", lw.Resource().GroupResource(), "namespace", lw.Namespace()),
		objects:  make(map[string]PT),
		synced:   make(chan struct{}),
	}
}

// AddHandler registers h; call before Run. A handler added later only
// hears about later changes.
func (i *Informer[T, PT]) AddHandler(h Handler[PT]) {
	i.handlersMu.Lock()
	defer i.handlersMu.Unlock()
	i.handlers = append(i.handlers, h)
}

// Run lists and watches until ctx ends. When it returns, every goroutine it
// started has ended. It panics if called twice.
func (i *Informer[T, PT]) Run(ctx context.Context) {
	if !i.running.CompareAndSwap(false, true) {
		panic("cache: Informer.Run called twice")
	}
	var resyncC <-chan time.Time
	if i.resync > 0 {
		ticker := time.NewTicker(i.resync)
		defer ticker.Stop()
		resyncC = ticker.C
	}
	retry := backoff{initial: i.settings.initialBackoff, max: i.settings.maxBackoff}
	needList := true
	for ctx.Err() == nil {
		if needList {
			if err := i.relist(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				delay := retry.next()
				i.logger.Warn("list failed; retrying", "err", err, "retryIn", delay)
				if !sleep(ctx, delay) {
					return
				}
				continue
			}
			needList = false
			retry.reset()
		}

		healthy, err := i.watch(ctx, resyncC)
		switch {
		case ctx.Err() != nil:
			return
		case api.IsGone(err):
			// History we have not seen is gone: only a new list can tell
			// what changed meanwhile. It happens at once; a failing list backs off.
			i.logger.Info("watch expired; re-listing", "resourceVersion", i.lastResourceVersion, "err", err)
			needList = true
			continue
		}
		if healthy {
			retry.reset()
			if err == nil {
				continue // the server ended a watch in good order (timeoutSeconds)
			}
		}
		delay := retry.next()
		i.logger.Warn("watch ended; resuming", "resourceVersion", i.lastResourceVersion, "err", err, "retryIn", delay)
		if !sleep(ctx, delay) {
			return
		}
	}
}

// relist lists every object, replaces the store and tells the handlers the
// difference from what was cached before: adds, updates, and deletes of
// objects no longer present.
func (i *Informer[T, PT]) relist(ctx context.Context) error {
	list, err := i.source.List(ctx, i.opts)
	if err != nil {
		return err
	}
	fresh := make(map[string]PT, len(list.Items))
	for idx := range list.Items {
		obj := PT(&list.Items[idx])
		fresh[Key(obj)] = obj
	}
	i.mu.Lock()
	previous := i.objects
	i.objects = fresh
	i.mu.Unlock()
	i.lastResourceVersion = list.ResourceVersion

	for idx := range list.Items {
		obj := PT(&list.Items[idx])
		old, existed := previous[Key(obj)]
		switch {
		case !existed:
			i.notifyAdd(obj)
		case resourceVersion(old) != resourceVersion(obj):
			i.notifyUpdate(old, obj)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(previous)) {
		if _, present := fresh[key]; !present {
			i.notifyDelete(previous[key])
		}
	}
	i.markSynced()
	i.logger.Debug("listed", "objects", len(fresh), "resourceVersion", list.ResourceVersion)
	return nil
}

// watch follows changes from lastResourceVersion until the stream ends. It
// reports whether the watch was healthy (delivered events or lasted a
// while) and why it ended: nil for an orderly end, the ERROR event's
// Status, the read error of a broken stream, or ctx's error.
func (i *Informer[T, PT]) watch(ctx context.Context, resyncC <-chan time.Time) (healthy bool, err error) {
	watchCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := i.opts
	opts.ResourceVersion = i.lastResourceVersion
	if opts.TimeoutSeconds == nil {
		// Like client-go, ask the server to end the watch after 5–10
		// minutes, so that long-lived watches spread over servers.
		opts.TimeoutSeconds = api.Ptr(int64(300 + rand.IntN(300)))
	}
	started := time.Now()
	events, err := i.source.Watch(watchCtx, opts)
	if err != nil {
		return false, err
	}
	delivered, err := i.follow(ctx, events, resyncC)
	cancel()
	for range events { // wait for the stream's goroutines to end
	}
	return delivered > 0 || time.Since(started) >= healthyWatchDuration, err
}

// follow applies events until the stream ends, resyncing on the way; it
// returns how many events it applied and why the stream ended.
func (i *Informer[T, PT]) follow(ctx context.Context, events <-chan client.Event[PT], resyncC <-chan time.Time) (delivered int, err error) {
	for {
		select {
		case <-ctx.Done():
			return delivered, ctx.Err()
		case <-resyncC:
			i.resyncAll()
		case event, ok := <-events:
			if !ok {
				return delivered, nil
			}
			if event.Type == api.Error {
				return delivered, event.Err
			}
			i.apply(event)
			delivered++
		}
	}
}

// apply records one watch event in the store and tells the handlers.
func (i *Informer[T, PT]) apply(event client.Event[PT]) {
	obj := event.Object
	if rv := resourceVersion(obj); rv != "" {
		i.lastResourceVersion = rv
	}
	if event.Type == api.Bookmark {
		return // only moves the resume point
	}
	key := Key(obj)
	if obj.GetObjectMeta().Name == "" {
		i.logger.Warn("ignoring watch event for an object without a name", "type", event.Type)
		return
	}
	switch event.Type {
	case api.Added, api.Modified:
		i.mu.Lock()
		old, existed := i.objects[key]
		if existed && resourceVersion(old) == resourceVersion(obj) {
			i.mu.Unlock()
			return // a replay of the state we hold
		}
		i.objects[key] = obj
		i.mu.Unlock()
		if existed {
			i.notifyUpdate(old, obj)
		} else {
			i.notifyAdd(obj)
		}
	case api.Deleted:
		i.mu.Lock()
		_, existed := i.objects[key]
		delete(i.objects, key)
		i.mu.Unlock()
		if existed {
			i.notifyDelete(obj)
		}
	default:
		i.logger.Warn("ignoring watch event of unknown type", "type", event.Type, "key", key)
	}
}

// resyncAll re-delivers every cached object as an update, so controllers
// periodically reconcile everything even if they missed a change.
func (i *Informer[T, PT]) resyncAll() {
	for _, obj := range i.List("") {
		i.notifyUpdate(obj, obj)
	}
}

func (i *Informer[T, PT]) currentHandlers() []Handler[PT] {
	i.handlersMu.Lock()
	defer i.handlersMu.Unlock()
	return slices.Clone(i.handlers)
}

func (i *Informer[T, PT]) notifyAdd(obj PT) {
	for _, h := range i.currentHandlers() {
		if h.OnAdd != nil {
			h.OnAdd(obj)
		}
	}
}

func (i *Informer[T, PT]) notifyUpdate(oldObj, newObj PT) {
	for _, h := range i.currentHandlers() {
		if h.OnUpdate != nil {
			h.OnUpdate(oldObj, newObj)
		}
	}
}

func (i *Informer[T, PT]) notifyDelete(obj PT) {
	for _, h := range i.currentHandlers() {
		if h.OnDelete != nil {
			h.OnDelete(obj)
		}
	}
}

func (i *Informer[T, PT]) markSynced() {
	select {
	case <-i.synced:
	default:
		close(i.synced)
	}
}

// HasSynced reports whether the first list has been loaded (and delivered
// to the handlers).
func (i *Informer[T, PT]) HasSynced() bool {
	select {
	case <-i.synced:
		return true
	default:
		return false
	}
}

// WaitForSync blocks until synced or ctx ends; it reports whether it synced.
func (i *Informer[T, PT]) WaitForSync(ctx context.Context) bool {
	select {
	case <-i.synced:
		return true
	case <-ctx.Done():
		return false
	}
}

// Get returns a cached object by namespace and name.
func (i *Informer[T, PT]) Get(ns, name string) (PT, bool) {
	return i.GetByKey(joinKey(ns, name))
}

// GetByKey returns a cached object by its Key, as a work queue hands it out.
func (i *Informer[T, PT]) GetByKey(key string) (PT, bool) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	obj, ok := i.objects[key]
	return obj, ok
}

// List returns every cached object (ns == "" for all namespaces), in no
// particular order.
func (i *Informer[T, PT]) List(ns string) []PT {
	return i.ListSelector(ns, nil)
}

// ListSelector returns the cached objects in ns ("" = all) for which match
// returns true (nil matches everything). match runs under the store's read
// lock: keep it quick and do not call back into the informer.
func (i *Informer[T, PT]) ListSelector(ns string, match func(PT) bool) []PT {
	i.mu.RLock()
	defer i.mu.RUnlock()
	var out []PT
	for _, obj := range i.objects {
		if ns != "" && obj.GetObjectMeta().Namespace != ns {
			continue
		}
		if match == nil || match(obj) {
			out = append(out, obj)
		}
	}
	return out
}

// Len is the number of cached objects.
func (i *Informer[T, PT]) Len() int {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return len(i.objects)
}

func resourceVersion(obj api.Object) string { return obj.GetObjectMeta().ResourceVersion }

// sleep waits for d or until ctx ends; it reports whether the full time passed.
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
