package kubectl

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// screen is what a terminal shows, as its output comes.
type screen struct {
	mu      sync.Mutex
	text    []byte
	changed chan struct{} // closed, and replaced, whenever text grows or the output ends
	ended   bool
	seen    int // where the next wait starts looking; the test goroutine's alone
}

// watch reads the terminal until it ends; the returned channel closes then.
func (s *screen) watch(terminal *os.File) <-chan struct{} {
	s.changed = make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := terminal.Read(buf)
			s.mu.Lock()
			s.text = append(s.text, buf[:n]...)
			s.ended = err != nil
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return done
}

// waitFor waits until the terminal shows a match of re after what earlier
// waits saw, and returns its submatches.
func (s *screen) waitFor(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	for {
		s.mu.Lock()
		if m := re.FindSubmatchIndex(s.text[s.seen:]); m != nil {
			var groups []string
			for i := 0; i < len(m); i += 2 {
				groups = append(groups, string(s.text[s.seen+m[i]:s.seen+m[i+1]]))
			}
			s.seen += m[1]
			s.mu.Unlock()
			return groups
		}
		if s.ended {
			text := string(s.text)
			s.mu.Unlock()
			t.Fatalf("the terminal never showed %s; it showed:\n%s", re, text)
		}
		changed := s.changed
		s.mu.Unlock()
		<-changed
	}
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.text)
}

// startOnTerminal runs kubectl-lite (this test binary, see TestMain) with
// args as a child process on a new terminal of the given size.
func startOnTerminal(t *testing.T, size *pty.Winsize, args ...string) (*exec.Cmd, *os.File, *screen) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runAsCLI+"=1", "HOME="+t.TempDir(), "KUBECONFIG=")
	terminal, err := pty.StartWithSize(cmd, size)
	if err != nil {
		t.Fatal(err)
	}
	s := &screen{}
	readerDone := s.watch(terminal)
	// Should the child hang, end it before the test binary's own deadline,
	// so that the failure shows the terminal rather than a goroutine dump.
	if deadline, ok := t.Deadline(); ok {
		stopAt := time.AfterFunc(time.Until(deadline)-30*time.Second, func() { cmd.Process.Kill() })
		t.Cleanup(func() { stopAt.Stop() })
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // no-op once it has exited
		cmd.Wait()
		terminal.Close()
		<-readerDone
	})
	return cmd, terminal, s
}

// askSize types a command that prints the remote terminal's size until it
// is want: the size travels beside the typing, not in step with it.
func askSize(t *testing.T, terminal *os.File, s *screen, want string) {
	t.Helper()
	for i := 1; ; i++ {
		fmt.Fprintf(terminal, "echo size%d:$(stty size)\r", i)
		got := s.waitFor(t, regexp.MustCompile(fmt.Sprintf(`size%d:(\d+ \d+)`, i)))[1]
		if got == want {
			return
		}
		if i == 100 {
			t.Fatalf("the remote terminal is %s, not %s", got, want)
		}
	}
}

func TestRunRmInteractiveShellOnATerminal(t *testing.T) {
	c := startChain(t)
	c.ActAsAgent(t)
	cmd, terminal, s := startOnTerminal(t, &pty.Winsize{Rows: 33, Cols: 111},
		"--kubeconfig", c.kubeconfig, "run", "busybox", "--rm", "-it", "--image=busybox")

	s.waitFor(t, regexp.MustCompile(regexp.QuoteMeta("If you don't see a command prompt, try pressing enter.")))
	// $((6*7)) keeps the typed line itself from matching.
	fmt.Fprint(terminal, "echo hello-$((6*7))\r")
	s.waitFor(t, regexp.MustCompile(`hello-42`))

	askSize(t, terminal, s, "33 111") // the local terminal's size, sent on attach
	if err := pty.Setsize(terminal, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	askSize(t, terminal, s, "40 120") // the window changed: SIGWINCH, then a resize message

	fmt.Fprint(terminal, "exit\r")
	s.waitFor(t, regexp.MustCompile(regexp.QuoteMeta("Session ended, resume using 'kubectl-lite attach busybox -c busybox -i -t' command when the pod is running")))
	s.waitFor(t, regexp.MustCompile(regexp.QuoteMeta(`pod "busybox" deleted`)))
	if err := cmd.Wait(); err != nil {
		var exitErr *exec.ExitError
		errors.As(err, &exitErr)
		t.Errorf("kubectl-lite run exited with %v; the terminal showed:\n%s", err, s)
	}
	if !podGone(t, c, "busybox") {
		t.Error("the pod is still there after the shell exited")
	}
}

func TestExecInteractiveShellOnATerminal(t *testing.T) {
	c := startChain(t)
	c.RunningPod(t, newPod("web", nil, "httpd"))
	cmd, terminal, s := startOnTerminal(t, &pty.Winsize{Rows: 24, Cols: 80},
		"--kubeconfig", c.kubeconfig, "exec", "-it", "web", "--", "sh")

	askSize(t, terminal, s, "24 80")
	// A prompt of our own marks the shell waiting for a line; the typed
	// line itself does not show it ("$(echo rea)dy> ").
	prompt := regexp.MustCompile(`ready> `)
	fmt.Fprint(terminal, `PS1="$(echo rea)dy> "`+"\r")
	s.waitFor(t, prompt)
	// Raw mode: ^C goes to the remote terminal, which interrupts its
	// foreground job rather than kubectl-lite.
	fmt.Fprint(terminal, `sh -c 'echo sleeping-$((1+1)); exec sleep 1000'`+"\r")
	s.waitFor(t, regexp.MustCompile(`sleeping-2`))
	fmt.Fprint(terminal, "\x03")
	s.waitFor(t, prompt)
	fmt.Fprint(terminal, "echo still-$((40+2))\r")
	s.waitFor(t, regexp.MustCompile(`still-42`))
	fmt.Fprint(terminal, "exit 7\r")
	s.waitFor(t, regexp.MustCompile(`command terminated with exit code 7`))
	err := cmd.Wait()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 7 {
		t.Errorf("exec -it exited with %v, want code 7; the terminal showed:\n%s", err, s)
	}
}
