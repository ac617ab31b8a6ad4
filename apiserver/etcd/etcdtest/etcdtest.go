// Package etcdtest starts real etcd servers for tests: an embedded one, or
// Debian's etcd binary as a child process. Both listen on loopback ports
// only and stop when the test ends.
package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kubelite/apiserver/etcd"
)

// ExternalBinary is where Debian's etcd-server package installs etcd.
const ExternalBinary = "/usr/bin/etcd"

const (
	// startTimeout bounds how long a test waits for an etcd to serve.
	startTimeout = 30 * time.Second
	// startAttempts is how often a start is tried on fresh ports when
	// another process took a port between picking and binding it.
	startAttempts = 5
)

// Start runs an embedded etcd in t.TempDir() and returns its client; the
// server stops when the test ends.
func Start(t testing.TB) *clientv3.Client {
	t.Helper()
	return StartEmbedded(t, t.TempDir()).Client()
}

// StartEmbedded runs an embedded etcd keeping its data in dataDir, on free
// loopback ports, and closes it when the test ends (closing it earlier is
// fine). Starting it again on the same dataDir restarts the same member
// with its data, possibly on other ports.
func StartEmbedded(t testing.TB, dataDir string) *etcd.Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	var err error
	for range startAttempts {
		var server *etcd.Embedded
		server, err = etcd.StartEmbedded(ctx, etcd.EmbeddedConfig{
			DataDir:   dataDir,
			ClientURL: FreeLoopbackURL(t),
			PeerURL:   FreeLoopbackURL(t),
			Name:      "test",
		})
		if err == nil {
			t.Cleanup(server.Close)
			return server
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	t.Fatalf("start embedded etcd: %v", err)
	return nil
}

// StartExternal runs ExternalBinary as a child process with a temporary data
// dir and returns its client endpoints. The test fails, never skips, when
// the binary is missing: CI installs it (apt-get install etcd-server).
func StartExternal(t testing.TB) []string {
	t.Helper()
	if _, err := os.Stat(ExternalBinary); err != nil {
		t.Fatalf("external etcd binary %s is missing (install Debian's etcd-server package): %v", ExternalBinary, err)
	}
	var err error
	for range startAttempts {
		var endpoints []string
		if endpoints, err = startExternal(t); err == nil {
			return endpoints
		}
	}
	t.Fatalf("start external etcd: %v", err)
	return nil
}

// startExternal makes one attempt at starting ExternalBinary.
func startExternal(t testing.TB) ([]string, error) {
	clientURL, peerURL := FreeLoopbackURL(t), FreeLoopbackURL(t)
	workDir := t.TempDir()
	logPath := filepath.Join(workDir, "etcd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor

	cmd := exec.Command(ExternalBinary,
		"--name", "external",
		"--data-dir", filepath.Join(workDir, "data"),
		"--listen-client-urls", clientURL,
		"--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL,
		"--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "external="+peerURL,
		"--log-level", "error",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", ExternalBinary, err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() {
		exitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // our own child, by its process id
		<-exited
	})

	endpoints := []string{clientURL}
	if err := waitServing(endpoints, exited, &exitErr); err != nil {
		logs, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("etcd at %s: %w\n%s", clientURL, err, logs)
	}
	return endpoints, nil
}

// waitServing retries connecting to endpoints until they answer, the
// process exits (exited closes; *exitErr then says why), or startTimeout
// passes.
func waitServing(endpoints []string, exited <-chan struct{}, exitErr *error) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	retry := time.NewTicker(100 * time.Millisecond)
	defer retry.Stop()
	for {
		attemptCtx, attemptCancel := context.WithTimeout(ctx, time.Second)
		client, err := etcd.Connect(attemptCtx, endpoints)
		attemptCancel()
		if err == nil {
			return client.Close()
		}
		select {
		case <-exited:
			return fmt.Errorf("process exited before serving: %v", *exitErr)
		case <-ctx.Done():
			return fmt.Errorf("not serving after %v: %w", startTimeout, err)
		case <-retry.C:
		}
	}
}

// FreeLoopbackURL returns http://127.0.0.1:PORT with a port that is free
// now. Ports come from below Linux's ephemeral range (32768–60999), so the
// kernel does not hand them to outgoing connections in the meantime.
func FreeLoopbackURL(t testing.TB) string {
	t.Helper()
	const lowest, highest = 20000, 32767
	for range 100 {
		address := fmt.Sprintf("127.0.0.1:%d", lowest+rand.IntN(highest-lowest+1))
		listener, err := net.Listen("tcp", address)
		if err != nil {
			continue // taken; try another
		}
		listener.Close()
		return "http://" + address
	}
	t.Fatalf("no free loopback port between %d and %d", lowest, highest)
	return ""
}
