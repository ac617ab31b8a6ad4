package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"

	"kubelite/api"
)

// serveSubresource handles {object}/{sub}: status, scale, binding,
// namespaces' finalize, and the streaming ones served by node agents
// (log, exec, attach) through Config.Proxies.
func (s *Server) serveSubresource(w http.ResponseWriter, r *http.Request, q *request) {
	ctx := r.Context()
	switch {
	case q.sub == "status" && r.Method == http.MethodGet:
		obj, err := s.store.For(q.res).Get(ctx, q.namespace, q.name)
		s.respond(w, q, http.StatusOK, obj, err)
	case q.sub == "status" && r.Method == http.MethodPut:
		s.update(w, r, q, true)
	case q.sub == "status" && r.Method == http.MethodPatch:
		s.patch(w, r, q, true)
	case q.sub == "finalize" && r.Method == http.MethodPut:
		s.finalizeNamespace(w, r, q)
	case q.sub == "scale":
		s.scale(w, r, q)
	case q.sub == "binding" && r.Method == http.MethodPost:
		s.bind(w, r, q)
	default:
		if h := s.cfg.Proxies[q.res.Plural+"/"+q.sub]; h != nil {
			h.ServeHTTP(w, r)
			return
		}
		writeError(w, api.NewStatus(http.StatusMethodNotAllowed, api.ReasonMethodNotAllowed,
			fmt.Sprintf("%s/%s does not support %s here", q.res.Plural, q.sub, r.Method)))
	}
}

// PodNamespaceAndName gives proxied subresource handlers the pod a request is about.
func PodNamespaceAndName(r *http.Request) (namespace, name string) {
	// /api/v1/namespaces/{ns}/pods/{name}/{sub}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) >= 7 {
		return parts[3], parts[5]
	}
	return "", ""
}

// finalizeNamespace replaces spec.finalizers (the namespace controller
// removes "kubernetes" once the namespace is empty), completing the delete.
func (s *Server) finalizeNamespace(w http.ResponseWriter, r *http.Request, q *request) {
	obj, err := s.decodeBody(w, r, q)
	if err != nil {
		writeError(w, err)
		return
	}
	finalizers := obj.(*api.Namespace).Spec.Finalizers
	updated, err := s.store.For(q.res).Update(r.Context(), "", q.name, func(current api.Object) (api.Object, error) {
		ns := api.DeepCopy(current.(*api.Namespace))
		ns.Spec.Finalizers = finalizers
		return ns, nil
	})
	if err == nil {
		updated, err = s.finishIfFinalized(r.Context(), q, updated)
	}
	s.respond(w, q, http.StatusOK, updated, err)
}

// bind assigns a Pod to a node, as the scheduler does through pods/{name}/binding.
func (s *Server) bind(w http.ResponseWriter, r *http.Request, q *request) {
	body, err := readBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var binding api.Binding
	if err := json.Unmarshal(body, &binding); err != nil {
		writeError(w, api.NewBadRequest(fmt.Sprintf("decoding Binding: %v", err)))
		return
	}
	if binding.Target.Name == "" {
		writeError(w, api.NewInvalid("", "Binding", q.name, api.FieldErrors{api.Required("target.name", "")}))
		return
	}
	_, err = s.store.For(q.res).Update(r.Context(), q.namespace, q.name, func(current api.Object) (api.Object, error) {
		pod := api.DeepCopy(current.(*api.Pod))
		if pod.DeletionTimestamp != nil {
			return nil, api.NewConflict("", "pods", q.name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", q.name))
		}
		if pod.Spec.NodeName != "" {
			return nil, api.NewConflict("", "pods/binding", q.name,
				fmt.Errorf("pod %s is already assigned to node %q", q.name, pod.Spec.NodeName))
		}
		pod.Spec.NodeName = binding.Target.Name
		setPodCondition(&pod.Status, api.PodCondition{Type: api.PodScheduled, Status: api.ConditionTrue, LastTransitionTime: api.Now()})
		return pod, nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{}, "status": "Success", "code": 201})
}

func setPodCondition(st *api.PodStatus, c api.PodCondition) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == c.Type {
			st.Conditions[i] = c
			return
		}
	}
	st.Conditions = append(st.Conditions, c)
}

// scale serves the scale subresource (autoscaling/v1 Scale) of Deployments and ReplicaSets.
func (s *Server) scale(w http.ResponseWriter, r *http.Request, q *request) {
	ctx := r.Context()
	store := s.store.For(q.res)
	switch r.Method {
	case http.MethodGet:
		obj, err := store.Get(ctx, q.namespace, q.name)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, scaleOf(obj))
	case http.MethodPut, http.MethodPatch:
		body, err := readBody(r)
		if err != nil {
			writeError(w, err)
			return
		}
		updated, err := store.Update(ctx, q.namespace, q.name, func(current api.Object) (api.Object, error) {
			sc := scaleOf(current)
			if r.Method == http.MethodPut {
				var in api.Scale
				if err := json.Unmarshal(body, &in); err != nil {
					return nil, api.NewBadRequest(fmt.Sprintf("decoding Scale: %v", err))
				}
				if in.ResourceVersion != "" && in.ResourceVersion != sc.ResourceVersion {
					return nil, api.NewConflict(q.res.Group, q.res.Plural, q.name,
						fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
				}
				sc.Spec.Replicas = in.Spec.Replicas
			} else if err := applyPatch(r.Header.Get("Content-Type"), sc, body); err != nil {
				return nil, err
			}
			if sc.Spec.Replicas < 0 {
				return nil, api.NewInvalid("autoscaling", "Scale", q.name,
					api.FieldErrors{api.Invalid("spec.replicas", sc.Spec.Replicas, "must be greater than or equal to 0")})
			}
			next := api.DeepCopy(current)
			setReplicas(next, sc.Spec.Replicas)
			return next, nil
		})
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, scaleOf(updated))
	default:
		writeError(w, api.NewStatus(http.StatusMethodNotAllowed, api.ReasonMethodNotAllowed, "scale supports GET, PUT and PATCH"))
	}
}

func scaleOf(obj api.Object) *api.Scale {
	sc := &api.Scale{TypeMeta: api.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"}}
	meta := obj.GetObjectMeta()
	sc.Name, sc.Namespace, sc.UID, sc.ResourceVersion, sc.CreationTimestamp =
		meta.Name, meta.Namespace, meta.UID, meta.ResourceVersion, meta.CreationTimestamp
	switch o := obj.(type) {
	case *api.Deployment:
		sc.Spec.Replicas = derefInt32(o.Spec.Replicas, 1)
		sc.Status.Replicas = o.Status.Replicas
		sc.Status.Selector = api.FormatLabelSelector(o.Spec.Selector)
	case *api.ReplicaSet:
		sc.Spec.Replicas = derefInt32(o.Spec.Replicas, 1)
		sc.Status.Replicas = o.Status.Replicas
		sc.Status.Selector = api.FormatLabelSelector(o.Spec.Selector)
	}
	return sc
}

func setReplicas(obj api.Object, n int32) {
	switch o := obj.(type) {
	case *api.Deployment:
		if o.Spec.Replicas == nil || *o.Spec.Replicas != n {
			o.Spec.Replicas = &n
			o.Generation++
		}
	case *api.ReplicaSet:
		if o.Spec.Replicas == nil || *o.Spec.Replicas != n {
			o.Spec.Replicas = &n
			o.Generation++
		}
	}
}

func derefInt32(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

// patch applies a JSON merge patch (or a strategic merge patch, treated as a
// merge patch whose lists are replaced) to the stored object and updates it.
func (s *Server) patch(w http.ResponseWriter, r *http.Request, q *request, status bool) {
	ctx := r.Context()
	body, err := readBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	ct := r.Header.Get("Content-Type")
	for attempt := 0; ; attempt++ {
		current, err := s.store.For(q.res).Get(ctx, q.namespace, q.name)
		if err != nil {
			writeError(w, err)
			return
		}
		next := api.DeepCopy(current)
		if err := applyPatch(ct, next, body); err != nil {
			writeError(w, err)
			return
		}
		next.GetObjectMeta().ResourceVersion = current.GetObjectMeta().ResourceVersion
		updated, err := s.updateObject(ctx, q, next, status)
		if api.IsConflict(err) && attempt < 5 && !patchSetsResourceVersion(body) {
			continue
		}
		s.respond(w, q, http.StatusOK, updated, err)
		return
	}
}

func patchSetsResourceVersion(body []byte) bool {
	var p struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	_ = json.Unmarshal(body, &p)
	return p.Metadata.ResourceVersion != ""
}

// applyPatch merges body into obj in place according to the content type.
func applyPatch(contentType string, obj any, body []byte) error {
	mediaType := strings.TrimSpace(strings.Split(contentType, ";")[0])
	switch mediaType {
	case "application/merge-patch+json", "application/strategic-merge-patch+json":
	default:
		return api.NewStatus(http.StatusUnsupportedMediaType, "UnsupportedMediaType",
			fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json (got %q)", mediaType))
	}
	var patch any
	if err := json.Unmarshal(body, &patch); err != nil {
		return api.NewBadRequest(fmt.Sprintf("decoding patch: %v", err))
	}
	orig, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	var doc any
	if err := json.Unmarshal(orig, &doc); err != nil {
		return err
	}
	merged, err := json.Marshal(MergePatch(doc, patch))
	if err != nil {
		return err
	}
	// Decode into a zero value so that fields the patch removed are gone.
	fresh := reflect.New(reflect.TypeOf(obj).Elem())
	if err := json.Unmarshal(merged, fresh.Interface()); err != nil {
		return api.NewBadRequest(fmt.Sprintf("applying patch: %v", err))
	}
	reflect.ValueOf(obj).Elem().Set(fresh.Elem())
	return nil
}

// MergePatch applies an RFC 7386 JSON merge patch: objects merge key by key,
// null deletes a key, anything else replaces. Strategic-merge directives
// (keys starting with "$") are dropped.
func MergePatch(doc, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	d, ok := doc.(map[string]any)
	if !ok {
		d = map[string]any{}
	}
	for k, v := range p {
		if strings.HasPrefix(k, "$") {
			continue
		}
		if v == nil {
			delete(d, k)
			continue
		}
		d[k] = MergePatch(d[k], v)
	}
	return d
}
