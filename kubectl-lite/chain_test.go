package kubectl

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/apiserver/podproxy/podproxytest"
)

// runAsCLI, set in the environment, makes the test binary be kubectl-lite
// itself: the terminal tests start it as a child process with a terminal
// of its own, as a user's shell would.
const runAsCLI = "KUBECTL_LITE_TEST_RUN_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(runAsCLI) == "1" {
		os.Exit(runCLI())
	}
	os.Exit(m.Run())
}

// runCLI is what main does for kubectl-lite.
func runCLI() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := NewCommand(IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}).ExecuteContext(ctx)
	return ExitCode(err)
}

// chain is the whole path of logs, exec and attach: a real API server, its
// pod proxy, a node agent's API on loopback with the fake runtime of local
// processes, and a kubeconfig for the admin.
type chain struct {
	*podproxytest.Cluster
	kubeconfig string
}

func startChain(t *testing.T) *chain {
	t.Helper()
	cluster := podproxytest.Start(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := &client.Config{Server: cluster.API.URL, Token: cluster.API.Tokens.Admin, CAData: cluster.API.CAPEM}
	if err := client.WriteKubeconfig(kubeconfig, cfg, "kubelite", "admin"); err != nil {
		t.Fatal(err)
	}
	return &chain{Cluster: cluster, kubeconfig: kubeconfig}
}

// run runs kubectl-lite in this process on stdin and returns what it
// printed and its exit code.
func (c *chain) run(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut syncBuffer
	cmd := newRootCommand(IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}, testEnvironment(t))
	cmd.SetArgs(append([]string{"--kubeconfig", c.kubeconfig}, args...))
	err := cmd.ExecuteContext(t.Context())
	return out.String(), errOut.String(), ExitCode(err)
}

// syncBuffer is a strings.Builder that several goroutines may write.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newPod is a Pod of the given containers, in the default namespace.
func newPod(name string, labels map[string]string, containers ...string) *api.Pod {
	pod := &api.Pod{ObjectMeta: api.ObjectMeta{Name: name, Namespace: api.NamespaceDefault, Labels: labels}}
	for _, c := range containers {
		pod.Spec.Containers = append(pod.Spec.Containers, api.Container{Name: c, Image: "busybox"})
	}
	return pod
}

// podGone reports whether the Pod is deleted, or being deleted.
func podGone(t *testing.T, c *chain, name string) bool {
	t.Helper()
	pod, err := client.For[api.Pod](c.API.Admin, api.NamespaceDefault).Get(context.Background(), name)
	if api.IsNotFound(err) {
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	return pod.DeletionTimestamp != nil
}
