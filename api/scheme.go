package api

import (
	"strings"
)

// Resource describes one REST resource: where it lives in the URL space,
// which Go type holds it, and how kubectl users may name it.
type Resource struct {
	Group      string // "" for the core group
	Version    string // the version kubelite stores and serves
	Kind       string
	Plural     string // the path segment: "pods"
	Singular   string
	ShortNames []string
	Namespaced bool
	// Subresources served under /{name}/{sub}.
	Subresources []string
	// New returns a zero object of the Go type, e.g. &Pod{}.
	New func() Object
}

// APIVersion is "v1" or "apps/v1".
func (r *Resource) APIVersion() string { return GroupVersion(r.Group, r.Version) }

// ListKind is "PodList".
func (r *Resource) ListKind() string { return r.Kind + "List" }

// GroupResource is "pods" or "deployments.apps", as used in messages.
func (r *Resource) GroupResource() string { return qualified(r.Group, r.Plural) }

// HasSubresource reports whether sub is served for this resource.
func (r *Resource) HasSubresource(sub string) bool {
	for _, s := range r.Subresources {
		if s == sub {
			return true
		}
	}
	return false
}

// Path is the REST path of a collection (name == "") or of one object;
// ns is ignored for cluster-scoped resources and may be "" for an
// all-namespaces list.
func (r *Resource) Path(ns, name string) string {
	var b strings.Builder
	if r.Group == "" {
		b.WriteString("/api/" + r.Version)
	} else {
		b.WriteString("/apis/" + r.Group + "/" + r.Version)
	}
	if r.Namespaced && ns != "" {
		b.WriteString("/namespaces/" + ns)
	}
	b.WriteString("/" + r.Plural)
	if name != "" {
		b.WriteString("/" + name)
	}
	return b.String()
}

// GroupVersion joins a group and version the way apiVersion is written.
func GroupVersion(group, version string) string {
	if group == "" {
		return version
	}
	return group + "/" + version
}

// SplitAPIVersion splits "apps/v1" into ("apps", "v1") and "v1" into ("", "v1").
func SplitAPIVersion(apiVersion string) (group, version string) {
	if i := strings.IndexByte(apiVersion, '/'); i >= 0 {
		return apiVersion[:i], apiVersion[i+1:]
	}
	return "", apiVersion
}

// Resources is every resource kubelite serves, in discovery order.
func Resources() []*Resource {
	return []*Resource{
		{Group: "", Version: "v1", Kind: "Namespace", Plural: "namespaces", Singular: "namespace", ShortNames: []string{"ns"},
			Subresources: []string{"status"}, New: func() Object { return &Namespace{} }},
		{Group: "", Version: "v1", Kind: "Node", Plural: "nodes", Singular: "node", ShortNames: []string{"no"},
			Subresources: []string{"status"}, New: func() Object { return &Node{} }},
		{Group: "", Version: "v1", Kind: "Pod", Plural: "pods", Singular: "pod", ShortNames: []string{"po"}, Namespaced: true,
			Subresources: []string{"status", "binding", "log", "exec", "attach"}, New: func() Object { return &Pod{} }},
		{Group: "", Version: "v1", Kind: "Service", Plural: "services", Singular: "service", ShortNames: []string{"svc"}, Namespaced: true,
			Subresources: []string{"status"}, New: func() Object { return &Service{} }},
		{Group: "", Version: "v1", Kind: "Endpoints", Plural: "endpoints", Singular: "endpoints", ShortNames: []string{"ep"}, Namespaced: true,
			New: func() Object { return &Endpoints{} }},
		{Group: "", Version: "v1", Kind: "Event", Plural: "events", Singular: "event", ShortNames: []string{"ev"}, Namespaced: true,
			New: func() Object { return &Event{} }},
		{Group: "apps", Version: "v1", Kind: "Deployment", Plural: "deployments", Singular: "deployment", ShortNames: []string{"deploy"}, Namespaced: true,
			Subresources: []string{"status", "scale"}, New: func() Object { return &Deployment{} }},
		{Group: "apps", Version: "v1", Kind: "ReplicaSet", Plural: "replicasets", Singular: "replicaset", ShortNames: []string{"rs"}, Namespaced: true,
			Subresources: []string{"status", "scale"}, New: func() Object { return &ReplicaSet{} }},
		{Group: "coordination.k8s.io", Version: "v1", Kind: "Lease", Plural: "leases", Singular: "lease", Namespaced: true,
			New: func() Object { return &Lease{} }},
	}
}

// LegacyVersions lists older group/versions still accepted on input for a
// kind; objects sent in them are converted to the stored version.
// The tutorial writes Deployments in apps/v1beta1.
var legacyVersions = map[string][]string{
	"Deployment": {"apps/v1beta1", "apps/v1beta2", "extensions/v1beta1"},
	"ReplicaSet": {"apps/v1beta2", "extensions/v1beta1"},
}

// LegacyVersions returns the deprecated apiVersions accepted for kind.
func LegacyVersions(kind string) []string { return legacyVersions[kind] }

// Scheme indexes Resources by every name a user or a client may use.
type Scheme struct {
	all []*Resource
}

// NewScheme builds the index of all resources.
func NewScheme() *Scheme { return &Scheme{all: Resources()} }

// All returns every resource.
func (s *Scheme) All() []*Resource { return s.all }

// ByKind finds a resource by apiVersion and kind, accepting legacy versions.
// It reports whether apiVersion is a deprecated one.
func (s *Scheme) ByKind(apiVersion, kind string) (r *Resource, legacy bool, ok bool) {
	for _, r := range s.all {
		if r.Kind != kind {
			continue
		}
		if r.APIVersion() == apiVersion {
			return r, false, true
		}
		for _, v := range LegacyVersions(kind) {
			if v == apiVersion {
				return r, true, true
			}
		}
	}
	return nil, false, false
}

// ByName finds a resource by plural, singular, short name or kind, case
// insensitively, optionally qualified by group ("deployments.apps").
func (s *Scheme) ByName(name string) (*Resource, bool) {
	name = strings.ToLower(name)
	group := ""
	if i := strings.IndexByte(name, '.'); i >= 0 {
		name, group = name[:i], name[i+1:]
	}
	for _, r := range s.all {
		if group != "" && r.Group != group {
			continue
		}
		if name == r.Plural || name == r.Singular || name == strings.ToLower(r.Kind) {
			return r, true
		}
		for _, sn := range r.ShortNames {
			if name == sn {
				return r, true
			}
		}
	}
	return nil, false
}

// ByGroupVersionResource finds the resource served at /apis/{group}/{version}/{plural};
// legacy versions of a kind are accepted.
func (s *Scheme) ByGroupVersionResource(group, version, plural string) (r *Resource, legacy bool, ok bool) {
	gv := GroupVersion(group, version)
	for _, r := range s.all {
		if r.Plural != plural {
			continue
		}
		if r.Group == group && r.Version == version {
			return r, false, true
		}
		for _, v := range LegacyVersions(r.Kind) {
			if v == gv {
				return r, true, true
			}
		}
	}
	return nil, false, false
}

// For returns the resource of a Go object, e.g. For(&Pod{}).
func (s *Scheme) For(obj Object) *Resource {
	kind := KindOf(obj)
	for _, r := range s.all {
		if r.Kind == kind {
			return r
		}
	}
	return nil
}

// ResourceFor is For on a fresh scheme, for callers without one at hand.
func ResourceFor(obj Object) *Resource { return NewScheme().For(obj) }
