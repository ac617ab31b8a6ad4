// Package kubeletservertest runs the node agent's API (kubeletserver) on
// loopback for other packages' tests, in front of a fake Runtime whose
// "containers" are a folder, a CRI log file and, when started, a plain
// process of the test machine: exec runs the command locally (a real sh),
// attach connects to the local process, logs are read from the CRI file.
// Everything but containerd is real: TLS, tokens, WebSockets, terminals.
package kubeletservertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"

	"kubelite/nodeagent/runtime"
)

// Runtime is the fake: both the agent's ContainerLocator (with previous
// logs and stdinOnce) and its ExecRuntime.
type Runtime struct {
	dir string

	mu         sync.Mutex
	byID       map[string]*Container
	byName     map[string]*Container // by namespace/pod/container
	nextID     int
	closed     bool
	processing sync.WaitGroup // the goroutines of started containers
}

// NewRuntime keeps its containers' folders and logs under dir.
func NewRuntime(dir string) *Runtime {
	return &Runtime{dir: dir, byID: map[string]*Container{}, byName: map[string]*Container{}}
}

// ContainerOptions describe a container as its Pod spec would.
type ContainerOptions struct {
	// StdinOnce closes the container's stdin when the first attached
	// client's stdin ends.
	StdinOnce bool
}

// Container is one fake container. It is running from AddContainer on
// (exec works in it) until Exit, or until its process ends when it was
// started with Start.
type Container struct {
	ID, Namespace, Pod, Name string
	// Dir is the container's folder, the working directory of its processes.
	Dir string
	// LogPath is its CRI log file.
	LogPath string

	rt     *Runtime
	opts   ContainerOptions
	exited chan struct{}

	mu              sync.Mutex // guards the fields below and writes to the log files
	exitCode        int
	previousLogPath string
	main            *mainProcess
}

// AddContainer creates a running container for a Pod's container.
func (r *Runtime) AddContainer(namespace, pod, name string, opts ContainerOptions) (*Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := namespace + "/" + pod + "/" + name
	if _, ok := r.byName[key]; ok {
		return nil, fmt.Errorf("fake runtime: container %s exists", key)
	}
	r.nextID++
	id := fmt.Sprintf("fake-%d", r.nextID)
	dir := filepath.Join(r.dir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("fake runtime: %w", err)
	}
	c := &Container{
		ID: id, Namespace: namespace, Pod: pod, Name: name,
		Dir: dir, LogPath: filepath.Join(dir, "0.log"),
		rt: r, opts: opts, exited: make(chan struct{}),
	}
	if err := os.WriteFile(c.LogPath, nil, 0o644); err != nil {
		return nil, fmt.Errorf("fake runtime: %w", err)
	}
	r.byID[id], r.byName[key] = c, c
	return c, nil
}

// RemovePod kills the processes of a Pod's containers and forgets them.
func (r *Runtime) RemovePod(namespace, pod string) {
	r.mu.Lock()
	var removed []*Container
	for key, c := range r.byName {
		if c.Namespace == namespace && c.Pod == pod {
			removed = append(removed, c)
			delete(r.byName, key)
			delete(r.byID, c.ID)
		}
	}
	r.mu.Unlock()
	for _, c := range removed {
		c.kill()
	}
}

// Close kills every process and waits for the goroutines of the started
// containers.
func (r *Runtime) Close() {
	r.mu.Lock()
	r.closed = true
	all := make([]*Container, 0, len(r.byID))
	for _, c := range r.byID {
		all = append(all, c)
	}
	r.mu.Unlock()
	for _, c := range all {
		c.kill()
	}
	r.processing.Wait()
}

func (r *Runtime) container(id string) (*Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.byID[id]
	if !ok {
		return nil, fmt.Errorf("fake runtime: container %s: %w", id, runtime.ErrNotFound)
	}
	return c, nil
}

// ContainerFor implements kubeletserver.ContainerLocator.
func (r *Runtime) ContainerFor(namespace, pod, name string) (id, logPath string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.byName[namespace+"/"+pod+"/"+name]
	if !ok {
		return "", "", fmt.Errorf("container %q not found in pod %s/%s", name, namespace, pod)
	}
	return c.ID, c.LogPath, nil
}

// PreviousLogFor implements kubeletserver.PreviousLogLocator.
func (r *Runtime) PreviousLogFor(namespace, pod, name string) (string, error) {
	id, _, err := r.ContainerFor(namespace, pod, name)
	if err != nil {
		return "", err
	}
	c, err := r.container(id)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.previousLogPath == "" {
		return "", fmt.Errorf("container %q in pod %s/%s has not restarted", name, namespace, pod)
	}
	return c.previousLogPath, nil
}

// StdinOnceFor implements kubeletserver.StdinOnceLocator.
func (r *Runtime) StdinOnceFor(namespace, pod, name string) bool {
	id, _, err := r.ContainerFor(namespace, pod, name)
	if err != nil {
		return false
	}
	c, err := r.container(id)
	return err == nil && c.opts.StdinOnce
}

// Wait implements kubeletserver.ExecRuntime.
func (r *Runtime) Wait(ctx context.Context, id string) (runtime.ContainerStatus, error) {
	c, err := r.container(id)
	if err != nil {
		return runtime.ContainerStatus{}, err
	}
	select {
	case <-c.exited:
	case <-ctx.Done():
		return runtime.ContainerStatus{}, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return runtime.ContainerStatus{State: runtime.StateExited, ExitCode: c.exitCode}, nil
}

// Exec implements kubeletserver.ExecRuntime: it runs cfg.Cmd as a local
// process in the container's folder. As with the real runtime, a copy of
// cfg.Stdin still blocked after Exec returns ends when the caller closes it.
func (r *Runtime) Exec(ctx context.Context, id string, cfg runtime.ExecConfig) (int, error) {
	c, err := r.container(id)
	if err != nil {
		return -1, err
	}
	if c.hasExited() {
		return -1, fmt.Errorf("exec in container %s: container is not running", id)
	}
	if len(cfg.Cmd) == 0 {
		return -1, fmt.Errorf("exec in container %s: no command", id)
	}
	cmd := exec.CommandContext(ctx, cfg.Cmd[0], cfg.Cmd[1:]...)
	cmd.Dir = c.Dir
	if cfg.TTY {
		cmd.Env = append(os.Environ(), "TERM=xterm")
		return runWithTerminal(cmd, cfg.Stdin, cfg.Stdout, cfg.Resize)
	}
	cmd.Stdout, cmd.Stderr = orDiscard(cfg.Stdout), orDiscard(cfg.Stderr)
	if cfg.Stdin != nil {
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return -1, err
		}
		go copyAndClose(stdin, cfg.Stdin)
	}
	return exitCode(cmd.Run())
}

// runWithTerminal runs cmd on a new pseudo-terminal until it exits and its
// output has been read. (A stdout that fails leaves cmd to its context.)
func runWithTerminal(cmd *exec.Cmd, stdin io.Reader, stdout io.Writer, sizes <-chan runtime.TerminalSize) (int, error) {
	ptmx, err := pty.Start(cmd)
	if err != nil {
		return -1, err
	}
	defer ptmx.Close()
	stopResizing := applySizes(sizes, func(size runtime.TerminalSize) { setTerminalSize(ptmx, size) })
	defer stopResizing() // before ptmx closes
	if stdin != nil {
		go io.Copy(ptmx, stdin) // ends when the caller closes stdin, or ptmx closes
	}
	// The terminal reads EIO once the process and its children have gone.
	io.Copy(orDiscard(stdout), ptmx)
	return exitCode(cmd.Wait())
}

// applySizes passes terminal sizes to resize until stop is called, which
// returns once it has stopped.
func applySizes(sizes <-chan runtime.TerminalSize, resize func(runtime.TerminalSize)) (stop func()) {
	if sizes == nil {
		return func() {}
	}
	stopping, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stopping:
				return
			case size, ok := <-sizes:
				if !ok {
					return
				}
				resize(size)
			}
		}
	}()
	return func() {
		close(stopping)
		<-stopped
	}
}

// Attach implements kubeletserver.ExecRuntime for containers started with
// Start.
func (r *Runtime) Attach(ctx context.Context, id string, cfg runtime.AttachConfig) error {
	c, err := r.container(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	p := c.main
	c.mu.Unlock()
	if p == nil || c.hasExited() {
		return fmt.Errorf("attach to container %s: not running", id)
	}
	defer p.subscribe(cfg.Stdout, cfg.Stderr)()
	if cfg.Stdin != nil {
		// Ends when cfg.Stdin does; the caller closes it after Attach returns.
		go p.writeStdin(cfg.Stdin, cfg.CloseStdin)
	}
	if p.terminal != nil {
		defer applySizes(cfg.Resize, p.resize)()
	}
	select {
	case <-c.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WriteLog appends full (F) records of stream ("stdout" or "stderr") to
// the container's log, one per line.
func (c *Container) WriteLog(stream string, lines ...string) error {
	records := make([]runtime.LogLine, len(lines))
	for i, line := range lines {
		records[i] = runtime.LogLine{Time: time.Now(), Stream: stream, Content: []byte(line)}
	}
	return c.WriteLogRecords(records...)
}

// WriteLogRecords appends records to the container's log as they are.
func (c *Container) WriteLogRecords(records ...runtime.LogLine) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return appendRecords(c.LogPath, records)
}

// SetPreviousLog gives the container a previous instance whose log holds
// lines on stdout.
func (c *Container) SetPreviousLog(lines ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.previousLogPath = filepath.Join(c.Dir, "previous.log")
	records := make([]runtime.LogLine, len(lines))
	for i, line := range lines {
		records[i] = runtime.LogLine{Time: time.Now(), Stream: runtime.Stdout, Content: []byte(line)}
	}
	return appendRecords(c.previousLogPath, records)
}

func appendRecords(path string, records []runtime.LogLine) error {
	var data []byte
	for _, r := range records {
		data = r.Append(data)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Exit ends a container that was not started with Start: its log is
// complete and Wait returns.
func (c *Container) Exit(code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.markExited(code)
}

// Exited is closed once the container has exited.
func (c *Container) Exited() <-chan struct{} { return c.exited }

// ExitCode is the exit code once the container has exited.
func (c *Container) ExitCode() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exitCode
}

func (c *Container) hasExited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// markExited is called with c.mu held.
func (c *Container) markExited(code int) {
	if c.hasExited() {
		return
	}
	c.exitCode = code
	close(c.exited)
}

func (c *Container) kill() {
	c.mu.Lock()
	p := c.main
	if p == nil {
		c.markExited(137)
	}
	c.mu.Unlock()
	if p != nil {
		p.cmd.Process.Kill() // the process goroutine records the exit
	}
}

func setTerminalSize(terminal *os.File, size runtime.TerminalSize) {
	pty.Setsize(terminal, &pty.Winsize{Cols: size.Width, Rows: size.Height}) // best effort, as the runtime's
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func copyAndClose(w io.WriteCloser, r io.Reader) {
	io.Copy(w, r)
	w.Close()
}

// exitCode is a finished command's exit code: 128+N when killed by signal N.
func exitCode(err error) (int, error) {
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if status, ok := exitErr.Sys().(syscall.WaitStatus); ok && status.Signaled() {
			return 128 + int(status.Signal()), nil
		}
		return exitErr.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}
