package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// noPoolNamespace holds a second, agentless server started without a
// load-balancer pool: on it a LoadBalancer Service stays <pending>, as on a
// cluster without a cloud.
const noPoolNamespace = "kl-e2e-nopool"

func stepLoadBalancerWithoutPool(t *testing.T, l *lab) {
	dir := t.TempDir()
	startNoPoolServer(t, l, dir)
	kubeconfig := filepath.Join(dir, "admin.kubeconfig")
	kubectl := func(args ...string) (string, error) {
		args = append([]string{"netns", "exec", noPoolNamespace, filepath.Join(l.binDir, "kubectl-lite"), "--kubeconfig", kubeconfig}, args...)
		return l.run(context.Background(), commandTimeout, "ip", args...)
	}

	out, err := kubectl("apply", "-f", "examples/httpd-svc-loadbalancer.yml")
	if err != nil || !strings.Contains(out, "service/httpd-lb created") {
		t.Fatalf("apply httpd-svc-loadbalancer.yml on the server without a pool: %v\n%s", err, out)
	}
	eventually(t, stateDeadline, "httpd-lb to be listed with EXTERNAL-IP <pending>", func() (bool, string) {
		out, err := kubectl("get", "service", "httpd-lb")
		if err != nil {
			return false, fmt.Sprintf("%v\n%s", err, out)
		}
		tb, err := parseTable(out)
		if err != nil {
			return false, out
		}
		row, ok := tb.row("httpd-lb")
		if !ok || row["TYPE"] != "LoadBalancer" || row["EXTERNAL-IP"] != "<pending>" || !nodePortPorts.MatchString(row["PORT(S)"]) {
			return false, out
		}
		t.Logf("kubectl-lite get service httpd-lb, on a server without a pool:\n%s", out)
		return true, out
	})
}

// startNoPoolServer runs `kubelite server --disable-agent` in a namespace
// of its own (loopback only), stopped and removed when the test ends.
func startNoPoolServer(t *testing.T, l *lab, dir string) {
	t.Helper()
	removeNoPoolNamespace()
	if out, err := exec.Command("ip", "netns", "add", noPoolNamespace).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", noPoolNamespace, err, out)
	}
	t.Cleanup(removeNoPoolNamespace)
	if out, err := exec.Command("ip", "-n", noPoolNamespace, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("loopback up in %s: %v\n%s", noPoolNamespace, err, out)
	}

	logPath := filepath.Join(dir, "server.log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", noPoolNamespace, filepath.Join(l.binDir, "kubelite"), "server",
		"--disable-agent", "--data-dir", dir, "--bind-address", "127.0.0.1")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		t.Fatalf("start kubelite server in %s: %v", noPoolNamespace, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		log.Close()
		if t.Failed() {
			t.Logf("the server without a pool logged:\n%s", tail(logPath, 30))
		}
	})

	eventually(t, stateDeadline, "the server without a pool to answer", func() (bool, string) {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("kubelite server without a pool exited: %v\n%s", err, tail(logPath, 30))
		default:
		}
		out, err := l.run(context.Background(), commandTimeout, "ip", "netns", "exec", noPoolNamespace,
			filepath.Join(l.binDir, "kubectl-lite"), "--kubeconfig", filepath.Join(dir, "admin.kubeconfig"), "get", "namespaces")
		return err == nil, fmt.Sprintf("%v\n%s", err, out)
	})
}

// removeNoPoolNamespace kills what still runs in the namespace and deletes
// it; a no-op when it does not exist.
func removeNoPoolNamespace() {
	if _, err := os.Stat("/run/netns/" + noPoolNamespace); err != nil {
		return
	}
	if out, err := exec.Command("ip", "netns", "pids", noPoolNamespace).Output(); err == nil {
		for _, field := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(field); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	_ = exec.Command("ip", "netns", "del", noPoolNamespace).Run()
}
