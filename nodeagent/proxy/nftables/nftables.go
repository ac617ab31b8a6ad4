// Package nftables is the small part of nft the service proxy needs: apply
// a script as one transaction, and list what the kernel holds.
//
// The proxier's nftables mode writes text in nft's own language and hands
// it to `nft -f -`, exactly as a user would; there is no netlink library in
// between, so what the proxier writes is what `nft list` prints back and
// what a learner can type in by hand. Runner is the real thing and can act
// inside another network namespace, which is how tests and the one-machine
// lab give every "node" its own ruleset without touching the machine's.
package nftables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"kubelite/nodeagent/proxy/netns"
)

// Interface is what the proxier needs from nft.
type Interface interface {
	// Apply runs script with `nft -f -`. nft sends the whole script to
	// the kernel as one transaction: either every command takes effect,
	// at once, or none does.
	Apply(ctx context.Context, script []byte) error
	// List runs `nft list args...` and returns what it prints; for example
	// List(ctx, "table", "ip", "kubelite") is `nft list table ip kubelite`.
	// Listing something that does not exist is an error for which
	// IsNotFound is true.
	List(ctx context.Context, args ...string) ([]byte, error)
}

// Runner runs the machine's nft, optionally inside a network namespace. It
// is safe for concurrent use: the kernel serialises transactions.
type Runner struct {
	netnsPath string
	nftPath   string
}

var _ Interface = (*Runner)(nil)

// New returns a Runner for the network namespace bound at netnsPath ("" for
// the caller's own). It fails if nft is not installed.
func New(netnsPath string) (*Runner, error) {
	path, err := exec.LookPath("nft")
	if err != nil {
		return nil, fmt.Errorf("nftables mode needs the nft command (Debian: apt-get install nftables): %w", err)
	}
	return &Runner{netnsPath: netnsPath, nftPath: path}, nil
}

// Apply implements Interface.
func (r *Runner) Apply(ctx context.Context, script []byte) error {
	_, err := r.run(ctx, script, "-f", "-")
	return err
}

// List implements Interface.
func (r *Runner) List(ctx context.Context, args ...string) ([]byte, error) {
	return r.run(ctx, nil, append([]string{"list"}, args...)...)
}

// run runs nft with args in the runner's namespace, feeding it stdin. The
// process is started from a thread inside the namespace (netns.Do), so nft
// talks to that namespace's kernel tables.
func (r *Runner) run(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	err := netns.Do(r.netnsPath, func() error {
		cmd := exec.CommandContext(ctx, r.nftPath, args...)
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		return cmd.Run()
	})
	if err != nil {
		return nil, &Error{
			Args:   args,
			Err:    err,
			Stderr: trimStderr(stderr.String()),
			Line:   failedLine(stderr.String(), stdin),
		}
	}
	return stdout.Bytes(), nil
}

// Error is a failed nft command: its arguments, nft's complaint and, when
// nft named a line of the script ("/dev/stdin:12:5-9: Error: ..."), that
// line.
type Error struct {
	Args   []string
	Err    error
	Stderr string
	Line   string // the failing script line, "" if unknown
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("nft %s: %v: %s", strings.Join(e.Args, " "), e.Err, e.Stderr)
	if e.Line != "" {
		msg += fmt.Sprintf(" (script line: %s)", e.Line)
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// IsNotFound reports whether err says that the table, chain or set named
// does not exist (nft's ENOENT, "No such file or directory").
func IsNotFound(err error) bool {
	var nftErr *Error
	return errors.As(err, &nftErr) && strings.Contains(nftErr.Stderr, "No such file or directory")
}

// maxStderr bounds the nft output kept in an error: a script of 100,000
// lines can fail on each of them, and a log line should stay readable.
const maxStderr = 4096

func trimStderr(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxStderr {
		s = s[:maxStderr] + " …(truncated)"
	}
	return s
}

// failedLinePattern matches the position nft gives an error in its input:
// "/dev/stdin:12:5-9: Error: ...".
var failedLinePattern = regexp.MustCompile(`(?m)^/dev/stdin:(\d+):`)

// failedLine returns the script line that stderr names first, or "".
func failedLine(stderr string, script []byte) string {
	m := failedLinePattern.FindStringSubmatch(stderr)
	if m == nil {
		return ""
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n < 1 {
		return ""
	}
	for i, line := range bytes.SplitN(script, []byte("\n"), n+1) {
		if i == n-1 {
			return strings.TrimSpace(string(line))
		}
	}
	return ""
}
