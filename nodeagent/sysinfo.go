package nodeagent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"

	"github.com/containerd/containerd"
	"golang.org/x/sys/unix"
)

// machine describes the node's machine, for the Node's capacity and
// nodeInfo.
type machine struct {
	cpus           int
	memoryKiB      int64
	kernelVersion  string
	osImage        string
	machineID      string
	architecture   string
	runtimeVersion string // containerd://1.6.20
}

// readMachine gathers what the kernel, /proc and /etc say about the machine.
func readMachine() machine {
	m := machine{cpus: goruntime.NumCPU(), architecture: goruntime.GOARCH, osImage: "Linux"}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		m.kernelVersion = unix.ByteSliceToString(uts.Release[:])
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.memoryKiB = memTotalKiB(data)
	}
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		if name := osReleaseField(data, "PRETTY_NAME"); name != "" {
			m.osImage = name
		}
	}
	if data, err := os.ReadFile("/etc/machine-id"); err == nil {
		m.machineID = strings.TrimSpace(string(data))
	}
	return m
}

// memTotalKiB reads MemTotal from /proc/meminfo ("MemTotal: 24568120 kB").
func memTotalKiB(meminfo []byte) int64 {
	scanner := bufio.NewScanner(bytes.NewReader(meminfo))
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			n, _ := strconv.ParseInt(fields[1], 10, 64)
			return n
		}
	}
	return 0
}

// osReleaseField reads one KEY="value" line of /etc/os-release.
func osReleaseField(osRelease []byte, key string) string {
	scanner := bufio.NewScanner(bytes.NewReader(osRelease))
	for scanner.Scan() {
		k, v, ok := strings.Cut(scanner.Text(), "=")
		if ok && k == key {
			if unquoted, err := strconv.Unquote(v); err == nil {
				return unquoted
			}
			return v
		}
	}
	return ""
}

// containerdVersion asks containerd its version, for nodeInfo's
// containerRuntimeVersion ("containerd://1.6.20"). The runtime package
// does not expose it, so the agent asks on a connection of its own.
func containerdVersion(ctx context.Context, address string) (string, error) {
	c, err := containerd.New(address)
	if err != nil {
		return "", fmt.Errorf("containerd version: %w", err)
	}
	defer c.Close()
	v, err := c.Version(ctx)
	if err != nil {
		return "", fmt.Errorf("containerd version: %w", err)
	}
	return "containerd://" + strings.TrimPrefix(v.Version, "v"), nil
}
