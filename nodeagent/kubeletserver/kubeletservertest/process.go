package kubeletservertest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/creack/pty"

	"kubelite/nodeagent/runtime"
)

// mainProcess is the process of a container started with Start.
type mainProcess struct {
	cmd      *exec.Cmd
	terminal *os.File       // the terminal's controlling side, with a TTY
	stdin    io.WriteCloser // the terminal, or a pipe to the process's stdin

	mu             sync.Mutex
	subscribers    map[*subscriber]struct{}
	terminalClosed bool // attachers may still resize it: they check under mu
}

// subscriber is an attached client's output.
type subscriber struct {
	stdout, stderr io.Writer
}

// StartOptions are the container's stdin and tty, as in its Pod spec.
type StartOptions struct {
	// TTY runs the process on a new terminal; stderr is then part of stdout.
	TTY bool
	// Stdin keeps the process's stdin open for attached clients; without
	// it (and without a TTY) the process reads an empty stdin.
	Stdin bool
}

// Start runs argv as the container's process, in its folder. Its output
// goes to the container's log and to attached clients; attached clients'
// input goes to its stdin. When it exits, so does the container.
func (c *Container) Start(argv []string, opts StartOptions) error {
	if len(argv) == 0 {
		return errors.New("fake runtime: no command")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.main != nil || c.hasExited() {
		return fmt.Errorf("fake runtime: container %s was started already", c.ID)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = c.Dir
	p := &mainProcess{cmd: cmd, subscribers: map[*subscriber]struct{}{}}
	outputs := map[string]io.Reader{}
	if opts.TTY {
		cmd.Env = append(os.Environ(), "TERM=xterm")
		terminal, err := pty.Start(cmd)
		if err != nil {
			return fmt.Errorf("fake runtime: %w", err)
		}
		p.terminal, p.stdin = terminal, terminal
		outputs[runtime.Stdout] = terminal
	} else {
		var err error
		if opts.Stdin {
			if p.stdin, err = cmd.StdinPipe(); err != nil {
				return fmt.Errorf("fake runtime: %w", err)
			}
		}
		if outputs[runtime.Stdout], err = cmd.StdoutPipe(); err != nil {
			return fmt.Errorf("fake runtime: %w", err)
		}
		if outputs[runtime.Stderr], err = cmd.StderrPipe(); err != nil {
			return fmt.Errorf("fake runtime: %w", err)
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("fake runtime: %w", err)
		}
	}
	c.main = p

	c.rt.mu.Lock()
	closed := c.rt.closed
	if !closed {
		c.rt.processing.Add(1)
	}
	c.rt.mu.Unlock()
	if closed {
		cmd.Process.Kill()
		cmd.Wait()
		return errors.New("fake runtime: closed")
	}
	go c.supervise(p, outputs)
	return nil
}

// supervise copies the process's output until it ends, then records the
// exit: everything the process wrote has been delivered by then.
func (c *Container) supervise(p *mainProcess, outputs map[string]io.Reader) {
	defer c.rt.processing.Done()
	var copying sync.WaitGroup
	for stream, out := range outputs {
		copying.Add(1)
		go func() {
			defer copying.Done()
			c.pump(p, stream, out)
		}()
	}
	copying.Wait()
	code, _ := exitCode(p.cmd.Wait())
	p.closeTerminal()
	c.mu.Lock()
	c.markExited(code)
	c.mu.Unlock()
}

// pump copies one output stream to attached clients and to the log, one
// record per line (a terminal's "\r\n" loses its "\r"). A last line without
// a newline is written as a partial record.
func (c *Container) pump(p *mainProcess, stream string, out io.Reader) {
	var pending []byte
	buf := make([]byte, 32*1024)
	for {
		n, err := out.Read(buf)
		if n > 0 {
			p.forward(stream, buf[:n])
			pending = append(pending, buf[:n]...)
			var records []runtime.LogLine
			for {
				i := bytes.IndexByte(pending, '\n')
				if i < 0 {
					break
				}
				line := bytes.TrimSuffix(pending[:i], []byte("\r"))
				records = append(records, runtime.LogLine{Time: time.Now(), Stream: stream, Content: bytes.Clone(line)})
				pending = pending[i+1:]
			}
			c.WriteLogRecords(records...)
		}
		if err != nil {
			if len(pending) > 0 {
				c.WriteLogRecords(runtime.LogLine{Time: time.Now(), Stream: stream, Partial: true, Content: pending})
			}
			return
		}
	}
}

func (p *mainProcess) forward(stream string, data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for s := range p.subscribers {
		w := s.stdout
		if stream == runtime.Stderr {
			w = s.stderr
		}
		if w == nil {
			continue
		}
		if _, err := w.Write(data); err != nil {
			delete(p.subscribers, s) // a client that went away
		}
	}
}

// resize sets the terminal's size, unless it has closed.
func (p *mainProcess) resize(size runtime.TerminalSize) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.terminalClosed {
		setTerminalSize(p.terminal, size)
	}
}

func (p *mainProcess) closeTerminal() {
	if p.terminal == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.terminalClosed = true
	p.terminal.Close()
}

// subscribe sends the output to stdout and stderr until the returned
// function is called.
func (p *mainProcess) subscribe(stdout, stderr io.Writer) (unsubscribe func()) {
	s := &subscriber{stdout: stdout, stderr: stderr}
	p.mu.Lock()
	p.subscribers[s] = struct{}{}
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		delete(p.subscribers, s)
		p.mu.Unlock()
	}
}

// writeStdin copies r to the process's stdin until r ends; with closeAfter
// it then closes that stdin, as stdinOnce asks — except a terminal's, which
// containerd leaves open too, since closing it would hang the terminal up.
func (p *mainProcess) writeStdin(r io.Reader, closeAfter bool) {
	if p.stdin == nil {
		io.Copy(io.Discard, r) // a container without stdin ignores its attachers' input
		return
	}
	io.Copy(p.stdin, r)
	if closeAfter && p.terminal == nil {
		p.stdin.Close()
	}
}
