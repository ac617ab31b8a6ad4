package api

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
)

// Validate checks obj as the API server does before it stores it and lists
// every problem found, each with its full field path and Kubernetes' wording.
//
// It expects a defaulted object, as the API server has one after Decode and
// Default: an empty restartPolicy, for instance, is reported as missing.
func Validate(obj Object) FieldErrors {
	switch o := obj.(type) {
	case *Namespace:
		return validateNamespace(o)
	case *Node:
		return validateNode(o)
	case *Pod:
		return validatePod(o)
	case *Service:
		return validateService(o)
	case *Endpoints:
		return validateEndpoints(o)
	case *Event:
		return validateEvent(o)
	case *Deployment:
		return validateDeployment(o)
	case *ReplicaSet:
		return validateReplicaSet(o)
	case *Lease:
		return validateLease(o)
	case *Binding:
		return validateBinding(o)
	case *Scale:
		return validateScale(o)
	}
	return FieldErrors{invalid("kind", KindOf(obj), "is not a kind kubelite serves")}
}

// ValidateUpdate checks newObj as a replacement for oldObj: everything
// Validate checks, plus the fields that may not change once set.
func ValidateUpdate(newObj, oldObj Object) FieldErrors {
	if reflect.TypeOf(newObj) != reflect.TypeOf(oldObj) {
		return FieldErrors{invalid("kind", KindOf(newObj), fmt.Sprintf("may not change from %q", KindOf(oldObj)))}
	}
	errs := Validate(newObj)
	errs = append(errs, validateObjectMetaUpdate(newObj.GetObjectMeta(), oldObj.GetObjectMeta())...)
	switch n := newObj.(type) {
	case *Pod:
		errs = append(errs, validatePodUpdate(n, oldObj.(*Pod))...)
	case *Service:
		errs = append(errs, validateServiceUpdate(n, oldObj.(*Service))...)
	case *Deployment:
		errs = append(errs, validateSelectorUpdate(n.Spec.Selector, oldObj.(*Deployment).Spec.Selector)...)
	case *ReplicaSet:
		errs = append(errs, validateSelectorUpdate(n.Spec.Selector, oldObj.(*ReplicaSet).Spec.Selector)...)
	case *Node:
		errs = append(errs, validateNodeUpdate(n, oldObj.(*Node))...)
	}
	return errs
}

// Messages Kubernetes uses in several places.
const (
	fieldImmutableMsg = "field is immutable"
	isNegativeMsg     = "must be greater than or equal to 0"
)

// ---- metadata ----

// scopeOfKind reports whether a kind kubelite serves is namespaced; known is
// false for kinds that are not resources of their own (Binding, Scale).
var scopeOfKind = sync.OnceValue(func() map[string]bool {
	scopes := map[string]bool{}
	for _, r := range Resources() {
		scopes[r.Kind] = r.Namespaced
	}
	return scopes
})

func kindScope(kind string) (namespaced, known bool) {
	namespaced, known = scopeOfKind()[kind]
	return namespaced, known
}

// validateObjectMeta checks metadata: the name with the kind's own rule,
// the namespace according to the kind's scope, labels and annotations.
func validateObjectMeta(meta *ObjectMeta, kind string, validName func(string) []string) FieldErrors {
	p := fieldPath("metadata")
	var errs FieldErrors
	if meta.Name == "" {
		if meta.GenerateName == "" {
			errs = append(errs, required(p.Child("name"), "name or generateName is required"))
		}
	} else {
		for _, msg := range validName(meta.Name) {
			errs = append(errs, invalid(p.Child("name"), meta.Name, msg))
		}
	}
	if meta.GenerateName != "" {
		// A random suffix follows the prefix, so a trailing '-' is fine.
		for _, msg := range validName(maskTrailingDash(meta.GenerateName)) {
			errs = append(errs, invalid(p.Child("generateName"), meta.GenerateName, msg))
		}
	}
	if namespaced, known := kindScope(kind); known {
		switch {
		case namespaced && meta.Namespace == "":
			errs = append(errs, required(p.Child("namespace"), ""))
		case namespaced:
			for _, msg := range IsDNS1123Label(meta.Namespace) {
				errs = append(errs, invalid(p.Child("namespace"), meta.Namespace, msg))
			}
		case meta.Namespace != "":
			errs = append(errs, forbidden(p.Child("namespace"), "not allowed on this type"))
		}
	}
	errs = append(errs, validateLabels(meta.Labels, p.Child("labels"))...)
	errs = append(errs, validateAnnotations(meta.Annotations, p.Child("annotations"))...)
	errs = append(errs, validateOwnerReferences(meta.OwnerReferences, p.Child("ownerReferences"))...)
	return errs
}

// validateLabels checks label keys (qualified names) and values.
func validateLabels(labels map[string]string, p fieldPath) FieldErrors {
	var errs FieldErrors
	for _, k := range sortedKeys(labels) {
		for _, msg := range IsQualifiedName(k) {
			errs = append(errs, invalid(p, k, msg))
		}
		for _, msg := range IsValidLabelValue(labels[k]) {
			errs = append(errs, invalid(p, labels[k], msg))
		}
	}
	return errs
}

// totalAnnotationSizeLimit is Kubernetes' limit on all annotations of one object.
const totalAnnotationSizeLimit = 256 * 1024

// byteCount shows a size as a bad value: "300000 bytes".
type byteCount int

func (b byteCount) String() string { return fmt.Sprintf("%d bytes", int(b)) }

// validateAnnotations checks annotation keys and their total size.
func validateAnnotations(annotations map[string]string, p fieldPath) FieldErrors {
	var errs FieldErrors
	size := 0
	for _, k := range sortedKeys(annotations) {
		for _, msg := range IsQualifiedName(strings.ToLower(k)) {
			errs = append(errs, invalid(p, k, msg))
		}
		size += len(k) + len(annotations[k])
	}
	if size > totalAnnotationSizeLimit {
		errs = append(errs, invalid(p, byteCount(size), fmt.Sprintf("must have at most %d bytes", totalAnnotationSizeLimit)))
	}
	return errs
}

func validateOwnerReferences(refs []OwnerReference, p fieldPath) FieldErrors {
	var errs FieldErrors
	var controllers []string
	for i, ref := range refs {
		rp := p.Index(i)
		for _, f := range []namedString{{"apiVersion", ref.APIVersion}, {"kind", ref.Kind}, {"name", ref.Name}, {"uid", ref.UID}} {
			if f.value == "" {
				errs = append(errs, required(rp.Child(f.name), ""))
			}
		}
		if ref.Controller != nil && *ref.Controller {
			controllers = append(controllers, ref.Kind+"/"+ref.Name)
		}
	}
	if len(controllers) > 1 {
		errs = append(errs, invalid(p, goSyntax{refs},
			"Only one reference can have Controller set to true. Found \"true\" in references for "+strings.Join(controllers, " and ")))
	}
	return errs
}

func validateObjectMetaUpdate(newMeta, oldMeta *ObjectMeta) FieldErrors {
	p := fieldPath("metadata")
	var errs FieldErrors
	if newMeta.Name != oldMeta.Name {
		errs = append(errs, invalid(p.Child("name"), newMeta.Name, fieldImmutableMsg))
	}
	if newMeta.Namespace != oldMeta.Namespace {
		errs = append(errs, invalid(p.Child("namespace"), newMeta.Namespace, fieldImmutableMsg))
	}
	// An empty uid means "the one stored", which the API server fills in.
	if newMeta.UID != "" && newMeta.UID != oldMeta.UID {
		errs = append(errs, invalid(p.Child("uid"), newMeta.UID, fieldImmutableMsg))
	}
	return errs
}

// ---- Namespace, Node ----

func validateNamespace(ns *Namespace) FieldErrors {
	errs := validateObjectMeta(&ns.ObjectMeta, "Namespace", IsDNS1123Label)
	for i, f := range ns.Spec.Finalizers {
		for _, msg := range IsQualifiedName(f) {
			errs = append(errs, invalid(fieldPath("spec.finalizers").Index(i), f, msg))
		}
	}
	switch ns.Status.Phase {
	case "", NamespaceActive, NamespaceTerminating:
	default:
		errs = append(errs, notSupported("status.phase", ns.Status.Phase, NamespaceActive, NamespaceTerminating))
	}
	return errs
}

// Taint effects.
const (
	TaintNoSchedule       = "NoSchedule"
	TaintPreferNoSchedule = "PreferNoSchedule"
	TaintNoExecute        = "NoExecute"
)

func validateNode(node *Node) FieldErrors {
	errs := validateObjectMeta(&node.ObjectMeta, "Node", IsDNS1123Subdomain)
	p := fieldPath("spec")
	if node.Spec.PodCIDR != "" {
		for _, msg := range isValidCIDR(node.Spec.PodCIDR) {
			errs = append(errs, invalid(p.Child("podCIDR"), node.Spec.PodCIDR, msg))
		}
	}
	for i, cidr := range node.Spec.PodCIDRs {
		for _, msg := range isValidCIDR(cidr) {
			errs = append(errs, invalid(p.Child("podCIDRs").Index(i), cidr, msg))
		}
	}
	if len(node.Spec.PodCIDRs) > 0 && node.Spec.PodCIDR != "" && node.Spec.PodCIDRs[0] != node.Spec.PodCIDR {
		errs = append(errs, invalid(p.Child("podCIDRs").Index(0), node.Spec.PodCIDRs[0], "must match spec.podCIDR"))
	}
	seen := map[string]bool{}
	for i, taint := range node.Spec.Taints {
		tp := p.Child("taints").Index(i)
		if taint.Key == "" {
			errs = append(errs, required(tp.Child("key"), ""))
		} else {
			for _, msg := range IsQualifiedName(taint.Key) {
				errs = append(errs, invalid(tp.Child("key"), taint.Key, msg))
			}
		}
		for _, msg := range IsValidLabelValue(taint.Value) {
			errs = append(errs, invalid(tp.Child("value"), taint.Value, msg))
		}
		switch taint.Effect {
		case TaintNoSchedule, TaintPreferNoSchedule, TaintNoExecute:
		case "":
			errs = append(errs, required(tp.Child("effect"), ""))
		default:
			errs = append(errs, notSupported(tp.Child("effect"), taint.Effect, TaintNoSchedule, TaintPreferNoSchedule, TaintNoExecute))
		}
		keyEffect := taint.Key + ":" + taint.Effect
		if seen[keyEffect] {
			errs = append(errs, duplicate(tp, keyEffect))
		}
		seen[keyEffect] = true
	}
	return errs
}

func validateNodeUpdate(newNode, oldNode *Node) FieldErrors {
	if oldNode.Spec.PodCIDR != "" && newNode.Spec.PodCIDR != oldNode.Spec.PodCIDR {
		return FieldErrors{forbidden("spec.podCIDR", `node updates may not change podCIDR except from "" to valid`)}
	}
	return nil
}

// ---- Endpoints, Event, Lease, Binding, Scale ----

func validateEndpoints(ep *Endpoints) FieldErrors {
	errs := validateObjectMeta(&ep.ObjectMeta, "Endpoints", IsDNS1123Subdomain)
	for i, subset := range ep.Subsets {
		sp := fieldPath("subsets").Index(i)
		if len(subset.Addresses) == 0 && len(subset.NotReadyAddresses) == 0 {
			errs = append(errs, required(sp, "must specify `addresses` or `notReadyAddresses`"))
		}
		for j, addr := range subset.Addresses {
			errs = append(errs, validateEndpointAddress(&addr, sp.Child("addresses").Index(j))...)
		}
		for j, addr := range subset.NotReadyAddresses {
			errs = append(errs, validateEndpointAddress(&addr, sp.Child("notReadyAddresses").Index(j))...)
		}
		names := map[string]bool{}
		for j, port := range subset.Ports {
			pp := sp.Child("ports").Index(j)
			switch {
			case port.Name == "" && len(subset.Ports) > 1:
				errs = append(errs, required(pp.Child("name"), ""))
			case port.Name != "":
				for _, msg := range IsDNS1123Label(port.Name) {
					errs = append(errs, invalid(pp.Child("name"), port.Name, msg))
				}
				if names[port.Name] {
					errs = append(errs, duplicate(pp.Child("name"), port.Name))
				}
				names[port.Name] = true
			}
			for _, msg := range isValidPortNum(int(port.Port)) {
				errs = append(errs, invalid(pp.Child("port"), port.Port, msg))
			}
			errs = append(errs, validateProtocol(port.Protocol, pp.Child("protocol"))...)
		}
	}
	return errs
}

func validateEndpointAddress(addr *EndpointAddress, p fieldPath) FieldErrors {
	var errs FieldErrors
	for _, msg := range isValidIP(addr.IP) {
		errs = append(errs, invalid(p.Child("ip"), addr.IP, msg))
	}
	if addr.Hostname != "" {
		for _, msg := range IsDNS1123Label(addr.Hostname) {
			errs = append(errs, invalid(p.Child("hostname"), addr.Hostname, msg))
		}
	}
	if addr.NodeName != nil {
		for _, msg := range IsDNS1123Subdomain(*addr.NodeName) {
			errs = append(errs, invalid(p.Child("nodeName"), *addr.NodeName, msg))
		}
	}
	return errs
}

func validateEvent(ev *Event) FieldErrors {
	errs := validateObjectMeta(&ev.ObjectMeta, "Event", IsDNS1123Subdomain)
	ip := fieldPath("involvedObject")
	if ev.InvolvedObject.Kind == "" {
		errs = append(errs, required(ip.Child("kind"), ""))
	}
	if ev.InvolvedObject.Name == "" {
		errs = append(errs, required(ip.Child("name"), ""))
	}
	// An event lives in its object's namespace; events about cluster-scoped
	// objects live in "default".
	if ns := ev.InvolvedObject.Namespace; (ns == "" && ev.Namespace != "" && ev.Namespace != NamespaceDefault) || (ns != "" && ns != ev.Namespace) {
		errs = append(errs, invalid(ip.Child("namespace"), ns, "does not match event.namespace"))
	}
	switch ev.Type {
	case EventNormal, EventWarning:
	case "":
		errs = append(errs, required("type", ""))
	default:
		errs = append(errs, notSupported("type", ev.Type, EventNormal, EventWarning))
	}
	if ev.Count < 0 {
		errs = append(errs, invalid("count", ev.Count, isNegativeMsg))
	}
	return errs
}

func validateLease(lease *Lease) FieldErrors {
	errs := validateObjectMeta(&lease.ObjectMeta, "Lease", IsDNS1123Subdomain)
	if d := lease.Spec.LeaseDurationSeconds; d != nil && *d <= 0 {
		errs = append(errs, invalid("spec.leaseDurationSeconds", *d, "must be greater than 0"))
	}
	if t := lease.Spec.LeaseTransitions; t != nil && *t < 0 {
		errs = append(errs, invalid("spec.leaseTransitions", *t, isNegativeMsg))
	}
	return errs
}

func validateBinding(b *Binding) FieldErrors {
	errs := validateObjectMeta(&b.ObjectMeta, "Binding", IsDNS1123Subdomain)
	if b.Target.Kind != "" && b.Target.Kind != "Node" {
		errs = append(errs, invalid("target.kind", b.Target.Kind, "must be empty or 'Node'"))
	}
	if b.Target.Name == "" {
		errs = append(errs, required("target.name", ""))
	}
	return errs
}

func validateScale(s *Scale) FieldErrors {
	errs := validateObjectMeta(&s.ObjectMeta, "Scale", IsDNS1123Subdomain)
	if s.Spec.Replicas < 0 {
		errs = append(errs, invalid("spec.replicas", s.Spec.Replicas, isNegativeMsg))
	}
	return errs
}

// ---- helpers ----

// jsonEqual compares two values as their JSON forms, so that an empty list
// and a missing one, which mean the same, compare equal.
func jsonEqual(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// namedString is a field name with its value, for checking several alike fields in order.
type namedString struct{ name, value string }

// maskTrailingDash lets a generateName prefix end in '-', as the random
// suffix that follows makes the full name valid.
func maskTrailingDash(name string) string {
	if len(name) > 1 && strings.HasSuffix(name, "-") {
		return name[:len(name)-1] + "a"
	}
	return name
}

// containsDotDot reports whether a path has a ".." element.
func containsDotDot(path string) bool {
	for _, part := range strings.Split(path, "/") {
		if part == ".." {
			return true
		}
	}
	return false
}
