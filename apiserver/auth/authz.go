package auth

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"kubelite/api"
)

// Any matches every verb or every resource in a Rule.
const Any = "*"

// Rule allows the members of Group to do Verbs on Resources.
//
// Verbs are Kubernetes' request verbs: get, list, watch, create, update,
// patch, delete, deletecollection. A resource is a plural ("pods") or a
// plural and a subresource ("pods/status"); as in Kubernetes RBAC, "pods"
// does not cover "pods/status", while Any covers both. Resources are named
// without their API group: kubelite's plurals are unique across groups.
type Rule struct {
	Group     string
	Verbs     []string
	Resources []string
}

func (r Rule) allows(u User, verb, resource string) bool {
	return u.InGroup(r.Group) && matches(r.Verbs, verb) && matches(r.Resources, resource)
}

func matches(allowed []string, s string) bool {
	return slices.Contains(allowed, Any) || slices.Contains(allowed, s)
}

// Policy is a list of rules; a request is allowed if any rule allows it.
// Nothing is denied explicitly.
type Policy []Rule

// DefaultPolicy is kubelite's authorization policy:
//
//	group           verbs                  resources
//	system:masters  *                      *
//	system:nodes    get, list, watch       *
//	system:nodes    create, update, patch  nodes, nodes/status, leases, events
//	system:nodes    update, patch          pods/status
//	system:nodes    delete                 pods
//
// Administrators may do anything. Node agents may do what a kubelet does:
// read the cluster (their pods, the Services and Endpoints that the proxy
// and DNS serve), register their Node and report its status, report the
// status of pods, renew their Lease, and record Events, and confirm the
// deletion of a Pod they have stopped (a kubelet's final gracePeriodSeconds=0
// delete). They may not change workloads.
func DefaultPolicy() Policy {
	var (
		read  = []string{"get", "list", "watch"}
		write = []string{"create", "update", "patch"}
	)
	return Policy{
		{Group: GroupMasters, Verbs: []string{Any}, Resources: []string{Any}},
		{Group: GroupNodes, Verbs: read, Resources: []string{Any}},
		{Group: GroupNodes, Verbs: write, Resources: []string{"nodes", "nodes/status", "leases", "events"}},
		{Group: GroupNodes, Verbs: []string{"update", "patch"}, Resources: []string{"pods/status"}},
		{Group: GroupNodes, Verbs: []string{"delete"}, Resources: []string{"pods"}},
	}
}

// Authorize decides with DefaultPolicy whether u may do verb on resource in
// namespace ("" for cluster-scoped resources and all-namespace requests).
// Servers that decide often should keep one DefaultPolicy and call its
// Authorize method.
func Authorize(u User, verb, resource, namespace string) error {
	return DefaultPolicy().Authorize(u, verb, resource, namespace)
}

// Authorize returns nil if a rule allows u to do verb on resource, and a
// Forbidden Status in kubectl's wording otherwise, e.g.
//
//	deployments.apps is forbidden: User "system:node-bootstrap" cannot delete
//	resource "deployments" in API group "apps" in the namespace "default"
func (p Policy) Authorize(u User, verb, resource, namespace string) error {
	for _, rule := range p {
		if rule.allows(u, verb, resource) {
			return nil
		}
	}
	return forbidden(u, verb, resource, namespace)
}

// AuthorizeRequest judges the user that Middleware stored in r's context,
// in the shape of apiserver.Config.Authorize. A request without a user
// (Middleware not installed) is Unauthorized.
func (p Policy) AuthorizeRequest(r *http.Request, verb, resource, namespace string) error {
	u, ok := UserFrom(r.Context())
	if !ok {
		return api.NewUnauthorized()
	}
	return p.Authorize(u, verb, resource, namespace)
}

// forbidden builds the 403 Status for a refused request.
func forbidden(u User, verb, resource, namespace string) *api.Status {
	plural, _, _ := strings.Cut(resource, "/")
	group := ""
	if r, ok := api.NewScheme().ByName(plural); ok {
		group = r.Group
	}
	name := u.Name
	if name == "" {
		name = AnonymousUserName
	}
	scope := "at the cluster scope"
	if namespace != "" {
		scope = fmt.Sprintf("in the namespace %q", namespace)
	}
	reason := fmt.Sprintf("User %q cannot %s resource %q in API group %q %s", name, verb, resource, group, scope)

	return api.NewForbidden(group, plural, "", reason)
}
