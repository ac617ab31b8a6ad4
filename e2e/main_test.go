package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The lab of this test run: its own state folder and forwarder port, so it
// never mixes with a lab a person started by hand (which it refuses to
// replace, see removeLeftovers).
const (
	e2eLabDir  = "/var/lib/kubelite-lab-e2e"
	e2eAPIPort = "16543"
)

// theLab is set once by TestMain, before any test runs, and only read after.
var theLab *lab

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runSuite(m))
}

// runSuite brings the lab up, runs the tests, and always takes the lab down
// again — after a failure, an interrupt, or when the test binary is about
// to be killed by -timeout.
func runSuite(m *testing.M) int {
	if err := checkPrerequisites(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: end-to-end prerequisites: %v\n", err)
		return 1
	}
	l, err := newLab()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer l.cleanupBuild()

	if err := l.removeLeftovers(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	stopGuards := l.guardAgainstKill(testTimeout())
	defer stopGuards()

	if l.machineNetworkBefore, err = readMachineNetwork(l); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: the machine's network before the lab: %v\n", err)
		return 1
	}
	start := time.Now()
	fmt.Printf("e2e: bringing the lab up (scripts/lab.sh up, state in %s)\n", l.dir)
	if out, err := l.script(context.Background(), 10*time.Minute, "up"); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: scripts/lab.sh up: %v\n%s\n", err, out)
		l.printDiagnostics()
		if err := l.down(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		}
		return 1
	}
	fmt.Printf("e2e: the lab is up after %s\n", time.Since(start).Round(time.Second))

	theLab = l
	code := m.Run()
	if code != 0 {
		l.printDiagnostics()
	}
	if err := l.down(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		code = 1
	}
	return code
}

// checkPrerequisites names everything missing at once.
func checkPrerequisites() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces, containers, iptables): run the tests with sudo")
	}
	tools := map[string]string{
		"ip":                      "iproute2",
		"iptables-save":           "iptables",
		"iptables-restore":        "iptables",
		"nft":                     "nftables",
		"containerd":              "containerd",
		"containerd-shim-runc-v2": "containerd",
		"runc":                    "runc",
		"curl":                    "curl",
		"unshare":                 "util-linux",
		"setsid":                  "util-linux",
	}
	for tool, pkg := range tools {
		if _, err := lookPath(tool); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", tool, pkg))
		}
	}
	for _, file := range []struct{ path, pkg string }{
		{"/bin/busybox", "busybox-static"},
		{"/usr/lib/cni/bridge", "containernetworking-plugins"},
		{"/usr/lib/cni/host-local", "containernetworking-plugins"},
		{"/usr/lib/cni/loopback", "containernetworking-plugins"},
	} {
		if _, err := os.Stat(file.path); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", file.path, file.pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing: %s; scripts/install-deps.sh installs the packages", strings.Join(missing, "; "))
	}
	return nil
}

// lookPath also searches the sbin folders, which a sudo PATH may lack.
func lookPath(tool string) (string, error) {
	if p, err := exec.LookPath(tool); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p := filepath.Join(dir, tool); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", tool)
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir() && info.Mode()&0o111 != 0
}

// newLab finds the repository and the binaries to test: KUBELITE_BIN, or
// kubelite built from this tree into a temporary folder.
func newLab() (*lab, error) {
	repo, err := filepath.Abs("..")
	if err != nil {
		return nil, fmt.Errorf("repository root: %w", err)
	}
	if _, err := os.Stat(filepath.Join(repo, "scripts", "lab.sh")); err != nil {
		return nil, fmt.Errorf("scripts/lab.sh not found under %s: run the tests from the repository", repo)
	}
	l := &lab{repo: repo, dir: e2eLabDir, apiPort: e2eAPIPort}
	l.kubeconfig = filepath.Join(l.dir, "kubeconfig")

	if bin := os.Getenv("KUBELITE_BIN"); bin != "" {
		l.binDir = filepath.Dir(bin)
		if !isExecutable(bin) || !isExecutable(filepath.Join(l.binDir, "kubectl-lite")) {
			return nil, fmt.Errorf("KUBELITE_BIN=%s: kubelite and kubectl-lite must both be there", bin)
		}
		return l, nil
	}
	if err := l.build(); err != nil {
		return nil, err
	}
	return l, nil
}

// build compiles kubelite from this tree, so the test never runs a stale
// bin/kubelite.
func (l *lab) build() error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	dir, err := os.MkdirTemp("", "kubelite-e2e-bin-")
	if err != nil {
		return fmt.Errorf("build folder: %w", err)
	}
	l.binDir, l.builtBinDir = dir, dir
	cmd := exec.Command(goTool, "build", "-o", filepath.Join(dir, "kubelite"), ".")
	cmd.Dir = l.repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build kubelite: %w\n%s", err, out)
	}
	if err := os.Symlink("kubelite", filepath.Join(dir, "kubectl-lite")); err != nil {
		return fmt.Errorf("kubectl-lite link: %w", err)
	}
	return nil
}

func (l *lab) cleanupBuild() {
	if l.builtBinDir != "" {
		os.RemoveAll(l.builtBinDir)
	}
}

// removeLeftovers takes down a lab left by an earlier run of these tests
// that was killed before it could, and refuses to touch one a person runs.
func (l *lab) removeLeftovers() error {
	removeNoPoolNamespace()
	_, err := os.Stat("/run/netns/kl-node1")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if _, err := os.Stat(l.dir); err != nil {
		return errors.New("a lab is already up (the namespace kl-node1 exists) and it is not this test's: " +
			"take it down with `scripts/lab.sh down` and run the tests again")
	}
	fmt.Println("e2e: removing the lab an earlier, interrupted run left behind")
	return l.down()
}

// testTimeout is the -timeout given to `go test` (0: none).
func testTimeout() time.Duration {
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, err := time.ParseDuration(f.Value.String()); err == nil {
			return d
		}
	}
	return 0
}

// guardAgainstKill takes the lab down on SIGINT or SIGTERM, and shortly
// before -timeout would kill the test binary with the lab still up. It
// returns a function that removes the guards.
func (l *lab) guardAgainstKill(timeout time.Duration) (stop func()) {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-signals:
			fmt.Fprintf(os.Stderr, "e2e: %v: taking the lab down\n", sig)
			if err := l.down(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
			}
			l.cleanupBuild()
			os.Exit(1)
		case <-done:
		}
	}()

	var timer *time.Timer
	if margin := 2 * time.Minute; timeout > 2*margin {
		timer = time.AfterFunc(timeout-margin, func() {
			fmt.Fprintf(os.Stderr, "FAIL: e2e: the tests have run for %s, close to -timeout %s: giving up\n", timeout-margin, timeout)
			l.printDiagnostics()
			if err := l.down(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
			}
			l.cleanupBuild()
			os.Exit(1)
		})
	}
	return func() {
		signal.Stop(signals)
		close(done)
		if timer != nil {
			timer.Stop()
		}
	}
}

func (l *lab) down() error {
	fmt.Println("e2e: taking the lab down (scripts/lab.sh down)")
	removeNoPoolNamespace()
	out, err := l.script(context.Background(), 3*time.Minute, "down")
	if err != nil {
		return fmt.Errorf("scripts/lab.sh down: %w\n%s", err, out)
	}
	return nil
}
