package nftables

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestFailedLine(t *testing.T) {
	script := []byte("add table ip t\nadd chain ip t c\nadd rule ip t c bogus\n")
	for stderr, want := range map[string]string{
		"/dev/stdin:3:17-21: Error: syntax error, unexpected string\nadd rule ip t c bogus\n                ^^^^^": "add rule ip t c bogus",
		"/dev/stdin:1:1-14: Error: Could not process rule: Operation not permitted":                                "add table ip t",
		"/dev/stdin:99:1-3: Error: x":                                            "",
		"Error: No such file or directory\nlist table ip nosuch":                 "",
		"internal:0:0-0: Error: Could not process rule: Device or resource busy": "",
	} {
		if got := failedLine(stderr, script); got != want {
			t.Errorf("failedLine(%q) = %q, want %q", stderr, got, want)
		}
	}
}

func TestIsNotFound(t *testing.T) {
	notFound := &Error{Args: []string{"list", "table", "ip", "x"}, Err: errors.New("exit status 1"), Stderr: "Error: No such file or directory"}
	if !IsNotFound(fmt.Errorf("checking: %w", notFound)) {
		t.Error("a wrapped ENOENT is not found")
	}
	if IsNotFound(&Error{Err: errors.New("exit status 1"), Stderr: "Error: Could not process rule: Operation not permitted"}) {
		t.Error("EPERM is not not-found")
	}
	if IsNotFound(errors.New("No such file or directory")) {
		t.Error("only nft's own errors count")
	}
}

// TestRunner applies scripts with the real nft inside a namespace the
// test creates (and deletes), so the machine's own ruleset is untouched.
func TestRunner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test creates a network namespace and must run as root")
	}
	name := fmt.Sprintf("nftrun%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	r, err := New("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	if err := r.Apply(ctx, []byte("add table ip demo\nadd chain ip demo c\nadd rule ip demo c ip daddr 10.96.0.1 tcp dport 80 drop\n")); err != nil {
		t.Fatal(err)
	}
	out, err := r.List(ctx, "chain", "ip", "demo", "c")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "ip daddr 10.96.0.1 tcp dport 80 drop") {
		t.Fatalf("listing lacks the rule:\n%s", out)
	}

	// A failing script changes nothing, and the error names its line.
	err = r.Apply(ctx, []byte("add chain ip demo d\nadd rule ip demo d ip daddr 10.96.0.2 drop\nadd rule ip demo d jump nosuch\n"))
	var nftErr *Error
	if !errors.As(err, &nftErr) || nftErr.Line != "add rule ip demo d jump nosuch" {
		t.Fatalf("Apply error = %v, want one naming line 3", err)
	}
	if _, err := r.List(ctx, "chain", "ip", "demo", "d"); !IsNotFound(err) {
		t.Fatalf("chain d exists after a failed transaction (err %v)", err)
	}

	// The machine's own namespace does not see the table.
	if out, err := exec.Command("nft", "list", "tables").CombinedOutput(); err == nil && strings.Contains(string(out), "table ip demo") {
		t.Fatal("the table leaked into the root namespace")
	}
}
