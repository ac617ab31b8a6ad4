package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

const (
	testAdminToken = "admin-0123456789abcdef"
	testNodeToken  = "node-0123456789abcdef"
)

func newTestAuthenticator(t *testing.T) *Authenticator {
	t.Helper()
	a, err := NewAuthenticator(ServerTokens{Admin: testAdminToken, Node: testNodeToken}.Users())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestMiddleware(t *testing.T) {
	a := newTestAuthenticator(t)
	// The handler reports whom it was called for, and whether the
	// credentials were passed on to it.
	handler := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := UserFrom(r.Context())
		if !ok {
			u.Name = "(none)"
		}
		if r.Header.Get("Authorization") != "" {
			u.Name += " (with credentials)"
		}
		w.Write([]byte(u.Name))
	}))

	tests := []struct {
		name          string
		path          string
		authorization string
		wantCode      int
		wantUser      string // the body: user name the handler saw
	}{
		{name: "admin token", path: "/api/v1/pods", authorization: "Bearer " + testAdminToken, wantCode: 200, wantUser: AdminUserName},
		{name: "node token", path: "/api/v1/nodes", authorization: "Bearer " + testNodeToken, wantCode: 200, wantUser: NodeBootstrapUserName},
		{name: "scheme in lower case", path: "/api/v1/pods", authorization: "bearer " + testAdminToken, wantCode: 200, wantUser: AdminUserName},
		{name: "no token", path: "/api/v1/pods", wantCode: 401},
		{name: "wrong token", path: "/api/v1/pods", authorization: "Bearer " + testAdminToken + "x", wantCode: 401},
		{name: "prefix of a token", path: "/api/v1/pods", authorization: "Bearer " + testAdminToken[:5], wantCode: 401},
		{name: "empty token", path: "/api/v1/pods", authorization: "Bearer ", wantCode: 401},
		{name: "basic auth", path: "/api/v1/pods", authorization: "Basic " + testAdminToken, wantCode: 401},
		{name: "token without scheme", path: "/api/v1/pods", authorization: testAdminToken, wantCode: 401},
		{name: "token in the query", path: "/api/v1/pods?access_token=" + testAdminToken, wantCode: 401},
		{name: "healthz", path: "/healthz", wantCode: 200, wantUser: "(none)"},
		{name: "livez", path: "/livez", wantCode: 200, wantUser: "(none)"},
		{name: "readyz", path: "/readyz", wantCode: 200, wantUser: "(none)"},
		{name: "version", path: "/version", wantCode: 200, wantUser: "(none)"},
		{name: "below a public path", path: "/healthz/etcd", wantCode: 401},
		{name: "discovery", path: "/api", wantCode: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			if tt.authorization != "" {
				req.Header.Set("Authorization", tt.authorization)
			}
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)

			if rec.Code != tt.wantCode {
				t.Fatalf("code %d, want %d; body %s", rec.Code, tt.wantCode, rec.Body)
			}
			if tt.wantCode == http.StatusUnauthorized {
				checkUnauthorizedBody(t, rec)
				return
			}
			if got := rec.Body.String(); got != tt.wantUser {
				t.Errorf("handler saw %q, want %q", got, tt.wantUser)
			}
		})
	}
}

// checkUnauthorizedBody checks that rec holds the Status that kubectl expects.
func checkUnauthorizedBody(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if got := rec.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q, want application/json", got)
	}
	var got, want map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	wantJSON := `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`
	if err := json.Unmarshal([]byte(wantJSON), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("body %s, want %s", rec.Body, wantJSON)
	}
}

func TestMiddlewareUserGroups(t *testing.T) {
	a := newTestAuthenticator(t)
	handler := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := UserFrom(r.Context())
		u.Groups[0] = "tampered" // must not leak into later requests
	}))
	for range 2 {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/nodes", nil)
		req.Header.Set("Authorization", "Bearer "+testNodeToken)
		handler.ServeHTTP(httptest.NewRecorder(), req)
	}
	if u, _ := a.AuthenticateToken(testNodeToken); !reflect.DeepEqual(u, NodeBootstrapUser()) {
		t.Errorf("node token authenticates %+v, want %+v", u, NodeBootstrapUser())
	}
}

func TestNewAuthenticatorRejectsEmptyToken(t *testing.T) {
	if _, err := NewAuthenticator(map[string]User{"": AdminUser()}); err == nil {
		t.Fatal("NewAuthenticator accepted an empty token")
	}
}

func TestUserFromEmptyContext(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	if u, ok := UserFrom(req.Context()); ok {
		t.Errorf("UserFrom on a fresh request = %+v, true", u)
	}
}
