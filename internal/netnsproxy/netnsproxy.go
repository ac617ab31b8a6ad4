// Package netnsproxy forwards TCP connections from the current network
// namespace into another one.
//
// The one-machine lab (scripts/lab.sh) keeps its whole network inside
// namespaces and adds nothing to the machine's own. To let a user on the
// machine run `kubectl-lite get nodes`, the lab starts this forwarder in
// the machine's namespace: it listens on a loopback address there and, for
// each connection, dials the API server from inside the server node's
// namespace. Only the dialling thread ever enters that namespace.
package netnsproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// dialTimeout bounds one connection attempt to the target.
const dialTimeout = 10 * time.Second

// Run listens on listen (host:port, in the caller's network namespace) and
// forwards every connection to target (host:port), dialled from inside the
// network namespace pinned at netnsPath (such as /run/netns/kl-node1). It
// returns when ctx ends, after closing the listener; open connections are
// closed too.
func Run(ctx context.Context, netnsPath, listen, target string) error {
	dialer := &Dialer{NetNSPath: netnsPath}
	// Fail early on a namespace that does not exist, rather than on the
	// first connection.
	if err := dialer.check(); err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", listen)
	if err != nil {
		return fmt.Errorf("netns proxy: listen on %s: %w", listen, err)
	}
	slog.Info("forwarding connections into a network namespace", "listen", ln.Addr().String(), "netns", netnsPath, "target", target)
	return Serve(ctx, ln, dialer, target)
}

// Serve accepts connections on ln until ctx ends and forwards each one to
// target through dialer. It closes ln.
func Serve(ctx context.Context, ln net.Listener, dialer *Dialer, target string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var conns sync.WaitGroup
	defer conns.Wait()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		client, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("netns proxy: accept: %w", err)
		}
		conns.Go(func() { forward(ctx, client, dialer, target) })
	}
}

// forward copies bytes both ways between client and a new connection to
// target until either side is done or ctx ends.
func forward(ctx context.Context, client net.Conn, dialer *Dialer, target string) {
	defer client.Close()
	dialCtx, cancel := context.WithTimeout(ctx, dialTimeout)
	upstream, err := dialer.DialContext(dialCtx, "tcp", target)
	cancel()
	if err != nil {
		slog.Warn("netns proxy: cannot reach the target", "target", target, "client", client.RemoteAddr().String(), "err", err)
		return
	}
	defer upstream.Close()

	// Closing both connections when ctx ends unblocks the copies.
	stop := context.AfterFunc(ctx, func() {
		client.Close()
		upstream.Close()
	})
	defer stop()

	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Pass the end of the stream on (half-close), so that a request
		// body's end reaches the server while its answer still flows back.
		if tcp, ok := dst.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(upstream, client)
	go pipe(client, upstream)
	<-done
	<-done
}

// Dialer opens connections from inside a network namespace.
type Dialer struct {
	// NetNSPath is the namespace's pinned path, e.g. /run/netns/kl-node1.
	NetNSPath string
}

// check opens and closes the namespace, to report a bad path early.
func (d *Dialer) check() error {
	fd, err := unix.Open(d.NetNSPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns proxy: open network namespace %s: %w", d.NetNSPath, err)
	}
	return unix.Close(fd)
}

// DialContext connects to address from inside the namespace. A socket
// keeps the namespace it was created in, so only the dial needs to happen
// there; reads and writes can then happen on any thread.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	results := make(chan result, 1)
	// A goroutine of its own, because LockOSThread must not leak into the
	// caller: the thread enters the namespace, dials and goes back.
	go func() {
		conn, err := d.dialInNamespace(ctx, network, address)
		results <- result{conn, err}
	}()
	r := <-results
	return r.conn, r.err
}

// dialInNamespace runs on the goroutine DialContext starts for it.
func (d *Dialer) dialInNamespace(ctx context.Context, network, address string) (net.Conn, error) {
	var conn net.Conn
	err := inNamespace(d.NetNSPath, func() error {
		var dialer net.Dialer
		var err error
		conn, err = dialer.DialContext(ctx, network, address)
		return err
	})
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("dial %s in network namespace %s: %w", address, d.NetNSPath, err)
	}
	return conn, nil
}

// inNamespace runs fn on the calling goroutine's thread, moved into the
// network namespace pinned at path, then moves the thread back. Sockets fn
// opens stay in that namespace. Call it on a goroutine of its own.
func inNamespace(path string, fn func() error) error {
	runtime.LockOSThread()
	// The thread is unlocked only once it is back in its own namespace;
	// a thread that cannot go back stays locked, and Go ends it with the
	// goroutine, so no other goroutine ever runs in the wrong namespace.
	restored := false
	defer func() {
		if restored {
			runtime.UnlockOSThread()
		}
	}()

	home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		restored = true
		return fmt.Errorf("open this thread's network namespace: %w", err)
	}
	defer unix.Close(home)
	target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		restored = true
		return fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer unix.Close(target)

	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		restored = true // never left
		return fmt.Errorf("enter network namespace %s: %w", path, err)
	}
	fnErr := fn()
	if err := unix.Setns(home, unix.CLONE_NEWNET); err != nil {
		return errors.Join(fnErr, fmt.Errorf("return from network namespace %s: %w", path, err))
	}
	restored = true
	return fnErr
}
