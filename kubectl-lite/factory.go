package kubectl

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"kubelite/api"
	"kubelite/api/client"
)

// localAdminKubeconfig is the admin kubeconfig that `kubelite server` writes
// under its default --data-dir: the last place looked for credentials, so
// that kubectl-lite works out of the box on the server's own machine.
const localAdminKubeconfig = "/var/lib/kubelite/admin.kubeconfig"

// clientVersion is the kubectl release whose behaviour kubectl-lite follows.
const clientVersion = "v1.32.0+kubelite"

// configFlags are the global connection flags (kubectl's ConfigFlags).
type configFlags struct {
	kubeconfig string
	server     string
	token      string
	insecure   bool
	namespace  string
	context    string
}

func (c *configFlags) addTo(flags *pflag.FlagSet) {
	flags.StringVar(&c.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file to use for CLI requests.")
	flags.StringVarP(&c.server, "server", "s", "", "The address and port of the Kubernetes API server")
	flags.StringVar(&c.token, "token", "", "Bearer token for authentication to the API server")
	flags.BoolVar(&c.insecure, "insecure-skip-tls-verify", false, "If true, the server's certificate will not be checked for validity. This will make your HTTPS connections insecure")
	flags.StringVarP(&c.namespace, "namespace", "n", "", "If present, the namespace scope for this CLI request")
	flags.StringVar(&c.context, "context", "", "The name of the kubeconfig context to use")
}

// environment is what commands read from the machine, replaceable in tests.
type environment struct {
	now     func() time.Time
	getenv  func(string) string
	homeDir func() (string, error)
	// adminKubeconfig is the local server's kubeconfig, the last resort.
	adminKubeconfig string
}

func osEnvironment() environment {
	return environment{now: time.Now, getenv: os.Getenv, homeDir: os.UserHomeDir, adminKubeconfig: localAdminKubeconfig}
}

// factory gives commands what they share: the streams, the clock, the
// scheme, and a client and default namespace built once from the flags
// (kubectl's cmdutil.Factory).
type factory struct {
	streams IOStreams
	env     environment
	now     func() time.Time
	scheme  *api.Scheme
	flags   configFlags

	mu       sync.Mutex
	loaded   bool
	config   *client.Config
	ctxNS    string // the kubeconfig context's namespace
	client   *client.Client
	loadErr  error
	warnings *warningPrinter
}

func newFactory(streams IOStreams, env environment) *factory {
	return &factory{
		streams:  streams,
		env:      env,
		now:      env.now,
		scheme:   api.NewScheme(),
		warnings: &warningPrinter{out: streams.ErrOut, seen: map[string]bool{}},
	}
}

// Client returns the API client, built on first use.
func (f *factory) Client() (*client.Client, error) {
	if err := f.load(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.client == nil {
		c, err := client.New(f.config)
		if err != nil {
			return nil, fmt.Errorf("creating the API client: %w", err)
		}
		f.client = c
	}
	return f.client, nil
}

// ServerURL is the API server address commands print (cluster-info).
func (f *factory) ServerURL() (string, error) {
	if err := f.load(); err != nil {
		return "", err
	}
	return f.config.Server, nil
}

// Namespace is the namespace to work in and whether the user chose it
// with -n: the flag, else the kubeconfig context's namespace, else default.
func (f *factory) Namespace() (ns string, explicit bool) {
	if f.flags.namespace != "" {
		return f.flags.namespace, true
	}
	// Without a usable kubeconfig the namespace is "default"; the missing
	// connection is reported when the client is needed.
	if err := f.load(); err == nil && f.ctxNS != "" {
		return f.ctxNS, false
	}
	return api.NamespaceDefault, false
}

// load resolves the kubeconfig and applies the flag overrides, once.
func (f *factory) load() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.loaded {
		return f.loadErr
	}
	f.loaded = true
	f.config, f.ctxNS, f.loadErr = f.resolveConfig()
	return f.loadErr
}

func (f *factory) resolveConfig() (*client.Config, string, error) {
	path, err := f.kubeconfigPath()
	if err != nil {
		return nil, "", err
	}
	cfg := &client.Config{}
	ctxNS := ""
	switch {
	case path != "":
		loaded, err := client.LoadKubeconfig(path, f.flags.context)
		switch {
		case err == nil:
			cfg, ctxNS = loaded, loaded.Namespace
		case f.flags.server == "":
			return nil, "", fmt.Errorf("loading kubeconfig %s: %w", path, err)
		}
		// With --server the flags say where to connect, so a kubeconfig
		// without a usable context is not an error (as in kubectl).
	case f.flags.server == "":
		return nil, "", fmt.Errorf("no kubeconfig found and no --server given: looked at --kubeconfig, $KUBECONFIG, ~/.kube/config and %s", localAdminKubeconfig)
	}
	if f.flags.server != "" {
		cfg.Server = f.flags.server
	}
	if f.flags.token != "" {
		cfg.Token = f.flags.token
	}
	if f.flags.insecure {
		cfg.Insecure = true
	}
	cfg.UserAgent = "kubectl-lite/" + clientVersion
	cfg.OnWarning = f.warnings.print
	return cfg, ctxNS, nil
}

// kubeconfigPath finds the kubeconfig to use: --kubeconfig, then the first
// existing file of $KUBECONFIG, then ~/.kube/config, then the local
// server's admin kubeconfig. "" means none exists.
func (f *factory) kubeconfigPath() (string, error) {
	if f.flags.kubeconfig != "" {
		if _, err := os.Stat(f.flags.kubeconfig); err != nil {
			return "", fmt.Errorf("stat %s: %w", f.flags.kubeconfig, err)
		}
		return f.flags.kubeconfig, nil
	}
	var candidates []string
	if env := f.env.getenv("KUBECONFIG"); env != "" {
		candidates = append(candidates, filepath.SplitList(env)...)
	}
	if home, err := f.env.homeDir(); err == nil && home != "" {
		candidates = append(candidates, filepath.Join(home, ".kube", "config"))
	}
	candidates = append(candidates, f.env.adminKubeconfig)
	for _, p := range candidates {
		if p == "" {
			continue
		}
		_, err := os.Stat(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("reading kubeconfig: %w", err)
		}
	}
	return "", nil
}

// warningPrinter prints each distinct server warning once, as kubectl
// does ("Warning: apps/v1beta1 Deployment is deprecated ...").
type warningPrinter struct {
	mu   sync.Mutex
	out  io.Writer
	seen map[string]bool
}

func (w *warningPrinter) print(msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen[msg] {
		return
	}
	w.seen[msg] = true
	fmt.Fprintf(w.out, "Warning: %s\n", msg)
}
