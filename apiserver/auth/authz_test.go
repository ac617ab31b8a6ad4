package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"kubelite/api"
)

func TestAuthorize(t *testing.T) {
	admin := AdminUser()
	node := NodeBootstrapUser()
	tests := []struct {
		user      User
		verb      string
		resource  string
		namespace string
		wantErr   string // "" when allowed
	}{
		{user: admin, verb: "delete", resource: "deployments", namespace: "default"},
		{user: admin, verb: "deletecollection", resource: "pods", namespace: "kube-system"},
		{user: admin, verb: "create", resource: "pods/exec", namespace: "default"},
		{user: admin, verb: "delete", resource: "nodes"},

		{user: node, verb: "get", resource: "pods", namespace: "default"},
		{user: node, verb: "list", resource: "pods"},
		{user: node, verb: "watch", resource: "services"},
		{user: node, verb: "watch", resource: "endpoints"},
		{user: node, verb: "get", resource: "deployments", namespace: "default"},
		{user: node, verb: "create", resource: "nodes"},
		{user: node, verb: "update", resource: "nodes"},
		{user: node, verb: "patch", resource: "nodes/status"},
		{user: node, verb: "update", resource: "pods/status", namespace: "default"},
		{user: node, verb: "create", resource: "leases", namespace: "kube-node-lease"},
		{user: node, verb: "update", resource: "leases", namespace: "kube-node-lease"},
		{user: node, verb: "create", resource: "events", namespace: "default"},

		{user: node, verb: "delete", resource: "deployments", namespace: "default",
			wantErr: `deployments.apps is forbidden: User "system:node-bootstrap" cannot delete resource "deployments" in API group "apps" in the namespace "default"`},
		{user: node, verb: "delete", resource: "nodes",
			wantErr: `nodes is forbidden: User "system:node-bootstrap" cannot delete resource "nodes" in API group "" at the cluster scope`},
		{user: node, verb: "update", resource: "pods", namespace: "default",
			wantErr: `pods is forbidden: User "system:node-bootstrap" cannot update resource "pods" in API group "" in the namespace "default"`},
		{user: node, verb: "create", resource: "pods/exec", namespace: "default",
			wantErr: `pods is forbidden: User "system:node-bootstrap" cannot create resource "pods/exec" in API group "" in the namespace "default"`},
		{user: node, verb: "create", resource: "services", namespace: "default",
			wantErr: `services is forbidden: User "system:node-bootstrap" cannot create resource "services" in API group "" in the namespace "default"`},
		{user: node, verb: "update", resource: "endpoints", namespace: "default",
			wantErr: `endpoints is forbidden: User "system:node-bootstrap" cannot update resource "endpoints" in API group "" in the namespace "default"`},
		{user: node, verb: "delete", resource: "leases", namespace: "kube-node-lease",
			wantErr: `leases.coordination.k8s.io is forbidden: User "system:node-bootstrap" cannot delete resource "leases" in API group "coordination.k8s.io" in the namespace "kube-node-lease"`},
		{user: node, verb: "update", resource: "deployments/scale", namespace: "default",
			wantErr: `deployments.apps is forbidden: User "system:node-bootstrap" cannot update resource "deployments/scale" in API group "apps" in the namespace "default"`},

		{user: User{Name: "alice"}, verb: "get", resource: "pods", namespace: "default",
			wantErr: `pods is forbidden: User "alice" cannot get resource "pods" in API group "" in the namespace "default"`},
		{user: User{}, verb: "list", resource: "namespaces",
			wantErr: `namespaces is forbidden: User "system:anonymous" cannot list resource "namespaces" in API group "" at the cluster scope`},
		{user: User{Name: "both", Groups: []string{GroupNodes, GroupMasters}}, verb: "delete", resource: "deployments", namespace: "default"},
	}
	for _, tt := range tests {
		name := tt.user.Name + " " + tt.verb + " " + tt.resource + " " + tt.namespace
		t.Run(name, func(t *testing.T) {
			err := Authorize(tt.user, tt.verb, tt.resource, tt.namespace)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("allowed, want %q", tt.wantErr)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error:\n got %s\nwant %s", err, tt.wantErr)
			}
			if api.ReasonOf(err) != api.ReasonForbidden || err.(*api.Status).Code != http.StatusForbidden {
				t.Errorf("error %#v is not a 403 Forbidden Status", err)
			}
		})
	}
}

func TestAuthorizeRequest(t *testing.T) {
	policy := DefaultPolicy()
	tests := []struct {
		name       string
		user       *User // nil: no user in the context
		wantReason api.StatusReason
	}{
		{name: "admin", user: &User{Name: AdminUserName, Groups: []string{GroupMasters}}},
		{name: "node", user: &User{Name: NodeBootstrapUserName, Groups: []string{GroupNodes}}, wantReason: api.ReasonForbidden},
		{name: "nobody", user: nil, wantReason: api.ReasonUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodDelete, "/apis/apps/v1/namespaces/default/deployments/web", nil)
			if tt.user != nil {
				req = req.WithContext(WithUser(req.Context(), *tt.user))
			}
			err := policy.AuthorizeRequest(req, "delete", "deployments", "default")
			if got := api.ReasonOf(err); got != tt.wantReason || (err == nil) != (tt.wantReason == "") {
				t.Errorf("AuthorizeRequest = %v, want reason %q", err, tt.wantReason)
			}
		})
	}
}
