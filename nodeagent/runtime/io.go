package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/cio"
	"github.com/containerd/fifo"
)

// containerIO connects a container's stdio FIFOs — the shim writes the
// container's output into them — to its CRI log file and to attached
// clients, and holds the write end of its stdin.
//
// It is a cio.IO: containerd's task calls Cancel and Wait before deleting
// the task (so all output is copied) and Close after. Unlike cio's own
// implementation it can also detach: stop copying but leave the FIFOs in
// place, so that the next agent reopens them and the container, which
// keeps running, loses no output.
type containerIO struct {
	config     cio.Config
	dir        string // the FIFOs' folder, removed by Close
	logFile    io.WriteCloser
	outputs    []*outputStream
	stdin      io.WriteCloser // nil without stdin
	stdinMu    sync.Mutex     // one attached client writes at a time
	stdinClose sync.Once
	cancelOpen context.CancelFunc
	copying    sync.WaitGroup // the goroutines copying outputs; they end at EOF or release
	release    sync.Once
}

var _ cio.IO = (*containerIO)(nil)

// outputStream copies one output FIFO into the log file and to whoever is
// attached.
type outputStream struct {
	fifo     io.ReadCloser
	log      *lineWriter
	mu       sync.Mutex
	attached map[*io.Writer]struct{}
}

// newContainerIO makes the FIFOs of a container about to start, in dir.
// With a TTY all output comes on stdout; without stdin there is no stdin FIFO.
func newContainerIO(dir, logPath string, tty, stdin bool) (*containerIO, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("fifo folder: %w", err)
	}
	config := cio.Config{
		Terminal: tty,
		Stdout:   filepath.Join(dir, "stdout"),
	}
	if !tty {
		config.Stderr = filepath.Join(dir, "stderr")
	}
	if stdin {
		config.Stdin = filepath.Join(dir, "stdin")
	}
	c, err := openContainerIO(config, dir, logPath, syscall.O_CREAT)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// attachContainerIO reopens the FIFOs of a container that kept running
// while no agent was there. Its stdin is still open: the shim holds a
// write end of the stdin FIFO for as long as the container runs.
func attachContainerIO(config cio.Config, dir, logPath string) (*containerIO, error) {
	return openContainerIO(config, dir, logPath, 0)
}

func openContainerIO(config cio.Config, dir, logPath string, create int) (c *containerIO, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	c = &containerIO{config: config, dir: dir, cancelOpen: cancel}
	defer func() {
		if err != nil {
			c.closeAll()
		}
	}()

	c.logFile = nopWriteCloser{io.Discard}
	if logPath != "" {
		if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
			return nil, fmt.Errorf("log folder: %w", err)
		}
		f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, fmt.Errorf("log file: %w", err)
		}
		c.logFile = f
	}
	log := newLogFile(c.logFile, time.Now)

	// O_NONBLOCK: opening returns at once and the fifo package completes the
	// open when the shim opens its end, as containerd's cio does.
	if config.Stdin != "" {
		if c.stdin, err = fifo.OpenFifo(ctx, config.Stdin, syscall.O_WRONLY|syscall.O_NONBLOCK|create, 0o700); err != nil {
			return nil, fmt.Errorf("open stdin fifo: %w", err)
		}
	}
	for _, s := range []struct{ path, stream string }{{config.Stdout, Stdout}, {config.Stderr, Stderr}} {
		if s.path == "" || (config.Terminal && s.stream == Stderr) {
			continue
		}
		f, err := fifo.OpenFifo(ctx, s.path, syscall.O_RDONLY|syscall.O_NONBLOCK|create, 0o700)
		if err != nil {
			return nil, fmt.Errorf("open %s fifo: %w", s.stream, err)
		}
		c.outputs = append(c.outputs, &outputStream{fifo: f, log: newLineWriter(log, s.stream), attached: map[*io.Writer]struct{}{}})
	}
	for _, out := range c.outputs {
		c.copying.Add(1)
		go func() {
			defer c.copying.Done()
			out.copy()
		}()
	}
	return c, nil
}

// creator hands this IO to containerd's NewTask.
func (c *containerIO) creator(string) (cio.IO, error) { return c, nil }

// Config is the FIFO paths the shim opens.
func (c *containerIO) Config() cio.Config { return c.config }

// Cancel gives up FIFO opens that are still pending, e.g. for a container
// that exited before the shim opened its end.
func (c *containerIO) Cancel() { c.cancelOpen() }

// Wait returns when every output stream has reached its end.
func (c *containerIO) Wait() { c.copying.Wait() }

// Close stops copying, closes the log file and removes the FIFOs.
func (c *containerIO) Close() error {
	c.closeAll()
	return os.RemoveAll(c.dir)
}

// detach stops copying and closes the log file, but leaves the FIFOs for
// the next agent.
func (c *containerIO) detach() { c.closeAll() }

func (c *containerIO) closeAll() {
	c.release.Do(func() {
		c.cancelOpen()
		c.closeStdin()
		for _, out := range c.outputs {
			out.fifo.Close()
		}
		c.copying.Wait()
		if c.logFile != nil {
			c.logFile.Close()
		}
	})
}

// subscribe sends a copy of the stream named stream to w until the returned
// function is called. With a TTY, stderr has no stream.
func (c *containerIO) subscribe(stream string, w io.Writer) (unsubscribe func()) {
	for _, out := range c.outputs {
		if out.log.stream == stream {
			return out.subscribe(w)
		}
	}
	return func() {}
}

// writeStdin copies r into the container's stdin until r ends.
func (c *containerIO) writeStdin(r io.Reader) error {
	if c.stdin == nil {
		return errors.New("the container has no stdin (create it with Stdin)")
	}
	buf := make([]byte, 32*1024)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			c.stdinMu.Lock()
			_, werr := c.stdin.Write(buf[:n])
			c.stdinMu.Unlock()
			if werr != nil {
				return werr
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			return rerr
		}
	}
}

// closeStdin closes our end of the container's stdin; the process reads
// EOF once the shim closes its end too (Task.CloseIO). A write blocked on a
// full pipe returns with an error.
func (c *containerIO) closeStdin() {
	if c.stdin != nil {
		c.stdinClose.Do(func() { c.stdin.Close() })
	}
}

func (s *outputStream) copy() {
	buf := make([]byte, 32*1024)
	for {
		n, err := s.fifo.Read(buf)
		if n > 0 {
			// A log write error (full disk) must not stop the copying, or
			// the container would block on a full pipe: the line is lost.
			s.log.Write(buf[:n])
			s.forward(buf[:n])
		}
		if err != nil {
			s.log.Close()
			return
		}
	}
}

func (s *outputStream) forward(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.attached {
		if _, err := (*w).Write(p); err != nil {
			delete(s.attached, w) // a client that went away
		}
	}
}

func (s *outputStream) subscribe(w io.Writer) func() {
	key := &w
	s.mu.Lock()
	s.attached[key] = struct{}{}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.attached, key)
		s.mu.Unlock()
	}
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
