package runtime

// The test lab: one real containerd, started by Supervise in a temporary
// folder with its own socket, shared by the end-to-end tests and the
// benchmark; each test works in its own containerd namespace. The lab
// starts on first use, so unit tests alone never need root. When a
// prerequisite is missing, every end-to-end test FAILS with the reason:
// CI must install them (scripts/install-deps.sh), never skip them.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/containerd/errdefs"

	"kubelite/nodeagent/images"
)

type testLab struct {
	dir        string // everything the lab creates on the host
	imagesDir  string // busybox.tar and httpd.tar
	containerd *Containerd
	stop       context.CancelFunc
}

var (
	labOnce sync.Once
	lab     *testLab
	labErr  error
	netnsID atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if lab != nil {
		if err := lab.teardown(); err != nil {
			fmt.Fprintln(os.Stderr, "test lab teardown:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// requireLab returns the running lab, or fails the test (or benchmark)
// with what is missing.
func requireLab(tb testing.TB) *testLab {
	tb.Helper()
	labOnce.Do(func() { lab, labErr = startLab() })
	if labErr != nil {
		tb.Fatalf("end-to-end test prerequisites: %v", labErr)
	}
	return lab
}

func startLab() (*testLab, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("must run as root (containers, mounts, network namespaces): run `sudo go test ./nodeagent/...`")
	}
	var missing []string
	for _, tool := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := os.Stat(filepath.Join("/usr/sbin", tool)); err != nil {
				missing = append(missing, tool)
			}
		}
	}
	if _, err := os.Stat(images.DefaultBusybox); err != nil {
		missing = append(missing, images.DefaultBusybox+" (busybox-static)")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing %s: install them with scripts/install-deps.sh", strings.Join(missing, ", "))
	}

	// A short path: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "kubelite-rt-")
	if err != nil {
		return nil, err
	}
	l := &testLab{dir: dir, imagesDir: filepath.Join(dir, "images")}
	if _, err := images.BuildAll(l.imagesDir, images.DefaultBusybox); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("build images: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	l.stop = stop
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	l.containerd, err = Supervise(ctx, SuperviseConfig{DataDir: filepath.Join(dir, "containerd"), Logger: logger})
	if err != nil {
		stop()
		os.RemoveAll(dir)
		return nil, err
	}
	return l, nil
}

// teardown stops containerd and removes the lab's folder, after checking
// that the tests left no container behind.
func (l *testLab) teardown() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	namespaces, leftovers, err := l.leftoverContainers(ctx)
	if err != nil {
		errs = append(errs, err)
	} else if len(leftovers) > 0 {
		errs = append(errs, fmt.Errorf("tests left containers behind: %s", strings.Join(leftovers, ", ")))
	}
	l.stop()
	<-l.containerd.Done()
	// Mounts of containers that leaked would keep the folder busy.
	if mounts, err := os.ReadFile("/proc/self/mounts"); err == nil {
		for _, line := range strings.Split(string(mounts), "\n") {
			if fields := strings.Fields(line); len(fields) > 1 && strings.HasPrefix(fields[1], l.dir) {
				exec.Command("umount", "-l", fields[1]).Run()
			}
		}
	}
	if err := os.RemoveAll(l.dir); err != nil {
		errs = append(errs, err)
	}
	// runc keeps one (by now empty) state folder and cgroup per containerd
	// namespace.
	for _, ns := range namespaces {
		os.Remove(filepath.Join("/run/containerd/runc", ns))
		cgroups, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", ns))
		for _, cgroup := range append(cgroups, filepath.Join("/sys/fs/cgroup", ns)) {
			os.Remove(cgroup)
		}
	}
	return errors.Join(errs...)
}

// leftoverContainers lists the lab's namespaces and the containers in them.
func (l *testLab) leftoverContainers(ctx context.Context) (namespaces, leftovers []string, err error) {
	r, err := Connect(ctx, Config{Address: l.containerd.Address(), StateDir: filepath.Join(l.dir, "teardown"), Logger: discardLogger()})
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	namespaces, err = r.client.NamespaceService().List(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, ns := range namespaces {
		containers, err := r.client.Containers(withNS(ctx, ns))
		if err != nil {
			return nil, nil, err
		}
		for _, c := range containers {
			leftovers = append(leftovers, ns+"/"+c.ID())
		}
	}
	return namespaces, leftovers, nil
}

// testNamespace is a containerd namespace of the test's own.
func testNamespace(tb testing.TB) string {
	name := regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(tb.Name(), "-")
	return strings.ToLower(strings.Trim("t-"+name, "-"))
}

// connect opens a Runtime on the lab's containerd in namespace, with its
// FIFOs in stateDir, and closes it when the test ends.
func connect(tb testing.TB, namespace, stateDir string) *Runtime {
	tb.Helper()
	l := requireLab(tb)
	r, err := Connect(context.Background(), Config{
		Address:   l.containerd.Address(),
		Namespace: namespace,
		StateDir:  stateDir,
		Logger:    testLogger(tb),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// newRuntime is a Runtime in the test's own namespace with the lab's
// images imported. Whatever containers the test leaves are removed.
func newRuntime(tb testing.TB) *Runtime {
	tb.Helper()
	l := requireLab(tb)
	r := connect(tb, testNamespace(tb), tb.TempDir())
	if _, err := r.ImportDir(context.Background(), l.imagesDir); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { removeAll(tb, r) })
	return r
}

func removeAll(tb testing.TB, r *Runtime) {
	ctx := context.Background()
	containers, err := r.List(ctx)
	if err != nil {
		tb.Errorf("cleanup: %v", err)
		return
	}
	for _, c := range containers {
		if err := r.Remove(ctx, c.ID); err != nil {
			tb.Errorf("cleanup: %v", err)
		}
	}
}

// newNetNS creates a network namespace with loopback up, deleted when the
// test ends, and returns its name and path.
func newNetNS(tb testing.TB) (name, path string) {
	tb.Helper()
	name = fmt.Sprintf("kubelite-rt-%d-%d", os.Getpid(), netnsID.Add(1))
	run(tb, "ip", "netns", "add", name)
	tb.Cleanup(func() { run(tb, "ip", "netns", "del", name) })
	run(tb, "ip", "-n", name, "link", "set", "lo", "up")
	return name, "/var/run/netns/" + name
}

func run(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// eventually polls cond until it holds or timeout passes. Only tests poll:
// they wait for things outside the code under test (a server binding its
// port, a process being restarted).
func eventually(tb testing.TB, timeout time.Duration, what string, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readLog returns the container log's whole lines as "stream: content".
func readLog(tb testing.TB, path string) []string {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	lines, err := ReadLog(f)
	if err != nil {
		tb.Fatalf("%s is not a CRI log: %v", path, err)
	}
	var out []string
	for _, l := range lines {
		out = append(out, l.Stream+": "+string(l.Content))
	}
	return out
}

func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func discardLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testWriter sends log output to the test's log, shown when it fails.
type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(string(bytes.TrimSuffix(p, []byte("\n"))))
	return len(p), nil
}

func isNotFound(err error) bool { return errdefs.IsNotFound(err) }
