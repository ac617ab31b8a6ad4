package kubectl

import (
	"context"
	"io"
	"strings"
	"testing"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/nodeagent/runtime"
)

func TestLogs(t *testing.T) {
	c := startChain(t)
	httpd := c.RunningPod(t, newPod("web", nil, "httpd"))["httpd"]
	httpd.WriteLog(runtime.Stdout, "GET / 200", "GET /a 404")
	httpd.WriteLog(runtime.Stderr, "slow request")
	httpd.SetPreviousLog("killed")

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"logs", "web"}, "GET / 200\nGET /a 404\nslow request\n"},
		{[]string{"logs", "pod/web", "--tail=2"}, "GET /a 404\nslow request\n"},
		{[]string{"logs", "web", "-c", "httpd", "--tail", "1"}, "slow request\n"},
		{[]string{"logs", "web", "httpd", "--tail=1"}, "slow request\n"},
		{[]string{"logs", "-p", "web"}, "killed\n"},
	} {
		stdout, stderr, code := c.run(t, "", tt.args...)
		if code != 0 || stdout != tt.want || stderr != "" {
			t.Errorf("%v: code %d\nstdout %q\nstderr %q\nwant %q", tt.args, code, stdout, stderr, tt.want)
		}
	}
	stdout, _, _ := c.run(t, "", "logs", "web", "--tail=1", "--timestamps")
	if !strings.HasSuffix(stdout, "Z slow request\n") || !strings.HasPrefix(stdout, "20") {
		t.Errorf("--timestamps: %q", stdout)
	}
}

func TestLogsPicksAContainerAndAPod(t *testing.T) {
	c := startChain(t)
	containers := c.RunningPod(t, newPod("multi", nil, "app", "sidecar"))
	containers["app"].WriteLog(runtime.Stdout, "from app")
	stdout, stderr, code := c.run(t, "", "logs", "multi")
	if code != 0 || stdout != "from app\n" || stderr != "Defaulted container \"app\" out of: app, sidecar\n" {
		t.Errorf("logs of a two-container pod: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	labels := map[string]string{"run": "httpd"}
	deployment := &api.Deployment{
		ObjectMeta: api.ObjectMeta{Name: "httpd", Namespace: api.NamespaceDefault},
		Spec: api.DeploymentSpec{
			Selector: &api.LabelSelector{MatchLabels: labels},
			Template: api.PodTemplateSpec{ObjectMeta: api.ObjectMeta{Labels: labels}, Spec: api.PodSpec{Containers: []api.Container{{Name: "httpd", Image: "httpd"}}}},
		},
	}
	if _, err := client.For[api.Deployment](c.API.Admin, api.NamespaceDefault).Create(context.Background(), deployment); err != nil {
		t.Fatal(err)
	}
	c.RunningPod(t, newPod("httpd-b", labels, "httpd"))["httpd"].WriteLog(runtime.Stdout, "from b")
	c.RunningPod(t, newPod("httpd-a", labels, "httpd"))["httpd"].WriteLog(runtime.Stdout, "from a")
	stdout, stderr, code = c.run(t, "", "logs", "deploy/httpd")
	if code != 0 || stdout != "from a\n" || stderr != "Found 2 pods, using pod/httpd-a\n" {
		t.Errorf("logs deploy/httpd: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestLogsFollow(t *testing.T) {
	c := startChain(t)
	httpd := c.RunningPod(t, newPod("web", nil, "httpd"))["httpd"]
	httpd.WriteLog(runtime.Stdout, "started")
	out, lines := io.Pipe()
	var stderr syncBuffer
	cmd := newRootCommand(IOStreams{In: strings.NewReader(""), Out: lines, ErrOut: &stderr}, testEnvironment(t))
	cmd.SetArgs([]string{"--kubeconfig", c.kubeconfig, "logs", "-f", "web"})
	done := make(chan int, 1)
	go func() {
		done <- ExitCode(cmd.ExecuteContext(t.Context()))
		lines.Close()
	}()
	read := newLines(out)
	read.expect(t, "started")
	httpd.WriteLog(runtime.Stdout, "GET / 200")
	read.expect(t, "GET / 200")
	httpd.WriteLog(runtime.Stdout, "shutting down")
	httpd.Exit(0)
	read.expect(t, "shutting down")
	if code := <-done; code != 0 || stderr.String() != "" {
		t.Errorf("logs -f ended with code %d, stderr %q", code, stderr.String())
	}
	read.expectEnd(t)
}

func TestLogsErrors(t *testing.T) {
	c := startChain(t)
	c.RunningPod(t, newPod("multi", nil, "app", "sidecar"))
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"logs"}, "error: expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a required argument for the logs command\nSee 'kubectl-lite logs -h' for help and examples\n"},
		{[]string{"logs", "nope"}, "Error from server (NotFound): pods \"nope\" not found\n"},
		{[]string{"logs", "multi", "-c", "db"}, "Error from server (BadRequest): container db is not valid for pod multi\n"},
		{[]string{"logs", "multi", "-c", "app", "--previous"}, "Error from server (BadRequest): previous terminated container \"app\" in pod \"multi\" not found\n"},
		{[]string{"logs", "svc/kubernetes"}, "error: selector for service not implemented\n"},
	} {
		stdout, stderr, code := c.run(t, "", tt.args...)
		if code != 1 || stdout != "" || stderr != tt.want {
			t.Errorf("%v: code %d, stdout %q\nstderr %q\nwant   %q", tt.args, code, stdout, stderr, tt.want)
		}
	}
}
