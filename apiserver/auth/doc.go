// Package auth gives the API server its identity and decides who may talk
// to it, the way k3s does on first start:
//
//   - PKI: a cluster CA and the API server's serving certificate, created in
//     the server's auth directory on first start and reused afterwards
//     (EnsurePKI). The CA also signs certificates for the node agents' own
//     HTTPS API (IssueServingCert, IssueClientCert).
//   - Tokens: random bearer tokens kept in files, one for the administrator
//     and one with which nodes join (EnsureToken, EnsureServerTokens).
//   - Authentication: an HTTP middleware that maps a bearer token to a User
//     (Authenticator).
//   - Authorization: a small, explicit table of rules per group (Policy).
package auth
