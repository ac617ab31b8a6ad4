package client

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// Kubeconfig is a kubeconfig file in Kubernetes' own format, so that the
// files kubelite writes work with kubectl and the other way round. Fields
// kubelite does not use (client certificates, exec plugins) are ignored on
// reading.
type Kubeconfig struct {
	APIVersion     string         `json:"apiVersion"`
	Kind           string         `json:"kind"`
	Clusters       []NamedCluster `json:"clusters"`
	Contexts       []NamedContext `json:"contexts"`
	CurrentContext string         `json:"current-context"`
	Preferences    struct{}       `json:"preferences"`
	Users          []NamedUser    `json:"users"`
}

// NamedCluster is one entry of clusters[].
type NamedCluster struct {
	Name    string  `json:"name"`
	Cluster Cluster `json:"cluster"`
}

// Cluster says where an API server is and how to trust it.
type Cluster struct {
	Server string `json:"server"`
	// CertificateAuthority is a path to a PEM file, relative to the kubeconfig.
	CertificateAuthority string `json:"certificate-authority,omitempty"`
	// CertificateAuthorityData is the PEM bundle itself (base64 in the file).
	CertificateAuthorityData []byte `json:"certificate-authority-data,omitempty"`
	InsecureSkipTLSVerify    bool   `json:"insecure-skip-tls-verify,omitempty"`
}

// NamedUser is one entry of users[].
type NamedUser struct {
	Name string `json:"name"`
	User User   `json:"user"`
}

// User holds credentials: a bearer token, inline or in a file.
type User struct {
	Token string `json:"token,omitempty"`
	// TokenFile is a path relative to the kubeconfig.
	TokenFile string `json:"tokenFile,omitempty"`
}

// NamedContext is one entry of contexts[].
type NamedContext struct {
	Name    string  `json:"name"`
	Context Context `json:"context"`
}

// Context pairs a cluster with a user and a default namespace.
type Context struct {
	Cluster   string `json:"cluster"`
	User      string `json:"user"`
	Namespace string `json:"namespace,omitempty"`
}

// ReadKubeconfig parses a kubeconfig file.
func ReadKubeconfig(path string) (*Kubeconfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig: %w", err)
	}
	var kc Kubeconfig
	if err := yaml.Unmarshal(data, &kc); err != nil {
		return nil, fmt.Errorf("parsing kubeconfig %s: %w", path, err)
	}
	if kc.Kind != "" && kc.Kind != "Config" {
		return nil, fmt.Errorf("parsing kubeconfig %s: kind is %q, want Config", path, kc.Kind)
	}
	return &kc, nil
}

// Write stores the kubeconfig at path with mode 0600, atomically: readers
// see the old file or the new one, never a half-written one.
func (kc *Kubeconfig) Write(path string) error {
	data, err := yaml.Marshal(kc)
	if err != nil {
		return fmt.Errorf("encoding kubeconfig: %w", err)
	}
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	return nil
}

// ClientConfig resolves context ctxName ("" = current-context) to a client
// Config. Relative file paths in the kubeconfig are resolved against dir.
func (kc *Kubeconfig) ClientConfig(ctxName, dir string) (*Config, error) {
	if ctxName == "" {
		ctxName = kc.CurrentContext
	}
	if ctxName == "" {
		return nil, errors.New("kubeconfig has no current-context; name a context")
	}
	kctx, ok := findNamed(kc.Contexts, ctxName, func(c NamedContext) string { return c.Name })
	if !ok {
		return nil, fmt.Errorf("context %q not found in kubeconfig", ctxName)
	}
	cluster, ok := findNamed(kc.Clusters, kctx.Context.Cluster, func(c NamedCluster) string { return c.Name })
	if !ok {
		return nil, fmt.Errorf("cluster %q of context %q not found in kubeconfig", kctx.Context.Cluster, ctxName)
	}
	if cluster.Cluster.Server == "" {
		return nil, fmt.Errorf("cluster %q has no server", cluster.Name)
	}
	cfg := &Config{
		Server:    cluster.Cluster.Server,
		CAData:    cluster.Cluster.CertificateAuthorityData,
		Insecure:  cluster.Cluster.InsecureSkipTLSVerify,
		Namespace: kctx.Context.Namespace,
	}
	if len(cfg.CAData) == 0 && cluster.Cluster.CertificateAuthority != "" {
		ca, err := os.ReadFile(resolvePath(dir, cluster.Cluster.CertificateAuthority))
		if err != nil {
			return nil, fmt.Errorf("cluster %q: reading certificate-authority: %w", cluster.Name, err)
		}
		cfg.CAData = ca
	}
	// A context without a user is allowed: the server then sees an anonymous client.
	if kctx.Context.User != "" {
		user, ok := findNamed(kc.Users, kctx.Context.User, func(u NamedUser) string { return u.Name })
		if !ok {
			return nil, fmt.Errorf("user %q of context %q not found in kubeconfig", kctx.Context.User, ctxName)
		}
		cfg.Token = user.User.Token
		if cfg.Token == "" && user.User.TokenFile != "" {
			token, err := os.ReadFile(resolvePath(dir, user.User.TokenFile))
			if err != nil {
				return nil, fmt.Errorf("user %q: reading tokenFile: %w", user.Name, err)
			}
			cfg.Token = strings.TrimSpace(string(token))
		}
	}
	return cfg, nil
}

// LoadKubeconfig reads a kubeconfig file (current-context, or ctxName when
// non-empty): server, certificate-authority(-data), insecure-skip-tls-verify,
// token or tokenFile, and the context's namespace.
func LoadKubeconfig(path, ctxName string) (*Config, error) {
	kc, err := ReadKubeconfig(path)
	if err != nil {
		return nil, err
	}
	cfg, err := kc.ClientConfig(ctxName, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// WriteKubeconfig writes a kubeconfig for cfg with mode 0600, replacing the
// file at path. It holds one cluster, one user and one context; the context
// is named after the cluster and is the current one.
func WriteKubeconfig(path string, cfg *Config, clusterName, userName string) error {
	cluster := Cluster{Server: cfg.Server, CertificateAuthorityData: cfg.CAData}
	if cfg.Insecure {
		// kubectl refuses a cluster with both a CA and insecure-skip-tls-verify.
		cluster = Cluster{Server: cfg.Server, InsecureSkipTLSVerify: true}
	}
	kc := &Kubeconfig{
		APIVersion: "v1",
		Kind:       "Config",
		Clusters:   []NamedCluster{{Name: clusterName, Cluster: cluster}},
		Users:      []NamedUser{{Name: userName, User: User{Token: cfg.Token}}},
		Contexts: []NamedContext{{Name: clusterName, Context: Context{
			Cluster: clusterName, User: userName, Namespace: cfg.Namespace,
		}}},
		CurrentContext: clusterName,
	}
	return kc.Write(path)
}

func findNamed[E any](entries []E, name string, nameOf func(E) string) (E, bool) {
	for _, e := range entries {
		if nameOf(e) == name {
			return e, true
		}
	}
	var zero E
	return zero, false
}

func resolvePath(dir, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// writeFileAtomic writes data to a temporary file beside path and renames it
// over path, so the file is never seen half-written and always has perm,
// whatever mode an existing file had. A symlink at path is followed, so a
// linked kubeconfig stays linked.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
