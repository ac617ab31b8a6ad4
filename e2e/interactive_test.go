package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// stepRunInteractive types into `kubectl-lite run busybox --rm -it
// --image=busybox` through a terminal, as the tutorial's reader does.
func stepRunInteractive(t *testing.T, l *lab) {
	cmd := exec.Command(filepath.Join(l.binDir, "kubectl-lite"), "run", "busybox", "--rm", "-it", "--image=busybox")
	cmd.Env = l.env()
	cmd.Dir = l.repo
	term, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatalf("start kubectl-lite run in a terminal: %v", err)
	}
	screen := newScreen(term)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	finished := false
	defer func() {
		if !finished {
			_ = cmd.Process.Kill()
			<-exited
		}
		term.Close()
		t.Logf("the terminal showed:\n%s", screen.text())
	}()

	// kubectl prints "If you don't see a command prompt, try pressing
	// enter." because the shell's first prompt may come before the
	// terminal is attached; so press enter until a prompt shows.
	prompt := "/ # "
	eventually(t, podsDeadline, "busybox's shell prompt", func() (bool, string) {
		if strings.Contains(screen.text(), prompt) {
			return true, ""
		}
		select {
		case err := <-exited:
			finished = true
			t.Fatalf("kubectl-lite run exited before a prompt (%v):\n%s", err, screen.text())
		default:
		}
		_, _ = term.Write([]byte("\r"))
		return false, screen.text()
	})

	mark := screen.len()
	if _, err := term.Write([]byte("wget -qO- httpd-svc:8080\r")); err != nil {
		t.Fatalf("type into the terminal: %v", err)
	}
	eventually(t, trafficDeadline, "wget -qO- httpd-svc:8080 in the shell to print the httpd page", func() (bool, string) {
		return strings.Contains(screen.since(mark), itWorks), screen.since(mark)
	})

	if _, err := term.Write([]byte("exit\r")); err != nil {
		t.Fatalf("type into the terminal: %v", err)
	}
	select {
	case err := <-exited:
		finished = true
		if err != nil {
			t.Errorf("kubectl-lite run ended with %v after exit, want success", err)
		}
	case <-time.After(stateDeadline):
		t.Fatalf("kubectl-lite run still runs %s after exit was typed:\n%s", stateDeadline, screen.text())
	}
	screen.drain()
	if want := `pod "busybox" deleted`; !strings.Contains(screen.text(), want) {
		t.Errorf("leaving the shell did not say %s", want)
	}
	eventually(t, stateDeadline, "the busybox pod to be gone", func() (bool, string) {
		out, err := l.kubectl("get", "pod", "busybox")
		return err != nil && strings.Contains(out, "not found"), fmt.Sprintf("%v\n%s", err, out)
	})
}

// screen collects what a terminal shows.
type screen struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{} // closed when the terminal has nothing more to read
}

func newScreen(term *os.File) *screen {
	s := &screen{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		chunk := make([]byte, 4096)
		for {
			n, err := term.Read(chunk)
			s.mu.Lock()
			s.buf.Write(chunk[:n])
			s.mu.Unlock()
			if err != nil { // EIO once the process is gone, or the terminal closed
				return
			}
		}
	}()
	return s
}

func (s *screen) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *screen) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Len()
}

// since is what the terminal showed after the first mark bytes.
func (s *screen) since(mark int) string {
	return s.text()[mark:]
}

// drain waits briefly for the last output of a process that has exited.
func (s *screen) drain() {
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
	}
}
