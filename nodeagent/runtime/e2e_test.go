package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"

	"kubelite/nodeagent/images"
)

func withNS(ctx context.Context, ns string) context.Context {
	return namespaces.WithNamespace(ctx, ns)
}

// podFiles writes the files an agent would bind-mount into a Pod's
// containers and returns their paths.
func podFiles(t *testing.T) (resolvConf, hosts string) {
	dir := t.TempDir()
	resolvConf = filepath.Join(dir, "resolv.conf")
	hosts = filepath.Join(dir, "hosts")
	os.WriteFile(resolvConf, []byte("nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"), 0o644)
	os.WriteFile(hosts, []byte("127.0.0.1 localhost\n10.244.0.5 web-1\n"), 0o644)
	return resolvConf, hosts
}

func execOutput(t *testing.T, r *Runtime, id string, cmd ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code, err := r.Exec(context.Background(), id, ExecConfig{Cmd: cmd, Stdout: &out, Stderr: &errOut})
	if err != nil {
		t.Fatalf("exec %q: %v", cmd, err)
	}
	return out.String(), errOut.String(), code
}

// The tutorial's httpd Pod: runs in a network namespace the test made, with
// the Pod's resolv.conf and hosts, answers "It works!" over that namespace,
// logs each request in CRI format, and, as PID 1 ignoring SIGTERM, is
// stopped through SIGKILL after the grace period. Removing it leaves
// nothing behind.
func TestE2EHTTPDInPodNetwork(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	netns, netnsPath := newNetNS(t)
	resolvConf, hosts := podFiles(t)
	logPath := filepath.Join(t.TempDir(), "pods", "web-1", "httpd", "0.log")

	img, err := r.EnsureImage(ctx, "httpd", PullAlways) // imported from a tarball: no registry asked
	if err != nil {
		t.Fatal(err)
	}
	if img.Name != "docker.io/library/httpd:latest" || !strings.HasPrefix(img.Digest, "sha256:") {
		t.Errorf("EnsureImage = %+v", img)
	}
	id, err := r.CreateContainer(ctx, ContainerSpec{
		PodUID: "uid-1", PodName: "web-1", PodNamespace: "default", Name: "httpd",
		Image:          "httpd",
		Hostname:       "web-1",
		NetNSPath:      netnsPath,
		ResolvConfPath: resolvConf,
		HostsPath:      hosts,
		LogPath:        logPath,
		Labels:         map[string]string{"run": "httpd"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := r.Status(ctx, id); err != nil || st.State != StateCreated {
		t.Fatalf("status before start = %+v, %v; want created", st, err)
	}
	if err := r.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	st, err := r.Status(ctx, id)
	if err != nil || st.State != StateRunning || st.Pid == 0 || st.StartedAt.IsZero() {
		t.Fatalf("status after start = %+v, %v; want running with a pid", st, err)
	}

	var page string
	eventually(t, 10*time.Second, "httpd answers in the pod's network namespace", func() error {
		// (busybox 1.35's wget crashes with -T: the context is the timeout)
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", netns, images.DefaultBusybox, "wget", "-q", "-O-", "http://127.0.0.1:80/").CombinedOutput()
		page = string(out)
		return err
	})
	if !strings.Contains(page, "It works!") {
		t.Errorf("page = %q; want It works!", page)
	}
	eventually(t, 5*time.Second, "httpd logs the request", func() error {
		for _, line := range readLog(t, logPath) {
			if strings.HasPrefix(line, "stderr: ") && strings.Contains(line, "url:/") {
				return nil
			}
		}
		return fmt.Errorf("log: %q", readLog(t, logPath))
	})

	if out, _, _ := execOutput(t, r, id, "cat", "/etc/resolv.conf"); !strings.Contains(out, "nameserver 10.96.0.10") {
		t.Errorf("/etc/resolv.conf in the container = %q", out)
	}
	if out, _, _ := execOutput(t, r, id, "cat", "/etc/hosts"); !strings.Contains(out, "web-1") {
		t.Errorf("/etc/hosts in the container = %q", out)
	}
	if out, _, _ := execOutput(t, r, id, "hostname"); strings.TrimSpace(out) != "web-1" {
		t.Errorf("hostname = %q", out)
	}

	grace := 300 * time.Millisecond
	start := time.Now()
	if err := r.Stop(ctx, id, grace); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	st, err = r.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateExited || st.ExitCode != 128+int(syscall.SIGKILL) || st.FinishedAt.IsZero() {
		t.Errorf("status after stop = %+v; want exited with 137 (SIGKILL)", st)
	}
	if took < grace {
		t.Errorf("Stop took %v, less than the %v grace period", took, grace)
	}
	if err := r.Stop(ctx, id, grace); err != nil {
		t.Errorf("Stop of a stopped container: %v", err)
	}

	if err := r.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	assertGone(t, r, id)
	if err := r.Remove(ctx, id); err != nil {
		t.Errorf("Remove of a removed container: %v", err)
	}
	if _, err := os.Stat(logPath); err != nil {
		t.Errorf("the log file should stay for the agent: %v", err)
	}
}

// assertGone checks that nothing of container id is left: no container,
// no task, no snapshot, no FIFOs.
func assertGone(t *testing.T, r *Runtime, id string) {
	t.Helper()
	ctx := r.withNamespace(context.Background())
	if _, err := r.Status(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Status after Remove: %v; want ErrNotFound", err)
	}
	if _, err := r.client.SnapshotService(r.snapshotter).Stat(ctx, id); !isNotFound(err) {
		t.Errorf("snapshot %s still there: %v", id, err)
	}
	if _, err := r.client.TaskService().Get(ctx, &tasks.GetRequest{ContainerID: id}); !isNotFound(errdefs.FromGRPC(err)) {
		t.Errorf("task %s still there: %v", id, err)
	}
	if _, err := os.Stat(r.fifoDir(id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("FIFO folder still there: %v", err)
	}
}

// A container that exits at once is seen with its exit code and its
// output, stdout and stderr apart, is in the log file.
func TestE2EExitCodesAndLogs(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	logDir := t.TempDir()
	tests := []struct {
		name     string
		command  []string
		wantCode int
		wantLog  []string
	}{
		{"true", []string{"true"}, 0, nil},
		{"exit-3", []string{"sh", "-c", "echo out; echo err >&2; printf 'no newline'; exit 3"}, 3,
			[]string{"stdout: out", "stderr: err", "stdout: no newline"}},
		{"child-killed", []string{"sh", "-c", "exec 2>/dev/null; sleep 60 & kill -9 $!; wait $!"}, 137, nil},
	}
	for _, tt := range tests {
		logPath := filepath.Join(logDir, tt.name+".log")
		id, err := r.CreateContainer(ctx, ContainerSpec{PodName: "p", PodNamespace: "default", Name: tt.name, Image: "busybox", Command: tt.command, LogPath: logPath})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		st, err := r.Wait(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != StateExited || st.ExitCode != tt.wantCode || st.FinishedAt.Before(st.StartedAt) {
			t.Errorf("%s: status = %+v; want exited with %d", tt.name, st, tt.wantCode)
		}
		// stdout and stderr are copied concurrently: each stream keeps its
		// order in the log, but their lines may interleave either way.
		if got := readLog(t, logPath); !sameLinesPerStream(got, tt.wantLog) {
			t.Errorf("%s: log = %q; want %q (in any interleaving of the streams)", tt.name, got, tt.wantLog)
		}
		if err := r.Start(ctx, id); err == nil {
			t.Errorf("%s: a second Start succeeded; a container runs once", tt.name)
		}
	}

	if _, err := r.CreateContainer(ctx, ContainerSpec{Name: "x", Image: "nosuchimage"}); err == nil {
		t.Error("CreateContainer with a missing image succeeded")
	}

	// A command that does not exist fails Start, and leaves the container
	// created (not running, no exit recorded) and removable.
	id, err := r.CreateContainer(ctx, ContainerSpec{Name: "typo", Image: "busybox", Command: []string{"/no/such/command"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, id); err == nil || !strings.Contains(err.Error(), "/no/such/command") {
		t.Errorf("Start of a missing command: %v; want an error naming it", err)
	}
	if st, _ := r.Status(ctx, id); st.State != StateCreated {
		t.Errorf("after a failed start: %+v; want created", st)
	}
	if err := r.Start(ctx, "nosuchcontainer"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Start of a missing container: %v; want ErrNotFound", err)
	}
}

// A process that handles SIGTERM stops within the grace period with its
// own exit code.
func TestE2EStopGraceful(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	logPath := filepath.Join(t.TempDir(), "0.log")
	id, err := r.CreateContainer(ctx, ContainerSpec{Name: "trap", Image: "busybox", LogPath: logPath,
		Command: []string{"sh", "-c", `trap 'echo bye; exit 0' TERM; echo ready; while true; do sleep 0.1; done`}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the trap is set", func() error {
		if slices.Contains(readLog(t, logPath), "stdout: ready") {
			return nil
		}
		return errors.New("not ready")
	})
	if err := r.Stop(ctx, id, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	st, _ := r.Status(ctx, id)
	if st.State != StateExited || st.ExitCode != 0 {
		t.Errorf("status = %+v; want exited with 0 from the TERM trap", st)
	}
	if got := readLog(t, logPath); !slices.Equal(got, []string{"stdout: ready", "stdout: bye"}) {
		t.Errorf("log = %q", got)
	}
}

func startSleeper(t *testing.T, r *Runtime, spec ContainerSpec) string {
	t.Helper()
	if spec.Name == "" {
		spec.Name = "sleeper"
	}
	spec.Image = "busybox"
	if spec.Command == nil {
		spec.Command = []string{"sleep", "3600"}
	}
	id, err := r.CreateContainer(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	return id
}

// Exec returns the command's output on separate streams and its exit
// code, feeds stdin, and runs with a TTY.
func TestE2EExec(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	id := startSleeper(t, r, ContainerSpec{Env: []string{"GREETING=hello"}, WorkingDir: "/tmp"})

	stdout, stderr, code := execOutput(t, r, id, "sh", "-c", `echo "$GREETING from $(pwd)"; echo oops >&2; exit 7`)
	if stdout != "hello from /tmp\n" || stderr != "oops\n" || code != 7 {
		t.Errorf("exec = %q, %q, %d; want hello from /tmp, oops, 7", stdout, stderr, code)
	}

	var out bytes.Buffer
	code, err := r.Exec(ctx, id, ExecConfig{Cmd: []string{"tr", "a-z", "A-Z"}, Stdin: strings.NewReader("shout\n"), Stdout: &out})
	if err != nil || code != 0 || out.String() != "SHOUT\n" {
		t.Errorf("exec with stdin = %q, %d, %v", out.String(), code, err)
	}

	out.Reset()
	code, err = r.Exec(ctx, id, ExecConfig{Cmd: []string{"sh", "-c", "tty; exit 2"}, TTY: true, Stdout: &out})
	if err != nil || code != 2 || !strings.Contains(out.String(), "/dev/pts/") {
		t.Errorf("exec with a TTY = %q, %d, %v; want a /dev/pts terminal and 2", out.String(), code, err)
	}

	if _, err := r.Exec(ctx, id, ExecConfig{Cmd: []string{"/no/such/command"}}); err == nil {
		t.Error("exec of a missing command succeeded")
	}

	// The deadline may pass while the command runs, or (on a busy
	// machine) while containerd is still setting it up: either way the
	// caller sees DeadlineExceeded.
	for _, d := range []time.Duration{300 * time.Millisecond, time.Millisecond, 20 * time.Millisecond} {
		timeout, cancel := context.WithTimeout(ctx, d)
		if _, err := r.Exec(timeout, id, ExecConfig{Cmd: []string{"sleep", "60"}}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("exec past a deadline of %v: %v; want DeadlineExceeded", d, err)
		}
		cancel()
	}
	if _, err := r.Exec(ctx, "nosuchcontainer", ExecConfig{Cmd: []string{"true"}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("exec in a missing container: %v; want ErrNotFound", err)
	}
}

// Attach talks to a container's shell as `kubectl run -it` does: with a
// TTY, the shell's own `exit` ends it; without one, closing stdin
// (stdinOnce) does.
func TestE2EAttach(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	tests := []struct {
		tty        bool
		input      string
		closeStdin bool
		wantCode   int
	}{
		{tty: false, input: "echo attached-$((40+2))\n", closeStdin: true, wantCode: 0},
		{tty: true, input: "echo attached-$((40+2))\nexit 5\n", closeStdin: false, wantCode: 5},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("tty=%v", tt.tty), func(t *testing.T) {
			id, err := r.CreateContainer(ctx, ContainerSpec{Name: "shell", Image: "busybox", Stdin: true, TTY: tt.tty,
				LogPath: filepath.Join(t.TempDir(), "0.log")})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Start(ctx, id); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			err = r.Attach(ctx, id, AttachConfig{
				Stdin:      strings.NewReader(tt.input),
				CloseStdin: tt.closeStdin,
				Stdout:     &out,
				Stderr:     &out,
			})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "attached-42") {
				t.Errorf("output = %q; want attached-42", out.String())
			}
			if st, _ := r.Status(ctx, id); st.State != StateExited || st.ExitCode != tt.wantCode {
				t.Errorf("status = %+v; want exited with %d", st, tt.wantCode)
			}
		})
	}
}

// An agent restart: a new Runtime on the same namespace finds the running
// container with its labels (no duplicate needed), picks up its output
// again, records the exit of one that died meanwhile, and can stop it.
func TestE2EReadoptAfterAgentRestart(t *testing.T) {
	l := requireLab(t)
	ctx := context.Background()
	namespace, stateDir := testNamespace(t), t.TempDir()
	logPath := filepath.Join(t.TempDir(), "0.log")

	first := connect(t, namespace, stateDir)
	if _, err := first.ImportDir(ctx, l.imagesDir); err != nil {
		t.Fatal(err)
	}
	ticker := startSleeper(t, first, ContainerSpec{PodUID: "uid-7", PodName: "ticker", PodNamespace: "default", Name: "tick", Attempt: 2,
		LogPath: logPath, Labels: map[string]string{"app": "ticker"},
		Command: []string{"sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"}})
	victim := startSleeper(t, first, ContainerSpec{Name: "victim"})
	victimStatus, _ := first.Status(ctx, victim)
	before, _ := first.Status(ctx, ticker)
	first.Close() // the agent goes away; its containers do not

	if err := syscall.Kill(int(victimStatus.Pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	linesWhileDown := len(readLog(t, logPath))

	second := connect(t, namespace, stateDir)
	t.Cleanup(func() { removeAll(t, second) })
	list, err := second.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var found *Container
	for i := range list {
		if list[i].ID == ticker {
			found = &list[i]
		}
	}
	if len(list) != 2 || found == nil {
		t.Fatalf("List = %+v; want the ticker and the victim", list)
	}
	if found.PodUID != "uid-7" || found.PodName != "ticker" || found.Name != "tick" || found.Attempt != 2 ||
		found.Labels["app"] != "ticker" || found.Image != "docker.io/library/busybox:latest" || found.LogPath != logPath {
		t.Errorf("adopted container = %+v", found)
	}
	if found.Status.State != StateRunning || found.Status.Pid != before.Pid {
		t.Errorf("adopted status = %+v; want still running as pid %d", found.Status, before.Pid)
	}
	if st, _ := second.Wait(ctx, victim); st.State != StateExited || st.ExitCode != 137 {
		t.Errorf("container killed while the agent was down: %+v; want exited with 137", st)
	}

	eventually(t, 5*time.Second, "output after the restart reaches the log", func() error {
		if n := len(readLog(t, logPath)); n < linesWhileDown+5 {
			return fmt.Errorf("%d lines, %d before", n, linesWhileDown)
		}
		return nil
	})
	if err := second.Stop(ctx, ticker, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if st, _ := second.Status(ctx, ticker); st.State != StateExited {
		t.Errorf("after Stop: %+v", st)
	}
	lines := readLog(t, logPath)
	for i, line := range lines {
		if line != fmt.Sprintf("stdout: tick %d", i) {
			t.Fatalf("log line %d = %q; want tick %d (nothing lost or doubled)", i, line, i)
		}
	}
}

// Agents sharing one containerd do not see each other's containers.
func TestE2ENamespacesAreSeparate(t *testing.T) {
	ctx := context.Background()
	mine := newRuntime(t)
	id := startSleeper(t, mine, ContainerSpec{})

	other := connect(t, testNamespace(t)+"-other", t.TempDir())
	if list, err := other.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("the other agent lists %+v, %v; want nothing", list, err)
	}
	if _, err := other.Status(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("the other agent sees container %s: %v", id, err)
	}
	if err := other.Remove(ctx, id); err != nil {
		t.Errorf("Remove in the other namespace: %v", err)
	}
	if st, _ := mine.Status(ctx, id); st.State != StateRunning {
		t.Errorf("after the other agent's Remove: %+v; want still running", st)
	}
}

// When containerd dies, Supervise restarts it; the container keeps running
// in its shim and its exit is still seen.
func TestE2EContainerdRestart(t *testing.T) {
	l := requireLab(t)
	r := newRuntime(t)
	ctx := context.Background()
	id := startSleeper(t, r, ContainerSpec{})

	oldPid := l.containerd.Pid()
	if err := syscall.Kill(oldPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "containerd is restarted", func() error {
		if l.containerd.Pid() == oldPid {
			return errors.New("same pid")
		}
		_, err := r.Status(ctx, id)
		return err
	})
	if st, _ := r.Status(ctx, id); st.State != StateRunning {
		t.Fatalf("after the containerd restart: %+v; want running", st)
	}
	if err := r.Stop(ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.Status(ctx, id); st.State != StateExited || st.ExitCode != 137 {
		t.Errorf("after Stop: %+v; want exited with 137 (sleep ignores nothing, but PID 1 has no TERM handler)", st)
	}
}

// ImportDir imports OCI and docker-archive tarballs, skips unchanged ones,
// and reports bad ones without giving up on the rest.
func TestE2EImportDir(t *testing.T) {
	l := requireLab(t)
	r := connect(t, testNamespace(t), t.TempDir())
	ctx := context.Background()

	imported, err := r.ImportDir(ctx, l.imagesDir)
	if err != nil {
		t.Fatal(err)
	}
	if got := imageNames(imported); !slices.Equal(got, []string{"docker.io/library/busybox:latest", "docker.io/library/httpd:latest"}) {
		t.Errorf("imported %q", got)
	}
	// `ctr images import` takes the same tarballs without extra flags.
	for _, file := range []string{"busybox.tar", "httpd.tar"} {
		run(t, "ctr", "--address", l.containerd.Address(), "--namespace", testNamespace(t)+"-ctr", "images", "import", filepath.Join(l.imagesDir, file))
	}
	listed := run(t, "ctr", "--address", l.containerd.Address(), "--namespace", testNamespace(t)+"-ctr", "images", "list", "--quiet")
	if got := strings.Fields(listed); !slices.Equal(got, []string{"docker.io/library/busybox:latest", "docker.io/library/httpd:latest"}) {
		t.Errorf("ctr images list after ctr import = %q", got)
	}

	if again, err := r.ImportDir(ctx, l.imagesDir); err != nil || len(again) != 0 {
		t.Errorf("second ImportDir = %v, %v; want nothing new", again, err)
	}
	if imgs, err := r.ImportDir(ctx, filepath.Join(t.TempDir(), "missing")); err != nil || imgs != nil {
		t.Errorf("ImportDir of a missing folder = %v, %v", imgs, err)
	}

	// A docker-archive (docker save) tarball, and a broken one beside it.
	dir := t.TempDir()
	dockerArchive(t, filepath.Join(l.imagesDir, "busybox.tar"), filepath.Join(dir, "old-busybox.tar"))
	os.WriteFile(filepath.Join(dir, "broken.tar"), []byte("not a tarball"), 0o644)
	other := connect(t, testNamespace(t)+"-docker", t.TempDir())
	imported, err = other.ImportDir(ctx, dir)
	if err == nil || !strings.Contains(err.Error(), "broken.tar") {
		t.Errorf("ImportDir error = %v; want one naming broken.tar", err)
	}
	if got := imageNames(imported); !slices.Equal(got, []string{"docker.io/library/busybox:latest"}) {
		t.Errorf("imported from a docker-archive: %q", got)
	}

	if _, err := other.EnsureImage(ctx, "httpd", PullNever); !errors.Is(err, ErrImageNeverPull) {
		t.Errorf("EnsureImage(Never) of a missing image: %v; want ErrImageNeverPull", err)
	}
	if _, err := other.EnsureImage(ctx, "busybox", PullNever); err != nil {
		t.Errorf("EnsureImage(Never) of an imported image: %v", err)
	}
	if _, err := other.EnsureImage(ctx, "Bad Name", PullIfNotPresent); !errors.Is(err, ErrInvalidImageName) {
		t.Errorf("EnsureImage of a bad name: %v; want ErrInvalidImageName", err)
	}
	if _, err := other.EnsureImage(ctx, "busybox", "Sometimes"); err == nil {
		t.Error("EnsureImage with an unknown policy succeeded")
	}
}

// dockerArchive rewrites an OCI layout tarball as docker save would: only
// manifest.json and the blobs, no oci-layout or index.json.
func dockerArchive(t *testing.T, from, to string) {
	t.Helper()
	run(t, "sh", "-c", fmt.Sprintf("mkdir -p %[1]s.d && tar -xf %[2]s -C %[1]s.d && rm %[1]s.d/oci-layout %[1]s.d/index.json && tar -cf %[1]s -C %[1]s.d . && rm -r %[1]s.d", to, from))
}

// Pulls from a real registry (Debian's docker-registry) on loopback: pull
// when missing, fall back to the local image when the registry is gone,
// and classify failures as ErrImagePull.
func TestE2EPullFromRegistry(t *testing.T) {
	l := requireLab(t)
	ctx := context.Background()
	registry := startRegistry(t)

	// Seed the registry from another namespace, as `ctr push` would.
	seed := connect(t, testNamespace(t)+"-seed", t.TempDir())
	if _, err := seed.ImportFile(ctx, filepath.Join(l.imagesDir, "busybox.tar")); err != nil {
		t.Fatal(err)
	}
	ref := registry.host + "/library/busybox:1.36"
	pushImage(t, seed, "docker.io/library/busybox:latest", ref)

	r := connect(t, testNamespace(t), t.TempDir())
	t.Cleanup(func() { removeAll(t, r) })
	img, err := r.EnsureImage(ctx, ref, PullIfNotPresent)
	if err != nil {
		t.Fatal(err)
	}
	if img.Name != ref {
		t.Errorf("pulled %+v", img)
	}
	id, err := r.CreateContainer(ctx, ContainerSpec{Name: "pulled", Image: ref, Command: []string{"sh", "-c", "exit 9"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.Wait(ctx, id); st.ExitCode != 9 {
		t.Errorf("container from the pulled image: %+v", st)
	}

	_, err = r.EnsureImage(ctx, registry.host+"/library/nosuch:1", PullIfNotPresent)
	if !errors.Is(err, ErrImagePull) || ImageErrorReason(err) != "ErrImagePull" {
		t.Errorf("pull of a missing image: %v; want ErrImagePull", err)
	}

	registry.stop()
	if _, err := r.EnsureImage(ctx, ref, PullAlways); err != nil {
		t.Errorf("EnsureImage(Always) with the registry gone and the image present: %v", err)
	}
	if _, err := r.EnsureImage(ctx, registry.host+"/library/other:1", PullAlways); !errors.Is(err, ErrImagePull) {
		t.Errorf("pull from a registry that is gone: %v; want ErrImagePull", err)
	}
}

type testRegistry struct {
	host string
	stop func()
}

// startRegistry runs Debian's docker-registry on a free loopback port.
func startRegistry(t *testing.T) *testRegistry {
	t.Helper()
	binary, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatalf("docker-registry is missing: install Debian's docker-registry package (apt-get install docker-registry): %v", err)
	}
	dir := t.TempDir()
	host := "127.0.0.1:" + freePort(t)
	config := filepath.Join(dir, "config.yml")
	os.WriteFile(config, []byte(fmt.Sprintf(`version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
`, filepath.Join(dir, "data"), host)), 0o644)

	var output bytes.Buffer
	cmd := exec.Command(binary, "serve", config)
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatalf("start docker-registry: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	t.Cleanup(stop)
	eventually(t, 10*time.Second, "docker-registry answers on "+host, func() error {
		select {
		case <-exited:
			t.Fatalf("docker-registry exited:\n%s", output.String())
		default:
		}
		return registryAnswers(host)
	})
	return &testRegistry{host: host, stop: stop}
}

// pushImage tags a local image as ref and pushes it over plain HTTP.
func pushImage(t *testing.T, r *Runtime, local, ref string) {
	t.Helper()
	ctx := r.withNamespace(context.Background())
	img, err := r.client.GetImage(ctx, local)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.client.Push(ctx, ref, img.Target(), containerd.WithResolver(r.resolver())); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// freePort is a loopback TCP port nothing listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func registryAnswers(host string) error {
	resp, err := http.Get("http://" + host + "/v2/")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /v2/: %s", resp.Status)
	}
	return nil
}

// sameLinesPerStream reports whether a and b hold the same "stream: line"
// entries in the same order within each stream.
func sameLinesPerStream(a, b []string) bool {
	split := func(lines []string) map[string][]string {
		out := map[string][]string{}
		for _, l := range lines {
			stream, _, _ := strings.Cut(l, ":")
			out[stream] = append(out[stream], l)
		}
		return out
	}
	sa, sb := split(a), split(b)
	if len(sa) != len(sb) {
		return false
	}
	for stream, lines := range sa {
		if !slices.Equal(lines, sb[stream]) {
			return false
		}
	}
	return true
}
