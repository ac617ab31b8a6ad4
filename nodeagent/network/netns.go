package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Namespace is a network namespace named by the path it is pinned at
// (/run/netns/node1), or the agent's own when Path is "".
type Namespace struct {
	Path string
}

// Do runs fn inside the namespace and returns its error.
//
// A network namespace belongs to an OS thread, not to a process, so fn runs
// on a goroutine of its own, locked to a thread that enters the namespace
// and is never unlocked: when the goroutine ends, Go ends the thread with
// it, and no other goroutine can ever run in the wrong namespace. Sockets
// that fn opens and processes it starts (CNI plugins, iptables) stay in the
// namespace after it returns.
func (ns Namespace) Do(fn func() error) error {
	if ns.Path == "" {
		return fn()
	}
	target, err := netns.GetFromPath(ns.Path)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", ns.Path, err)
	}
	defer target.Close()

	result := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		if err := netns.Set(target); err != nil {
			result <- fmt.Errorf("enter network namespace %s: %w", ns.Path, err)
			return
		}
		result <- fn()
	}()
	return <-result
}

// DialContext opens a connection from inside the namespace: the agent's
// probes reach pod IPs from the node's namespace, where the routes are.
func (ns Namespace) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var dialer net.Dialer
	var conn net.Conn
	err := ns.Do(func() error {
		var err error
		conn, err = dialer.DialContext(ctx, network, address)
		return err
	})
	return conn, err
}

// netlinkHandle opens netlink sockets in the namespace. They stay bound to
// it, so no thread needs to enter it.
func (ns Namespace) netlinkHandle() (*netlink.Handle, error) {
	if ns.Path == "" {
		handle, err := netlink.NewHandle()
		if err != nil {
			return nil, fmt.Errorf("netlink: %w", err)
		}
		return handle, nil
	}
	target, err := netns.GetFromPath(ns.Path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", ns.Path, err)
	}
	defer target.Close()
	handle, err := netlink.NewHandleAt(target)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", ns.Path, err)
	}
	return handle, nil
}

// writeSysctl sets a kernel parameter of the namespace, e.g.
// "net/ipv4/ip_forward". Files under /proc/sys/net show the namespace of
// the thread that opens them.
func (ns Namespace) writeSysctl(name, value string) error {
	return ns.Do(func() error {
		if err := os.WriteFile(filepath.Join("/proc/sys", name), []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", name, value, err)
		}
		return nil
	})
}

// createPinnedNetNS makes a new, empty network namespace and pins it at
// path by bind-mounting it there, as `ip netns add` does. The namespace
// lives as long as the mount, whatever happens to the agent.
func createPinnedNetNS(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create network namespace: %w", err)
	}
	file, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create network namespace: %w", err)
	}
	file.Close()

	result := make(chan error, 1)
	go func() {
		// The thread enters the new namespace and never leaves it: it ends
		// with this goroutine (no UnlockOSThread).
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			result <- fmt.Errorf("unshare: %w", err)
			return
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			result <- fmt.Errorf("bind-mount %s: %w", path, err)
			return
		}
		result <- nil
	}()
	if err := <-result; err != nil {
		os.Remove(path)
		return fmt.Errorf("create network namespace %s: %w", path, err)
	}
	return nil
}

// deletePinnedNetNS unpins the namespace at path; the kernel frees it once
// no process uses it. A missing one is not an error.
func deletePinnedNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete network namespace %s: %w", path, err)
	}
	return nil
}

// isPinnedNetNS reports whether path is a pinned network namespace (and
// not just the empty file left where one was).
func isPinnedNetNS(path string) bool {
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return false
	}
	return fs.Type == unix.NSFS_MAGIC
}
