package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/containerd/containerd/pkg/dialer"
)

// SuperviseConfig says how to run a node agent's own containerd.
type SuperviseConfig struct {
	// DataDir holds everything of this containerd: config.toml, root/,
	// state/, containerd.sock and containerd.log. Required.
	DataDir string
	// Binary is the containerd executable; default "containerd" from PATH.
	Binary string
	// ExtraPath are folders put first in containerd's PATH, where it finds
	// runc and containerd-shim-runc-v2. The folder of the runc in this
	// process's PATH and the usual sbin and bin folders always follow, as
	// Debian installs runc in /usr/sbin, which a service's PATH may lack.
	ExtraPath []string
	// LogLevel is containerd's log level; default "info".
	LogLevel string
	// StartTimeout bounds each start until the socket answers; default 30s.
	StartTimeout time.Duration
	// StopTimeout is how long containerd gets to exit after SIGTERM
	// before it is killed; default 10s.
	StopTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Containerd is a containerd process run and supervised by the node agent,
// as k3s runs its own: restarted when it dies, stopped when the context
// given to Supervise ends. Running containers survive both, because each
// lives in its own shim.
type Containerd struct {
	cfg     SuperviseConfig
	address string
	log     *slog.Logger
	pid     atomic.Int64  // the current process's PID
	done    chan struct{} // closed once containerd is stopped for good
}

// Supervise renders containerd's configuration into cfg.DataDir, starts
// containerd, waits until its socket answers and returns. From then on it
// restarts containerd whenever it exits, until ctx ends; then it stops it
// (SIGTERM, StopTimeout, SIGKILL) and closes Done.
func Supervise(ctx context.Context, cfg SuperviseConfig) (*Containerd, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("supervise containerd: no data directory")
	}
	if cfg.Binary == "" {
		cfg.Binary = "containerd"
	}
	binary, err := exec.LookPath(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("supervise containerd: %w (install Debian's containerd)", err)
	}
	cfg.Binary = binary
	if cfg.LogLevel == "" {
		cfg.LogLevel = "info"
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("supervise containerd: %w", err)
	}
	cfg.DataDir = dataDir
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("supervise containerd: %w", err)
	}
	config := renderConfig(containerdPaths(dataDir), cfg.LogLevel)
	if err := os.WriteFile(filepath.Join(dataDir, "config.toml"), []byte(config), 0o600); err != nil {
		return nil, fmt.Errorf("supervise containerd: %w", err)
	}

	c := &Containerd{
		cfg:     cfg,
		address: containerdPaths(dataDir).socket,
		log:     cfg.Logger.With("component", "containerd"),
		done:    make(chan struct{}),
	}
	firstStart := make(chan error, 1)
	go c.run(ctx, firstStart)
	if err := <-firstStart; err != nil {
		<-c.done
		return nil, err
	}
	return c, nil
}

// Address is containerd's socket, for Connect.
func (c *Containerd) Address() string { return c.address }

// Pid is the process ID of the current containerd process.
func (c *Containerd) Pid() int { return int(c.pid.Load()) }

// Done is closed once containerd has stopped for good after the context
// given to Supervise ended.
func (c *Containerd) Done() <-chan struct{} { return c.done }

// containerdFiles are the paths of one supervised containerd.
type containerdFiles struct {
	config, root, state, socket, log string
}

func containerdPaths(dataDir string) containerdFiles {
	return containerdFiles{
		config: filepath.Join(dataDir, "config.toml"),
		root:   filepath.Join(dataDir, "root"),
		state:  filepath.Join(dataDir, "state"),
		socket: filepath.Join(dataDir, "containerd.sock"),
		log:    filepath.Join(dataDir, "containerd.log"),
	}
}

// renderConfig is containerd's config.toml: its own root, state and socket,
// the CRI plugin off (the agent is the kubelet here) and the snapshotters
// that cannot work on a plain host off, so the log shows real problems.
func renderConfig(files containerdFiles, logLevel string) string {
	var b strings.Builder
	b.WriteString("# Written by the kubelite node agent at each start; edits are lost.\n")
	b.WriteString("version = 2\n")
	fmt.Fprintf(&b, "root = %s\n", strconv.Quote(files.root))
	fmt.Fprintf(&b, "state = %s\n", strconv.Quote(files.state))
	b.WriteString("disabled_plugins = [\n")
	for _, plugin := range []string{
		"io.containerd.grpc.v1.cri",
		"io.containerd.snapshotter.v1.aufs",
		"io.containerd.snapshotter.v1.btrfs",
		"io.containerd.snapshotter.v1.devmapper",
		"io.containerd.snapshotter.v1.zfs",
	} {
		fmt.Fprintf(&b, "  %s,\n", strconv.Quote(plugin))
	}
	b.WriteString("]\n\n")
	b.WriteString("[grpc]\n")
	fmt.Fprintf(&b, "  address = %s\n\n", strconv.Quote(files.socket))
	b.WriteString("[ttrpc]\n")
	fmt.Fprintf(&b, "  address = %s\n\n", strconv.Quote(files.socket+".ttrpc"))
	b.WriteString("[debug]\n")
	fmt.Fprintf(&b, "  level = %s\n", strconv.Quote(logLevel))
	return b.String()
}

// run starts containerd and restarts it whenever it exits, until ctx ends.
//
// It keeps its OS thread for its whole life: containerd is started with
// Pdeathsig, which fires when the *thread* that started it ends, and a
// locked thread ends only with this goroutine — or with the agent, which
// is what Pdeathsig is for (no containerd left behind by a killed agent).
func (c *Containerd) run(ctx context.Context, firstStart chan<- error) {
	goruntime.LockOSThread()
	defer close(c.done) // after this the thread exits, as a locked one does

	retry := backoff{next: 200 * time.Millisecond, max: 10 * time.Second}
	first := true
	for {
		exited, err := c.start(ctx)
		if first {
			firstStart <- err
			if err != nil {
				return
			}
			first = false
		}
		if err == nil {
			started := time.Now()
			select {
			case <-ctx.Done():
				<-exited // CommandContext sends SIGTERM, then SIGKILL after StopTimeout
				c.log.Info("containerd stopped")
				return
			case err = <-exited:
			}
			if time.Since(started) > time.Minute {
				retry = backoff{next: 200 * time.Millisecond, max: 10 * time.Second}
			}
		}
		if ctx.Err() != nil {
			return
		}
		delay := retry.step()
		c.log.Error("containerd exited; restarting", "err", err, "in", delay, "log", containerdPaths(c.cfg.DataDir).log)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// start runs one containerd process and waits until its socket answers.
// The returned channel yields the process's exit.
func (c *Containerd) start(ctx context.Context) (<-chan error, error) {
	files := containerdPaths(c.cfg.DataDir)
	// A socket left by a containerd that was killed would refuse
	// connections; without it, the dialer waits for the new one to appear.
	if err := os.Remove(files.socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	logFile, err := os.OpenFile(files.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	defer logFile.Close() // the child has its own copy

	cmd := exec.CommandContext(ctx, c.cfg.Binary, "--config", files.config)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = c.cfg.StopTimeout
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "PATH="+searchPath(c.cfg.ExtraPath, os.Getenv("PATH")))
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true, // a Ctrl-C meant for the agent does not reach containerd directly
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // ends when the process does; ctx's end makes sure it does
	c.pid.Store(int64(cmd.Process.Pid))
	c.log.Info("started containerd", "pid", cmd.Process.Pid, "socket", files.socket, "log", files.log)

	readyCtx, cancel := context.WithTimeoutCause(ctx, c.cfg.StartTimeout, errors.New("containerd did not answer in time"))
	defer cancel()
	ready := make(chan error, 1)
	go func() { ready <- waitForSocket(readyCtx, files.socket) }()
	select {
	case err := <-ready:
		if err == nil {
			return exited, nil
		}
		cmd.Process.Kill()
		<-exited
		return nil, fmt.Errorf("start containerd: %w; see %s", err, files.log)
	case err := <-exited:
		cancel()
		<-ready
		return nil, fmt.Errorf("start containerd: exited before it was ready (%v); see %s", err, files.log)
	}
}

// waitForSocket connects to containerd's socket and waits until the gRPC
// connection is up, which containerd allows only once its plugins are
// loaded. containerd's dialer waits for the socket file to appear, gRPC
// retries refused connections with a short back-off, and ctx bounds it all.
func waitForSocket(ctx context.Context, socket string) error {
	conn, err := grpc.NewClient(dialer.DialAddress(socket),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(dialer.ContextDialer),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: grpcbackoff.Config{
			BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, MaxDelay: time.Second,
		}}),
	)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.Connect()
	for state := conn.GetState(); state != connectivity.Ready; state = conn.GetState() {
		if !conn.WaitForStateChange(ctx, state) {
			return context.Cause(ctx)
		}
	}
	return nil
}

// searchPath is containerd's PATH: extra folders first, then runc's, then
// the agent's own.
func searchPath(extra []string, current string) string {
	dirs := append([]string(nil), extra...)
	if runc, err := exec.LookPath("runc"); err == nil {
		dirs = append(dirs, filepath.Dir(runc))
	}
	dirs = append(dirs, "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
	if current != "" {
		dirs = append(dirs, filepath.SplitList(current)...)
	}
	var unique []string
	seen := map[string]bool{}
	for _, d := range dirs {
		if d != "" && !seen[d] {
			seen[d] = true
			unique = append(unique, d)
		}
	}
	return strings.Join(unique, string(os.PathListSeparator))
}
