package podproxy_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"kubelite/api/client"
	"kubelite/apiserver/podproxy/podproxytest"
	"kubelite/nodeagent/runtime"
)

// kubectl runs the real kubectl against a cluster, with a kubeconfig of
// its own and an empty home, so nothing of the machine's is used.
type kubectl struct {
	t          *testing.T
	path, home string
	kubeconfig string
}

func newKubectl(t *testing.T, cluster *podproxytest.Cluster) *kubectl {
	t.Helper()
	path, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("the real kubectl (v1.32) is needed to check compatibility, and it is not on PATH: %v\n"+
			"install it (e.g. `apt-get install kubectl` from the Kubernetes apt repository) and run again", err)
	}
	home := t.TempDir()
	kubeconfig := filepath.Join(home, "kubeconfig")
	cfg := &client.Config{Server: cluster.API.URL, Token: cluster.API.Tokens.Admin, CAData: cluster.API.CAPEM}
	if err := client.WriteKubeconfig(kubeconfig, cfg, "kubelite", "admin"); err != nil {
		t.Fatal(err)
	}
	return &kubectl{t: t, path: path, home: home, kubeconfig: kubeconfig}
}

func (k *kubectl) run(stdin string, args ...string) (stdout, stderr string, code int) {
	k.t.Helper()
	cmd := exec.CommandContext(k.t.Context(), k.path, append([]string{"--kubeconfig", k.kubeconfig}, args...)...)
	cmd.Env = []string{"HOME=" + k.home, "PATH=" + os.Getenv("PATH")}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	case err != nil:
		k.t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

func TestRealKubectl(t *testing.T) {
	cluster := podproxytest.Start(t)
	httpd := cluster.RunningPod(t, pod("web", "httpd"))["httpd"]
	httpd.WriteLog(runtime.Stdout, "first", "second")
	kubectl := newKubectl(t, cluster)

	stdout, stderr, code := kubectl.run("", "exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
	if stdout != "out\n" || !strings.Contains(stderr, "err\n") || !strings.Contains(stderr, "command terminated with exit code 3") || code != 3 {
		t.Errorf("kubectl exec with exit 3: code %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}

	stdout, stderr, code = kubectl.run("hello\n", "exec", "-i", "web", "--", "tr", "a-z", "A-Z")
	if stdout != "HELLO\n" || code != 0 {
		t.Errorf("kubectl exec -i: code %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}

	stdout, stderr, code = kubectl.run("", "logs", "web", "--tail=1")
	if stdout != "second\n" || code != 0 {
		t.Errorf("kubectl logs --tail=1: code %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}

	_, stderr, code = kubectl.run("", "exec", "web", "-c", "db", "--", "id")
	if code == 0 || !strings.Contains(stderr, "db") {
		t.Errorf("kubectl exec into a container the pod lacks: code %d, stderr %q", code, stderr)
	}
}
