package apiserver

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"kubelite/api"
)

// Strategies: what the server itself sets or keeps on each write, whatever
// the client sent (Kubernetes' registry "strategies").

// prepareForCreate sets the server-owned metadata of a new object and resets
// its status: a client cannot create a Deployment that claims 3 ready replicas.
func prepareForCreate(obj api.Object) {
	meta := obj.GetObjectMeta()
	meta.UID = newUID()
	meta.CreationTimestamp = api.Now()
	meta.ResourceVersion = ""
	meta.DeletionTimestamp = nil
	meta.DeletionGracePeriodSeconds = nil
	if hasField(obj, "Spec") {
		meta.Generation = 1
	}
	switch o := obj.(type) {
	case *api.Deployment:
		o.Status = api.DeploymentStatus{}
	case *api.ReplicaSet:
		o.Status = api.ReplicaSetStatus{}
	case *api.Service:
		o.Status = api.ServiceStatus{}
	case *api.Pod:
		o.Status = api.PodStatus{Phase: api.PodPending}
	case *api.Namespace:
		o.Status = api.NamespaceStatus{Phase: api.NamespaceActive}
		if len(o.Spec.Finalizers) == 0 {
			o.Spec.Finalizers = []string{"kubernetes"}
		}
	}
}

// prepareForUpdate keeps what a client may not change through the main
// resource: identity, deletion state and status; and bumps metadata.generation
// when the spec changed, so controllers can report observedGeneration.
func prepareForUpdate(next, current api.Object) {
	nm, cm := next.GetObjectMeta(), current.GetObjectMeta()
	nm.UID = cm.UID
	nm.CreationTimestamp = cm.CreationTimestamp
	nm.DeletionTimestamp = cm.DeletionTimestamp
	nm.DeletionGracePeriodSeconds = cm.DeletionGracePeriodSeconds
	nm.Generation = cm.Generation
	if hasField(next, "Status") {
		copyField(next, current, "Status")
	}
	if svc, ok := next.(*api.Service); ok {
		dropTypeDependentFields(svc, current.(*api.Service))
	}
	if ns, ok := next.(*api.Namespace); ok {
		ns.Spec = current.(*api.Namespace).Spec // changed only through namespaces/{name}/finalize
	}
	if hasField(next, "Spec") && !sameJSON(field(next, "Spec"), field(current, "Spec")) {
		nm.Generation = cm.Generation + 1
	}
}

// withStatusOf is the status subresource's update: the stored object with
// only the new status.
func withStatusOf(current, next api.Object) api.Object {
	if hasField(next, "Status") {
		copyField(current, next, "Status")
	}
	return current
}

// markForDeletion decides how obj is deleted. It returns false when the
// object may go from storage at once, and true when it was marked with a
// deletionTimestamp instead: it has finalizers to run (the garbage
// collector's among them, per propagation policy), it is a Namespace whose
// contents must go first, or it is a running Pod given time to stop.
func markForDeletion(obj api.Object, opts *DeleteOptions) bool {
	meta := obj.GetObjectMeta()
	switch opts.PropagationPolicy {
	case PropagationOrphan:
		meta.Finalizers = addString(meta.Finalizers, FinalizerOrphan)
	case PropagationForeground:
		meta.Finalizers = addString(meta.Finalizers, FinalizerForeground)
	}
	now := api.Now()
	if pod, ok := obj.(*api.Pod); ok && pod.Spec.NodeName != "" &&
		pod.Status.Phase != api.PodSucceeded && pod.Status.Phase != api.PodFailed {
		grace := int64(30)
		if pod.Spec.TerminationGracePeriodSeconds != nil {
			grace = *pod.Spec.TerminationGracePeriodSeconds
		}
		if opts.GracePeriodSeconds != nil {
			grace = *opts.GracePeriodSeconds
		}
		if grace > 0 {
			// A second delete may shorten the grace period, never lengthen it.
			if meta.DeletionGracePeriodSeconds != nil && *meta.DeletionGracePeriodSeconds <= grace {
				return true
			}
			deadline := api.NewTime(now.Add(time.Duration(grace) * time.Second))
			meta.DeletionTimestamp = &deadline
			meta.DeletionGracePeriodSeconds = &grace
			return true
		}
		meta.DeletionGracePeriodSeconds = api.Ptr(int64(0))
	}
	if ns, ok := obj.(*api.Namespace); ok && len(ns.Spec.Finalizers) > 0 {
		ns.Status.Phase = api.NamespaceTerminating
		if meta.DeletionTimestamp == nil {
			meta.DeletionTimestamp = &now
		}
		meta.DeletionGracePeriodSeconds = api.Ptr(int64(0))
		return true
	}
	if len(meta.Finalizers) > 0 {
		if meta.DeletionTimestamp == nil {
			meta.DeletionTimestamp = &now
		}
		meta.DeletionGracePeriodSeconds = api.Ptr(int64(0))
		return true
	}
	return false
}

func addString(list []string, s string) []string {
	if contains(list, s) {
		return list
	}
	return append(list, s)
}

// field returns the named struct field of obj (e.g. "Spec").
func field(obj api.Object, name string) any {
	return reflect.ValueOf(obj).Elem().FieldByName(name).Interface()
}

func hasField(obj api.Object, name string) bool {
	return reflect.ValueOf(obj).Elem().FieldByName(name).IsValid()
}

// copyField sets dst.name = src.name (same Go type).
func copyField(dst, src api.Object, name string) {
	reflect.ValueOf(dst).Elem().FieldByName(name).Set(reflect.ValueOf(src).Elem().FieldByName(name))
}

func sameJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// newUID returns a random RFC 4122 version 4 UUID.
func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// generateName appends 5 random characters from Kubernetes' alphabet
// (no vowels, no confusable digits) to prefix.
func generateName(prefix string) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	const maxPrefix = 63 - 5
	if len(prefix) > maxPrefix {
		prefix = prefix[:maxPrefix]
	}
	var b [5]byte
	_, _ = rand.Read(b[:])
	out := []byte(prefix)
	for _, c := range b {
		out = append(out, alphabet[int(c)%len(alphabet)])
	}
	return string(out)
}

// dropTypeDependentFields clears what only the old Service type needed when
// an update changes the type and the client left the old values in place
// (kubectl apply merges onto the live object), as Kubernetes does: a
// NodePort Service turned back into ClusterIP loses its node ports and its
// externalTrafficPolicy instead of failing validation.
func dropTypeDependentFields(svc, old *api.Service) {
	needsNodePorts := func(t string) bool { return t == api.ServiceTypeNodePort || t == api.ServiceTypeLoadBalancer }
	if needsNodePorts(old.Spec.Type) && !needsNodePorts(svc.Spec.Type) {
		oldPorts := map[int32]bool{}
		for _, p := range old.Spec.Ports {
			oldPorts[p.NodePort] = true
		}
		for i := range svc.Spec.Ports {
			if oldPorts[svc.Spec.Ports[i].NodePort] {
				svc.Spec.Ports[i].NodePort = 0
			}
		}
		if svc.Spec.ExternalTrafficPolicy == old.Spec.ExternalTrafficPolicy {
			svc.Spec.ExternalTrafficPolicy = ""
		}
		if svc.Spec.HealthCheckNodePort == old.Spec.HealthCheckNodePort {
			svc.Spec.HealthCheckNodePort = 0
		}
	}
	if old.Spec.Type == api.ServiceTypeLoadBalancer && svc.Spec.Type != api.ServiceTypeLoadBalancer {
		if svc.Spec.AllocateLoadBalancerNodePorts != nil && old.Spec.AllocateLoadBalancerNodePorts != nil &&
			*svc.Spec.AllocateLoadBalancerNodePorts == *old.Spec.AllocateLoadBalancerNodePorts {
			svc.Spec.AllocateLoadBalancerNodePorts = nil
		}
	}
}
