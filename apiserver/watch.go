package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"kubelite/api"
)

// watch streams changes as newline-delimited WatchEvents.
//
// resourceVersion "" or "0" means "the current state, then changes": the
// stream starts with an ADDED event per existing object, as Kubernetes does.
// Any other resourceVersion starts exactly after that revision, so a client
// that listed at N and watches from N misses nothing and sees nothing twice.
func (s *Server) watch(w http.ResponseWriter, r *http.Request, q *request) {
	pred, err := s.predicate(r, q)
	if err != nil {
		writeError(w, err)
		return
	}
	ctx := r.Context()
	if v := r.URL.Query().Get("timeoutSeconds"); v != "" {
		secs, err := strconv.Atoi(v)
		if err != nil || secs < 0 {
			writeError(w, api.NewBadRequest(fmt.Sprintf("timeoutSeconds must be a non-negative integer, not %q", v)))
			return
		}
		if secs > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(secs)*time.Second)
			defer cancel()
		}
	}
	store := s.store.For(q.res)
	var initial []api.Object
	var from int64
	switch rv := r.URL.Query().Get("resourceVersion"); rv {
	case "", "0":
		initial, from, err = store.List(ctx, q.namespace, pred)
		if err != nil {
			writeError(w, err)
			return
		}
	default:
		from, err = strconv.ParseInt(rv, 10, 64)
		if err != nil || from < 0 {
			writeError(w, api.NewBadRequest(fmt.Sprintf("resourceVersion must be an integer, not %q", rv)))
			return
		}
	}
	events, err := store.Watch(ctx, q.namespace, from, pred)

	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	send := func(typ api.EventType, obj any) bool {
		raw, err := json.Marshal(obj)
		if err != nil {
			return false
		}
		if err := enc.Encode(api.WatchEvent{Type: typ, Object: raw}); err != nil {
			return false // the client went away
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	if err != nil {
		// Kubernetes reports a too-old resourceVersion inside the stream: an
		// ERROR event whose object is a 410 Status.
		send(api.Error, statusOf(err))
		return
	}
	for _, obj := range initial {
		if !send(api.Added, obj) {
			return
		}
	}
	if flusher != nil {
		flusher.Flush()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Err != nil {
				send(api.Error, statusOf(ev.Err))
				return
			}
			if !send(ev.Type, ev.Object) {
				return
			}
		}
	}
}

func statusOf(err error) *api.Status {
	var st *api.Status
	if errors.As(err, &st) {
		return st
	}
	return api.NewInternalError(err)
}
