package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"kubelite/api"
	"kubelite/apiserver/storage"
)

// request is what the URL of a resource request names.
type request struct {
	res *api.Resource
	// apiVersion is the version in the path (may be a legacy one, e.g. apps/v1beta1).
	apiVersion string
	legacy     bool
	namespace  string
	name       string
	sub        string
}

// verb is the Kubernetes verb of the request, for authorization and logs.
func (q *request) verb(r *http.Request) string {
	switch r.Method {
	case http.MethodGet:
		if q.name == "" {
			if isWatch(r) {
				return "watch"
			}
			return "list"
		}
		return "get"
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		if q.name == "" {
			return "deletecollection"
		}
		return "delete"
	}
	return strings.ToLower(r.Method)
}

func isWatch(r *http.Request) bool {
	w := r.URL.Query().Get("watch")
	return w == "true" || w == "1"
}

func notFoundPath() error {
	return api.NewStatus(http.StatusNotFound, api.ReasonNotFound, "the server could not find the requested resource")
}

// parseRequest maps the path below /api/{version} or /apis/{group}/{version} to a resource request:
//
//	{resource}[/{name}[/{sub}]]                          cluster-scoped, or all namespaces
//	namespaces/{ns}/{resource}[/{name}[/{sub}]]          namespaced
func (s *Server) parseRequest(r *http.Request) (*request, error) {
	group, version := chi.URLParam(r, "group"), chi.URLParam(r, "version")
	rest := strings.Trim(chi.URLParam(r, "*"), "/")
	if rest == "" {
		return nil, notFoundPath()
	}
	segs := strings.Split(rest, "/")
	q := &request{apiVersion: api.GroupVersion(group, version)}
	lookup := func(plural string) bool {
		res, legacy, ok := s.scheme.ByGroupVersionResource(group, version, plural)
		if ok {
			q.res, q.legacy = res, legacy
		}
		return ok
	}
	if segs[0] == "namespaces" && len(segs) >= 3 && lookup(segs[2]) && q.res.Namespaced {
		q.namespace = segs[1]
		segs = segs[2:]
	} else if !lookup(segs[0]) {
		return nil, notFoundPath()
	}
	if len(segs) > 3 {
		return nil, notFoundPath()
	}
	if len(segs) >= 2 {
		q.name = segs[1]
	}
	if len(segs) == 3 {
		q.sub = segs[2]
		// Namespaces have a "finalize" subresource used by the namespace controller.
		if !q.res.HasSubresource(q.sub) && !(q.res.Kind == "Namespace" && q.sub == "finalize") {
			return nil, notFoundPath()
		}
	}
	if q.res.Namespaced && q.name != "" && q.namespace == "" {
		return nil, notFoundPath()
	}
	return q, nil
}

// serveResource dispatches every request on a resource path.
func (s *Server) serveResource(w http.ResponseWriter, r *http.Request) {
	q, err := s.parseRequest(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if s.cfg.Authorize != nil {
		resource := q.res.Plural
		if q.sub != "" {
			resource += "/" + q.sub
		}
		if err := s.cfg.Authorize(r, q.verb(r), resource, q.namespace); err != nil {
			writeError(w, err)
			return
		}
	}
	if q.sub != "" {
		s.serveSubresource(w, r, q)
		return
	}
	ctx := r.Context()
	switch {
	case r.Method == http.MethodGet && q.name == "" && isWatch(r):
		s.watch(w, r, q)
	case r.Method == http.MethodGet && q.name == "":
		s.list(w, r, q)
	case r.Method == http.MethodGet:
		obj, err := s.store.For(q.res).Get(ctx, q.namespace, q.name)
		s.respond(w, q, http.StatusOK, obj, err)
	case r.Method == http.MethodPost && q.name == "":
		s.create(w, r, q)
	case r.Method == http.MethodPut && q.name != "":
		s.update(w, r, q, false)
	case r.Method == http.MethodPatch && q.name != "":
		s.patch(w, r, q, false)
	case r.Method == http.MethodDelete && q.name != "":
		s.delete(w, r, q)
	case r.Method == http.MethodDelete:
		s.deleteCollection(w, r, q)
	default:
		writeError(w, api.NewStatus(http.StatusMethodNotAllowed, api.ReasonMethodNotAllowed,
			"the server does not allow this method on the requested resource"))
	}
}

// respond writes obj (or err) with the version warning of a legacy path.
func (s *Server) respond(w http.ResponseWriter, q *request, code int, obj api.Object, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, code, obj)
}

// readBody reads a request body within MaxBodyBytes.
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, api.NewBadRequest(fmt.Sprintf("reading request body: %v", err))
	}
	if len(body) > MaxBodyBytes {
		return nil, api.NewStatus(http.StatusRequestEntityTooLarge, api.ReasonRequestTooLarge,
			fmt.Sprintf("the request body is larger than the limit of %d bytes", MaxBodyBytes))
	}
	return body, nil
}

// decodeBody decodes the request body as q's kind, honouring ?fieldValidation=
// (Strict: unknown fields are errors; Warn, the default: warnings; Ignore).
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, q *request) (api.Object, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	var opts api.DecodeOptions
	switch v := r.URL.Query().Get("fieldValidation"); v {
	case "Strict":
		opts.Strict = true
	case "", "Warn":
		opts.Warn = true
	case "Ignore":
	default:
		return nil, api.NewBadRequest(fmt.Sprintf("fieldValidation must be one of Strict, Warn or Ignore, not %q", v))
	}
	obj, warnings, err := s.scheme.Decode(body, q.res, opts)
	for _, msg := range warnings {
		addWarning(w, msg)
	}
	if err != nil {
		var st *api.Status
		if errors.As(err, &st) {
			return nil, err
		}
		_, version := api.SplitAPIVersion(q.apiVersion)
		return nil, api.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v",
			q.res.Kind, version, q.res.Kind, err))
	}
	if q.legacy && len(warnings) == 0 {
		addWarning(w, fmt.Sprintf("%s %s is deprecated; use %s %s", q.apiVersion, q.res.Kind, q.res.APIVersion(), q.res.Kind))
	}
	return obj, nil
}

// checkNamespace makes sure the object's namespace agrees with the URL and exists.
func (s *Server) checkNamespace(ctx context.Context, q *request, meta *api.ObjectMeta, creating bool) error {
	if !q.res.Namespaced {
		meta.Namespace = ""
		return nil
	}
	if meta.Namespace == "" {
		meta.Namespace = q.namespace
	}
	if meta.Namespace != q.namespace {
		return api.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	nsRes, _ := s.scheme.ByName("namespaces")
	obj, err := s.store.For(nsRes).Get(ctx, "", meta.Namespace)
	if err != nil {
		return err
	}
	if ns := obj.(*api.Namespace); creating && ns.DeletionTimestamp != nil {
		return api.NewForbidden(q.res.Group, q.res.Plural, meta.Name,
			fmt.Sprintf("unable to create new content in namespace %s because it is being terminated", meta.Namespace))
	}
	return nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, q *request) {
	pred, err := s.predicate(r, q)
	if err != nil {
		writeError(w, err)
		return
	}
	items, rev, err := s.store.For(q.res).List(r.Context(), q.namespace, pred)
	if err != nil {
		writeError(w, err)
		return
	}
	raw := make([]json.RawMessage, 0, len(items))
	for _, it := range items {
		b, err := json.Marshal(it)
		if err != nil {
			writeError(w, err)
			return
		}
		raw = append(raw, b)
	}
	writeJSON(w, http.StatusOK, api.List[json.RawMessage]{
		TypeMeta: api.TypeMeta{APIVersion: q.res.APIVersion(), Kind: q.res.ListKind()},
		ListMeta: api.ListMeta{ResourceVersion: strconv.FormatInt(rev, 10)},
		Items:    raw,
	})
}

// predicate builds the storage filter from labelSelector and fieldSelector.
func (s *Server) predicate(r *http.Request, q *request) (storage.Predicate, error) {
	labelSel, err := api.ParseSelector(r.URL.Query().Get("labelSelector"))
	if err != nil {
		return nil, api.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
	}
	fieldSel, err := api.ParseFieldSelector(r.URL.Query().Get("fieldSelector"))
	if err != nil {
		return nil, api.NewBadRequest(fmt.Sprintf("invalid field selector: %v", err))
	}
	if err := api.ValidateFieldSelector(q.res.Kind, fieldSel); err != nil {
		return nil, api.NewBadRequest(err.Error())
	}
	if labelSel.Empty() && fieldSel.Empty() {
		return nil, nil
	}
	return func(obj api.Object) bool {
		return labelSel.Matches(obj.GetObjectMeta().Labels) && fieldSel.Matches(api.FieldsOf(obj))
	}, nil
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, q *request) {
	ctx := r.Context()
	obj, err := s.decodeBody(w, r, q)
	if err != nil {
		writeError(w, err)
		return
	}
	created, err := s.createObject(ctx, q, obj)
	s.respond(w, q, http.StatusCreated, created, err)
}

// createObject runs the create path: namespace check, defaults, strategy,
// validation, hooks, storage.
func (s *Server) createObject(ctx context.Context, q *request, obj api.Object) (api.Object, error) {
	meta := obj.GetObjectMeta()
	if err := s.checkNamespace(ctx, q, meta, true); err != nil {
		return nil, err
	}
	if meta.Name == "" && meta.GenerateName != "" {
		meta.Name = generateName(meta.GenerateName)
	}
	api.Default(obj)
	prepareForCreate(obj)
	rollback := func() {}
	if hook := s.cfg.Hooks[q.res.Plural]; hook != nil {
		rb, err := hook.BeforeCreate(ctx, obj)
		if err != nil {
			return nil, err
		}
		if rb != nil {
			rollback = rb
		}
	}
	if errs := api.Validate(obj); len(errs) > 0 {
		rollback()
		return nil, api.NewInvalid(q.res.Group, q.res.Kind, meta.Name, errs)
	}
	created, err := s.store.For(q.res).Create(ctx, obj)
	if err != nil {
		rollback()
		return nil, err
	}
	return created, nil
}

func (s *Server) update(w http.ResponseWriter, r *http.Request, q *request, status bool) {
	obj, err := s.decodeBody(w, r, q)
	if err != nil {
		writeError(w, err)
		return
	}
	updated, err := s.updateObject(r.Context(), q, obj, status)
	s.respond(w, q, http.StatusOK, updated, err)
}

// updateObject runs the update path. With status set it is the status
// subresource: only .status changes; otherwise .status is kept as stored.
func (s *Server) updateObject(ctx context.Context, q *request, obj api.Object, status bool) (api.Object, error) {
	meta := obj.GetObjectMeta()
	if meta.Name != "" && meta.Name != q.name {
		return nil, api.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", meta.Name, q.name))
	}
	meta.Name = q.name
	if err := s.checkNamespace(ctx, q, meta, false); err != nil {
		return nil, err
	}
	hook := s.cfg.Hooks[q.res.Plural]
	var old api.Object
	var rollback func()
	store := s.store.For(q.res)
	updated, err := store.Update(ctx, q.namespace, q.name, func(current api.Object) (api.Object, error) {
		if rollback != nil { // a retry after a concurrent write: undo the previous attempt's allocations
			rollback()
			rollback = nil
		}
		cur := current.GetObjectMeta()
		if meta.ResourceVersion != "" && meta.ResourceVersion != cur.ResourceVersion {
			return nil, api.NewConflict(q.res.Group, q.res.Plural, q.name,
				errors.New("the object has been modified; please apply your changes to the latest version and try again"))
		}
		next := api.DeepCopy(obj)
		if status {
			next = withStatusOf(api.DeepCopy(current), next)
		} else {
			// A client sending the whole object (kubectl apply) leaves out what
			// the server allocated; keep it, as Kubernetes does.
			if svc, ok := next.(*api.Service); ok {
				api.KeepServiceAllocations(svc, current.(*api.Service))
			}
			api.Default(next)
			prepareForUpdate(next, current)
		}
		if hook != nil && !status {
			rb, err := hook.BeforeUpdate(ctx, next, current)
			if err != nil {
				return nil, err
			}
			rollback = rb
		}
		if errs := api.ValidateUpdate(next, current); len(errs) > 0 {
			return nil, api.NewInvalid(q.res.Group, q.res.Kind, q.name, errs)
		}
		old = current
		return next, nil
	})
	if err != nil {
		if rollback != nil {
			rollback()
		}
		return nil, err
	}
	if hook != nil && !status && old != nil {
		hook.AfterUpdate(ctx, updated, old)
	}
	return s.finishIfFinalized(ctx, q, updated)
}

// finishIfFinalized deletes an object that is being deleted and has no
// finalizers left: the last finalizer's removal completes the delete.
func (s *Server) finishIfFinalized(ctx context.Context, q *request, obj api.Object) (api.Object, error) {
	meta := obj.GetObjectMeta()
	if meta.DeletionTimestamp == nil || len(meta.Finalizers) > 0 || !gracePeriodOver(obj) {
		return obj, nil
	}
	if ns, ok := obj.(*api.Namespace); ok && len(ns.Spec.Finalizers) > 0 {
		return obj, nil
	}
	deleted, err := s.store.For(q.res).Delete(ctx, meta.Namespace, meta.Name, meta.ResourceVersion)
	if api.IsNotFound(err) || api.IsConflict(err) {
		return obj, nil // someone else finished (or changed) it
	}
	if err != nil {
		return nil, err
	}
	if hook := s.cfg.Hooks[q.res.Plural]; hook != nil {
		hook.AfterDelete(ctx, deleted)
	}
	return deleted, nil
}

// gracePeriodOver reports whether a terminating object is waiting only for
// its finalizers, not for a graceful shutdown (Pods in grace are deleted by
// their node agent with gracePeriodSeconds=0).
func gracePeriodOver(obj api.Object) bool {
	g := obj.GetObjectMeta().DeletionGracePeriodSeconds
	return g == nil || *g == 0
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, q *request) {
	opts, err := deleteOptions(r)
	if err != nil {
		writeError(w, err)
		return
	}
	obj, err := s.deleteObject(r.Context(), q, q.namespace, q.name, opts)
	s.respond(w, q, http.StatusOK, obj, err)
}

func (s *Server) deleteCollection(w http.ResponseWriter, r *http.Request, q *request) {
	opts, err := deleteOptions(r)
	if err != nil {
		writeError(w, err)
		return
	}
	pred, err := s.predicate(r, q)
	if err != nil {
		writeError(w, err)
		return
	}
	items, _, err := s.store.For(q.res).List(r.Context(), q.namespace, pred)
	if err != nil {
		writeError(w, err)
		return
	}
	var deleted []json.RawMessage
	for _, it := range items {
		m := it.GetObjectMeta()
		obj, err := s.deleteObject(r.Context(), q, m.Namespace, m.Name, opts)
		if api.IsNotFound(err) {
			continue
		}
		if err != nil {
			writeError(w, err)
			return
		}
		b, _ := json.Marshal(obj)
		deleted = append(deleted, b)
	}
	writeJSON(w, http.StatusOK, api.List[json.RawMessage]{
		TypeMeta: api.TypeMeta{APIVersion: q.res.APIVersion(), Kind: q.res.ListKind()},
		Items:    deleted,
	})
}

// DeleteOptions is the body (or query) of a delete.
type DeleteOptions struct {
	api.TypeMeta       `json:",inline"`
	GracePeriodSeconds *int64 `json:"gracePeriodSeconds,omitempty"`
	PropagationPolicy  string `json:"propagationPolicy,omitempty"`
	OrphanDependents   *bool  `json:"orphanDependents,omitempty"`
	Preconditions      *struct {
		UID             *string `json:"uid,omitempty"`
		ResourceVersion *string `json:"resourceVersion,omitempty"`
	} `json:"preconditions,omitempty"`
	DryRun []string `json:"dryRun,omitempty"`
}

// Propagation policies for dependents of a deleted owner.
const (
	PropagationBackground = "Background"
	PropagationForeground = "Foreground"
	PropagationOrphan     = "Orphan"

	// FinalizerOrphan and FinalizerForeground are handled by the garbage collector.
	FinalizerOrphan     = "orphan"
	FinalizerForeground = "foregroundDeletion"
)

func deleteOptions(r *http.Request) (*DeleteOptions, error) {
	opts := &DeleteOptions{}
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, opts); err != nil {
			return nil, api.NewBadRequest(fmt.Sprintf("decoding DeleteOptions: %v", err))
		}
	}
	qv := r.URL.Query()
	if v := qv.Get("gracePeriodSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, api.NewBadRequest(fmt.Sprintf("gracePeriodSeconds must be an integer, not %q", v))
		}
		opts.GracePeriodSeconds = &n
	}
	if v := qv.Get("propagationPolicy"); v != "" {
		opts.PropagationPolicy = v
	}
	if opts.OrphanDependents != nil && *opts.OrphanDependents && opts.PropagationPolicy == "" {
		opts.PropagationPolicy = PropagationOrphan
	}
	switch opts.PropagationPolicy {
	case "", PropagationBackground, PropagationForeground, PropagationOrphan:
	default:
		return nil, api.NewBadRequest(fmt.Sprintf("propagationPolicy must be Background, Foreground or Orphan, not %q", opts.PropagationPolicy))
	}
	if opts.GracePeriodSeconds != nil && *opts.GracePeriodSeconds < 0 {
		zero := int64(0)
		opts.GracePeriodSeconds = &zero
	}
	return opts, nil
}

// deleteObject deletes one object as Kubernetes does: objects with
// finalizers (including the garbage collector's orphan/foreground ones) and
// running Pods (graceful termination) are only marked with a
// deletionTimestamp; everything else is removed from storage at once.
func (s *Server) deleteObject(ctx context.Context, q *request, ns, name string, opts *DeleteOptions) (api.Object, error) {
	if q.res.Kind == "Namespace" && isSystemNamespace(name) {
		return nil, api.NewForbidden("", "namespaces", name, "this namespace may not be deleted")
	}
	store := s.store.For(q.res)
	var preconditionRV string
	if opts.Preconditions != nil && opts.Preconditions.ResourceVersion != nil {
		preconditionRV = *opts.Preconditions.ResourceVersion
	}
	immediate := false
	marked, err := store.Update(ctx, ns, name, func(current api.Object) (api.Object, error) {
		meta := current.GetObjectMeta()
		if preconditionRV != "" && preconditionRV != meta.ResourceVersion {
			return nil, api.NewConflict(q.res.Group, q.res.Plural, name,
				fmt.Errorf("the ResourceVersion in the precondition (%s) does not match the ResourceVersion in record (%s). The object might have been modified", preconditionRV, meta.ResourceVersion))
		}
		if opts.Preconditions != nil && opts.Preconditions.UID != nil && *opts.Preconditions.UID != meta.UID {
			return nil, api.NewConflict(q.res.Group, q.res.Plural, name,
				fmt.Errorf("the UID in the precondition (%s) does not match the UID in record (%s). The object might have been deleted and then recreated", *opts.Preconditions.UID, meta.UID))
		}
		next := api.DeepCopy(current)
		immediate = !markForDeletion(next, opts)
		if immediate {
			return current, nil // unchanged: storage writes nothing
		}
		return next, nil
	})
	if err != nil {
		return nil, err
	}
	if !immediate {
		return s.finishIfFinalized(ctx, q, marked)
	}
	deleted, err := store.Delete(ctx, ns, name, marked.GetObjectMeta().ResourceVersion)
	if api.IsConflict(err) && preconditionRV == "" {
		// Changed between the read and the delete: run the decision again.
		return s.deleteObject(ctx, q, ns, name, opts)
	}
	if err != nil {
		return nil, err
	}
	if hook := s.cfg.Hooks[q.res.Plural]; hook != nil {
		hook.AfterDelete(ctx, deleted)
	}
	return deleted, nil
}

func isSystemNamespace(name string) bool {
	for _, ns := range api.SystemNamespaces() {
		if ns == name {
			return true
		}
	}
	return false
}
