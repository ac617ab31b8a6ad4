// Package netns runs code inside a Linux network namespace.
//
// A network namespace belongs to an OS thread, not to a process, so code
// that must act inside one (exec iptables, open a socket, write a
// /proc/sys/net sysctl) runs on a dedicated thread that has entered it.
// Sockets and child processes created there stay in the namespace after the
// function returns.
package netns

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// Do runs fn inside the network namespace bound at path (for example
// /run/netns/node1, or /proc/<pid>/ns/net) and returns its error. An empty
// path runs fn in the caller's own namespace.
//
// fn runs on a goroutine of its own, locked to an OS thread that enters the
// namespace and is never unlocked: when the goroutine ends, Go ends the
// thread with it, so no other goroutine can ever run in the wrong namespace.
// Processes that fn starts (os/exec) are forked from that thread and inherit
// its namespace.
func Do(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("opening network namespace %s: %w", path, err)
	}
	defer target.Close()

	result := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: see above.
		if err := netns.Set(target); err != nil {
			result <- fmt.Errorf("entering network namespace %s: %w", path, err)
			return
		}
		result <- fn()
	}()
	return <-result
}
