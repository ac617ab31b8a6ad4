package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"kubelite/api"
)

// Well-known user and group names, as Kubernetes spells them.
const (
	AdminUserName         = "kubelite-admin"
	NodeBootstrapUserName = "system:node-bootstrap"
	AnonymousUserName     = "system:anonymous"

	GroupMasters = "system:masters" // may do anything
	GroupNodes   = "system:nodes"   // node agents
)

// User is an authenticated identity.
type User struct {
	Name   string
	Groups []string
}

// AdminUser is whom the admin token authenticates.
func AdminUser() User {
	return User{Name: AdminUserName, Groups: []string{GroupMasters}}
}

// NodeBootstrapUser is whom the node-join token authenticates.
func NodeBootstrapUser() User {
	return User{Name: NodeBootstrapUserName, Groups: []string{GroupNodes}}
}

// InGroup reports whether u belongs to group.
func (u User) InGroup(group string) bool { return slices.Contains(u.Groups, group) }

type userContextKey struct{}

// WithUser returns a copy of ctx that carries u.
func WithUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userContextKey{}, u)
}

// UserFrom returns the user that Middleware stored in ctx.
func UserFrom(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userContextKey{}).(User)
	return u, ok
}

// Authenticator maps bearer tokens to users. It is read-only after
// NewAuthenticator and safe for concurrent use.
type Authenticator struct {
	// Tokens are kept as SHA-256 digests, so that every comparison is of
	// equal length and takes the same time whatever the token presented.
	credentials []credential
}

type credential struct {
	digest [sha256.Size]byte
	user   User
}

// NewAuthenticator accepts the given tokens, each for its user.
func NewAuthenticator(tokens map[string]User) (*Authenticator, error) {
	a := &Authenticator{}
	for token, user := range tokens {
		if token == "" {
			return nil, fmt.Errorf("empty token for user %q", user.Name)
		}
		user.Groups = slices.Clone(user.Groups)
		a.credentials = append(a.credentials, credential{digest: sha256.Sum256([]byte(token)), user: user})
	}
	return a, nil
}

// AuthenticateToken returns the user whose token this is.
func (a *Authenticator) AuthenticateToken(token string) (User, bool) {
	presented := sha256.Sum256([]byte(token))
	var found User
	var ok bool
	// Compare with every credential, without stopping at a match, so that
	// the time taken does not tell which credential (if any) matched.
	for _, c := range a.credentials {
		if subtle.ConstantTimeCompare(presented[:], c.digest[:]) == 1 {
			found, ok = c.user, true
		}
	}
	return found, ok
}

// Middleware requires `Authorization: Bearer <token>` with a known token on
// every request except the public health and version endpoints, stores the
// user in the request's context (see UserFrom), and answers any other
// request with a 401 Status.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isPublicPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		token, ok := bearerToken(r.Header)
		if !ok {
			writeUnauthorized(w)
			return
		}
		user, ok := a.AuthenticateToken(token)
		if !ok {
			writeUnauthorized(w)
			return
		}
		// Handlers that proxy the request on (pod logs, exec) must not pass
		// the caller's credentials to the node; Kubernetes drops them too.
		r.Header.Del("Authorization")
		user.Groups = slices.Clone(user.Groups) // the handler's copy to keep
		next.ServeHTTP(w, r.WithContext(WithUser(r.Context(), user)))
	})
}

// isPublicPath reports whether path may be read without credentials: the
// paths of Kubernetes' system:public-info-viewer role, and /cacerts, the
// cluster CA that joining nodes check against their join token (as k3s).
func isPublicPath(path string) bool {
	switch path {
	case "/healthz", "/livez", "/readyz", "/version", "/version/", "/cacerts":
		return true
	}
	return false
}

// bearerToken extracts the token from `Authorization: Bearer <token>`. The
// scheme is case-insensitive (RFC 7235); tokens in the URL are not accepted.
func bearerToken(h http.Header) (string, bool) {
	scheme, token, ok := strings.Cut(h.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// writeUnauthorized answers with the 401 Status that kubectl understands.
func writeUnauthorized(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("WWW-Authenticate", `Bearer realm="kubelite"`)
	w.WriteHeader(http.StatusUnauthorized)
	if err := json.NewEncoder(w).Encode(api.NewUnauthorized()); err != nil {
		slog.Debug("writing Unauthorized response", "err", err)
	}
}
