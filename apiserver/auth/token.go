package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tokenBytes is the amount of randomness in a generated token.
const tokenBytes = 32

// Token files in the server's auth directory.
const (
	adminTokenFile = "admin-token"
	nodeTokenFile  = "node-token"
)

// EnsureToken returns the bearer token stored in path, first creating the
// file (mode 0600, parent directories 0700) with 32 random bytes in hex if
// it does not exist. An existing file may hold any token an operator chose;
// surrounding white space is ignored.
func EnsureToken(path string) (string, error) {
	token, err := readToken(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return token, err
	}
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return "", fmt.Errorf("token directory: %w", err)
	}
	token, err = newToken()
	if err != nil {
		return "", err
	}
	err = createFileAtomic(path, []byte(token+"\n"), secretMode)
	if errors.Is(err, fs.ErrExist) {
		// Another process created it first; its token is the one in use.
		return readToken(path)
	}
	if err != nil {
		return "", fmt.Errorf("save token: %w", err)
	}
	return token, nil
}

// readToken reads and checks the token in path. A missing file gives an
// error matching fs.ErrNotExist.
func readToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	token := strings.TrimSpace(string(data))
	switch {
	case token == "":
		// An empty token would let an empty Authorization header in.
		return "", fmt.Errorf("token file %s is empty", path)
	case strings.ContainsFunc(token, func(r rune) bool { return r < '!' || r > '~' }):
		return "", fmt.Errorf("token file %s: a token is one word of printable ASCII", path)
	}
	return token, nil
}

// newToken returns tokenBytes random bytes in hex.
func newToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// ServerTokens are the bearer tokens the API server accepts.
type ServerTokens struct {
	// Admin is the administrator's token, written into the admin kubeconfig.
	Admin string
	// Node is the token with which node agents join the cluster.
	Node string
}

// EnsureServerTokens creates or reads the admin and node tokens in the
// server's auth directory dir, and publishes the node token at
// nodeTokenPath (<data-dir>/node-token) for the operator to hand to joining
// nodes, in join form with the hash of the cluster CA caPEM (see JoinToken).
// The copy in dir is the one in force: the published copy is rewritten
// from it on every start.
func EnsureServerTokens(dir, nodeTokenPath string, caPEM []byte) (ServerTokens, error) {
	if err := ensurePrivateDir(dir); err != nil {
		return ServerTokens{}, fmt.Errorf("auth %s: %w", dir, err)
	}
	admin, err := EnsureToken(filepath.Join(dir, adminTokenFile))
	if err != nil {
		return ServerTokens{}, fmt.Errorf("admin token: %w", err)
	}
	node, err := EnsureToken(filepath.Join(dir, nodeTokenFile))
	if err != nil {
		return ServerTokens{}, fmt.Errorf("node token: %w", err)
	}
	if err := publishToken(nodeTokenPath, JoinToken(caPEM, node)); err != nil {
		return ServerTokens{}, fmt.Errorf("publish node token: %w", err)
	}
	return ServerTokens{Admin: admin, Node: node}, nil
}

// publishToken makes path hold token, leaving it untouched if it already does.
func publishToken(path, token string) error {
	content := []byte(token + "\n")
	if existing, err := os.ReadFile(path); err == nil && bytes.Equal(existing, content) {
		return nil
	}
	return writeFileAtomic(path, content, secretMode)
}

// Users maps each token to the user it authenticates, for NewAuthenticator.
func (t ServerTokens) Users() map[string]User {
	return map[string]User{
		t.Admin: AdminUser(),
		t.Node:  NodeBootstrapUser(),
	}
}

// joinTokenPrefix marks a join token that carries the CA's hash, in the
// form k3s uses: K10<sha256 of the CA PEM in hex>::node:<secret>.
const joinTokenPrefix = "K10"

// JoinToken is what a joining node is given: the node secret together with
// the hash of the cluster CA, so that the node can fetch the CA from an
// unauthenticated /cacerts and trust it only if the hash matches — no CA
// file to copy around, and no trust on first use.
func JoinToken(caPEM []byte, secret string) string {
	sum := sha256.Sum256(caPEM)
	return joinTokenPrefix + hex.EncodeToString(sum[:]) + "::node:" + secret
}

// ParseJoinToken splits a join token into the CA hash and the bearer
// secret. A plain token (no prefix) has no CA hash.
func ParseJoinToken(token string) (caHash, secret string) {
	token = strings.TrimSpace(token)
	rest, ok := strings.CutPrefix(token, joinTokenPrefix)
	if !ok {
		return "", token
	}
	hash, secret, ok := strings.Cut(rest, "::node:")
	if !ok {
		return "", token
	}
	return hash, secret
}

// VerifyCA reports whether caPEM has the hash a join token carries.
func VerifyCA(caPEM []byte, caHash string) bool {
	sum := sha256.Sum256(caPEM)
	return hex.EncodeToString(sum[:]) == strings.ToLower(caHash)
}
