package netnsproxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// testNamespace creates a network namespace with only loopback up, deleted
// after the test. It needs root and iproute2, and fails (never skips)
// without them.
func testNamespace(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test creates a network namespace and must run as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("this test needs ip from iproute2: %v", err)
	}
	name := fmt.Sprintf("klnp-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s link set lo up: %v\n%s", name, err, out)
	}
	return filepath.Join("/run/netns", name)
}

// listenInNamespace opens a TCP listener on the namespace's loopback.
func listenInNamespace(t *testing.T, path string) net.Listener {
	t.Helper()
	var ln net.Listener
	errs := make(chan error, 1)
	go func() {
		errs <- inNamespace(path, func() error {
			var err error
			ln, err = net.Listen("tcp", "127.0.0.1:0")
			return err
		})
	}()
	if err := <-errs; err != nil {
		t.Fatalf("listen inside %s: %v", path, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// serveUpper answers each line with the same line in upper case, so the
// test sees that bytes went both ways.
func serveUpper(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			lines := bufio.NewScanner(conn)
			for lines.Scan() {
				fmt.Fprintln(conn, strings.ToUpper(lines.Text()))
			}
		}()
	}
}

func startForwarder(t *testing.T, netnsPath, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, &Dialer{NetNSPath: netnsPath}, target) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func TestForwardsIntoNamespace(t *testing.T) {
	ns := testNamespace(t)
	backend := listenInNamespace(t, ns)
	go serveUpper(backend)

	// The backend listens on the namespace's own loopback: the machine's
	// 127.0.0.1 has nothing on that port, so an answer proves the dial
	// happened inside the namespace.
	forwarder := startForwarder(t, ns, backend.Addr().String())
	for i := range 3 { // several connections, each dialled on its own
		conn, err := net.DialTimeout("tcp", forwarder, 5*time.Second)
		if err != nil {
			t.Fatalf("dial the forwarder: %v", err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "hello %d\n", i)
		reply, err := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if err != nil {
			t.Fatalf("read through the forwarder: %v", err)
		}
		if want := fmt.Sprintf("HELLO %d\n", i); reply != want {
			t.Errorf("reply %q, want %q", reply, want)
		}
	}
}

func TestDialerLeavesCallerInItsNamespace(t *testing.T) {
	ns := testNamespace(t)
	backend := listenInNamespace(t, ns)
	go serveUpper(backend)

	runtime.LockOSThread()
	own, err := os.Readlink("/proc/thread-self/ns/net")
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatal(err)
	}
	d := &Dialer{NetNSPath: ns}
	for range 20 {
		conn, err := d.DialContext(context.Background(), "tcp", backend.Addr().String())
		if err != nil {
			t.Fatalf("DialContext: %v", err)
		}
		conn.Close()
	}
	// Every thread of the process must be back home: look at all of them.
	threads, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, th := range threads {
		link, err := os.Readlink(filepath.Join("/proc/self/task", th.Name(), "ns/net"))
		if err != nil {
			continue // the thread has ended
		}
		if link != own {
			t.Errorf("thread %s is in %s, want the test's %s", th.Name(), link, own)
		}
	}
}

func TestUnreachableTargetClosesTheClient(t *testing.T) {
	ns := testNamespace(t)
	// Nothing listens on this port inside the namespace.
	backend := listenInNamespace(t, ns)
	target := backend.Addr().String()
	backend.Close()

	forwarder := startForwarder(t, ns, target)
	conn, err := net.DialTimeout("tcp", forwarder, 5*time.Second)
	if err != nil {
		t.Fatalf("dial the forwarder: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read = %d, %v; want EOF once the forwarder gives up", n, err)
	}
}

func TestRunRejectsMissingNamespace(t *testing.T) {
	err := Run(context.Background(), "/run/netns/kubelite-no-such-namespace", "127.0.0.1:0", "127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "kubelite-no-such-namespace") {
		t.Fatalf("Run = %v, want an error naming the namespace", err)
	}
}
