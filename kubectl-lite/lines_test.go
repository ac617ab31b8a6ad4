package kubectl

import (
	"bufio"
	"io"
	"strings"
	"testing"
)

// lines reads what a command prints, line by line, as it comes.
type lines struct {
	next chan string
}

func newLines(r io.Reader) *lines {
	l := &lines{next: make(chan string)}
	go func() {
		defer close(l.next)
		scanner := bufio.NewScanner(r)
		for scanner.Scan() {
			l.next <- strings.TrimSuffix(scanner.Text(), "\r")
		}
		io.Copy(io.Discard, r) // let the writer finish
	}()
	return l
}

// expect reads the next line, which must be want.
func (l *lines) expect(t *testing.T, want string) {
	t.Helper()
	got, ok := <-l.next
	if !ok {
		t.Fatalf("the output ended before %q", want)
	}
	if got != want {
		t.Fatalf("line %q, want %q", got, want)
	}
}

// expectEnd checks that nothing more is printed.
func (l *lines) expectEnd(t *testing.T) {
	t.Helper()
	for got := range l.next {
		t.Errorf("more output: %q", got)
	}
}
