package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
)

// TerminalSize is a terminal's size in characters.
type TerminalSize struct {
	Width, Height uint16
}

// ExecConfig is one command to run in a running container.
type ExecConfig struct {
	Cmd []string
	TTY bool
	// Stdin, when not nil, feeds the command; its end closes the command's
	// stdin. The caller closes Stdin after Exec returns if it may block.
	Stdin io.Reader
	// Stdout and Stderr receive the command's output, each its own stream
	// (with a TTY everything comes on Stdout). Nil discards.
	Stdout, Stderr io.Writer
	// Resize, when not nil, carries terminal size changes (TTY only).
	Resize <-chan TerminalSize
}

// Exec runs cfg.Cmd in the running container id, with the container's
// environment, user and working directory, and returns its exit code once
// the command has exited and its output has been written. When ctx ends
// first, the command is killed.
func (r *Runtime) Exec(ctx context.Context, id string, cfg ExecConfig) (int, error) {
	ctx = r.withNamespace(ctx)
	// fail wraps err. When ctx has ended, that is the cause: containerd
	// reports a deadline hit mid-call as an "unknown" gRPC error, in which
	// errors.Is cannot find context.DeadlineExceeded.
	fail := func(err error) (int, error) {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			return -1, fmt.Errorf("exec in container %s: %w (%v)", id, ctxErr, err)
		}
		return -1, fmt.Errorf("exec in container %s: %w", id, err)
	}
	if len(cfg.Cmd) == 0 {
		return -1, fmt.Errorf("exec in container %s: no command", id)
	}
	container, err := r.loadContainer(ctx, id)
	if err != nil {
		if ctx.Err() != nil {
			return fail(err)
		}
		return -1, fmt.Errorf("exec: %w", err)
	}
	task, err := container.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return -1, fmt.Errorf("exec in container %s: container is not running", id)
	}
	if err != nil {
		return fail(err)
	}
	spec, err := container.Spec(ctx)
	if err != nil {
		return fail(err)
	}
	process := *spec.Process
	process.Args = cfg.Cmd
	process.Terminal = cfg.TTY
	if cfg.TTY && !slices.ContainsFunc(process.Env, func(kv string) bool { return strings.HasPrefix(kv, "TERM=") }) {
		process.Env = append(slices.Clone(process.Env), "TERM=xterm")
	}

	// The shim holds a write end of the stdin FIFO itself (so that stdin
	// outlives a client), so the end of cfg.Stdin is passed on by asking
	// it to close that end too (CloseIO), as ctr does.
	var stdin *stdinCloser
	if cfg.Stdin != nil {
		stdin = &stdinCloser{r: cfg.Stdin}
	}
	// The shim wants both output FIFOs even when nobody reads one.
	stdout, stderr := cfg.Stdout, cfg.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	streams := []cio.Opt{cio.WithStreams(stdin.reader(), stdout, stderr), cio.WithFIFODir(r.execFIFODir())}
	if cfg.TTY {
		streams = append(streams, cio.WithTerminal)
	}
	execID := "exec-" + newID()[:16]
	proc, err := task.Exec(ctx, execID, &process, cio.NewCreator(streams...))
	if err != nil {
		return fail(err)
	}
	defer func() {
		cleanup, cancel := cleanupContext(ctx)
		defer cancel()
		if _, err := proc.Delete(cleanup, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			r.log.Warn("could not delete an exec process", "id", id, "exec", execID, "err", err)
		}
	}()

	exits, err := proc.Wait(ctx)
	if err != nil {
		return fail(err)
	}
	stdin.onEOF(func() { proc.CloseIO(ctx, containerd.WithStdinCloser) })
	if err := proc.Start(ctx); err != nil {
		return fail(err)
	}
	stopResizing := forwardResizes(ctx, cfg.Resize, proc.Resize)
	defer stopResizing()

	select {
	case status := <-exits:
		proc.IO().Wait() // all output written before we report the exit
		code, _, err := status.Result()
		if err != nil {
			return -1, fmt.Errorf("exec in container %s: %w", id, err)
		}
		return int(code), nil
	case <-ctx.Done():
		cleanup, cancel := cleanupContext(ctx)
		defer cancel()
		proc.Kill(cleanup, syscall.SIGKILL)
		<-exits
		return -1, fmt.Errorf("exec in container %s: %w", id, ctx.Err())
	}
}

// stdinCloser calls a function when the reader it wraps ends. The
// function is set once the process exists; an end seen before that calls
// it then.
type stdinCloser struct {
	r     io.Reader
	mu    sync.Mutex
	ended bool
	fn    func()
}

// reader is s as an io.Reader, or nil (no stdin) when s is nil.
func (s *stdinCloser) reader() io.Reader {
	if s == nil {
		return nil
	}
	return s
}

func (s *stdinCloser) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil {
		s.mu.Lock()
		s.ended = true
		fn := s.fn
		s.mu.Unlock()
		if fn != nil {
			fn()
		}
	}
	return n, err
}

func (s *stdinCloser) onEOF(fn func()) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.fn = fn
	ended := s.ended
	s.mu.Unlock()
	if ended {
		fn()
	}
}

// AttachConfig says which of a running container's streams to attach to.
type AttachConfig struct {
	// Stdin, when not nil, is written to the container's stdin (which
	// needs ContainerSpec.Stdin). The caller closes it after Attach
	// returns if it may block.
	Stdin io.Reader
	// CloseStdin closes the container's stdin when Stdin ends, as
	// Kubernetes' stdinOnce does: the shell of `run -it --rm` then exits.
	CloseStdin bool
	// Stdout and Stderr receive the container's output from now on (with
	// a TTY everything comes on Stdout). Nil is not interested.
	Stdout, Stderr io.Writer
	// Resize, when not nil, carries terminal size changes.
	Resize <-chan TerminalSize
}

// Attach connects to a running container's streams until it exits or ctx
// ends. Output written before Attach is in the log file only.
func (r *Runtime) Attach(ctx context.Context, id string, cfg AttachConfig) error {
	ctx = r.withNamespace(ctx)
	rc := r.runningContainer(id)
	if rc == nil {
		return fmt.Errorf("attach to container %s: not running", id)
	}
	if rc.stdio == nil {
		return fmt.Errorf("attach to container %s: its output was not recovered after an agent restart", id)
	}
	if cfg.Stdout != nil {
		unsubscribe := rc.stdio.subscribe(Stdout, cfg.Stdout)
		defer unsubscribe()
	}
	if cfg.Stderr != nil {
		unsubscribe := rc.stdio.subscribe(Stderr, cfg.Stderr)
		defer unsubscribe()
	}
	stdinDone := make(chan error, 1)
	if cfg.Stdin != nil {
		// Ends when cfg.Stdin does; the caller owns that reader.
		go func() { stdinDone <- rc.stdio.writeStdin(cfg.Stdin) }()
	}
	stopResizing := forwardResizes(ctx, cfg.Resize, rc.task.Resize)
	defer stopResizing()

	for {
		select {
		case <-rc.exited:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case err := <-stdinDone:
			if err != nil && !errors.Is(err, io.ErrClosedPipe) {
				return fmt.Errorf("attach to container %s: stdin: %w", id, err)
			}
			if cfg.CloseStdin {
				// Our end, then the shim's (see Exec): the process reads EOF.
				rc.stdio.closeStdin()
				if err := rc.task.CloseIO(ctx, containerd.WithStdinCloser); err != nil {
					return fmt.Errorf("attach to container %s: close stdin: %w", id, err)
				}
			}
			stdinDone = nil // keep streaming output until the container exits
		}
	}
}

// forwardResizes applies terminal size changes until ctx ends or the
// returned stop function is called, which also waits for it to finish.
func forwardResizes(ctx context.Context, sizes <-chan TerminalSize, resize func(ctx context.Context, w, h uint32) error) (stop func()) {
	if sizes == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case size, ok := <-sizes:
				if !ok {
					return
				}
				resize(ctx, uint32(size.Width), uint32(size.Height)) // best effort: the next size fixes it
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
