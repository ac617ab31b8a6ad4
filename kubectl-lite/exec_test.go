package kubectl

import (
	"context"
	"strings"
	"testing"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/nodeagent/kubeletserver/kubeletservertest"
)

func TestExec(t *testing.T) {
	c := startChain(t)
	c.RunningPod(t, newPod("web", nil, "httpd"))

	stdout, stderr, code := c.run(t, "", "exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
	if code != 3 || stdout != "out\n" || stderr != "err\ncommand terminated with exit code 3\n" {
		t.Errorf("exec with exit 3: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	stdout, stderr, code = c.run(t, "hello\nworld\n", "exec", "-i", "web", "--", "tr", "a-z", "A-Z")
	if code != 0 || stdout != "HELLO\nWORLD\n" || stderr != "" {
		t.Errorf("exec -i: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// A pipe is not a terminal: -t is dropped, as kubectl drops it.
	stdout, stderr, code = c.run(t, "piped\n", "exec", "-it", "web", "-c", "httpd", "--", "cat")
	if code != 0 || stdout != "piped\n" || stderr != "Unable to use a TTY - input is not a terminal or the right kind of file\n" {
		t.Errorf("exec -it on a pipe: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	stdout, stderr, code = c.run(t, "", "exec", "web", "--", "true")
	if code != 0 || stdout != "" || stderr != "" {
		t.Errorf("exec true: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestExecErrors(t *testing.T) {
	c := startChain(t)
	c.RunningPod(t, newPod("web", nil, "httpd"))
	done := newPod("done", nil, "job")
	c.RunningPod(t, done)
	pods := client.For[api.Pod](c.API.Admin, api.NamespaceDefault)
	stored, err := pods.Get(context.Background(), "done")
	if err != nil {
		t.Fatal(err)
	}
	stored.Status.Phase = api.PodSucceeded
	if _, err := pods.UpdateStatus(context.Background(), stored); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"exec", "web"}, "error: you must specify at least one command for the container\n"},
		{[]string{"exec"}, "error: pod or type/name must be specified\nSee 'kubectl-lite exec -h' for help and examples\n"},
		{[]string{"exec", "web", "date"}, "error: exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead\nSee 'kubectl-lite exec -h' for help and examples\n"},
		{[]string{"exec", "nope", "--", "date"}, "Error from server (NotFound): pods \"nope\" not found\n"},
		{[]string{"exec", "web", "-c", "db", "--", "date"}, "Error from server (BadRequest): container db is not valid for pod web\n"},
		{[]string{"exec", "done", "--", "date"}, "error: cannot exec into a container in a completed pod; current phase is Succeeded\n"},
	} {
		stdout, stderr, code := c.run(t, "", tt.args...)
		if code != 1 || stdout != "" || stderr != tt.want {
			t.Errorf("%v: code %d, stdout %q\nstderr %q\nwant   %q", tt.args, code, stdout, stderr, tt.want)
		}
	}
}

func TestAttach(t *testing.T) {
	c := startChain(t)
	pod := newPod("job", nil, "sh")
	pod.Spec.Containers[0].Stdin, pod.Spec.Containers[0].StdinOnce = true, true
	sh := c.RunningPod(t, pod)["sh"]
	if err := sh.Start([]string{"sh"}, kubeletservertest.StartOptions{Stdin: true}); err != nil {
		t.Fatal(err)
	}
	// The container's stdin closes with ours (stdinOnce): the shell runs
	// what it was given and exits, which ends the session.
	stdout, stderr, code := c.run(t, "echo attached; echo to-stderr >&2\n", "attach", "job", "-i")
	if code != 0 || stdout != "attached\n" || stderr != "If you don't see a command prompt, try pressing enter.\nto-stderr\n" {
		t.Errorf("attach -i: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	<-sh.Exited()

	stdout, stderr, code = c.run(t, "", "attach", "job", "-q")
	if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "error: Internal error occurred: attach to container") || !strings.HasSuffix(stderr, "not running\n") {
		t.Errorf("attach to an exited container: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
