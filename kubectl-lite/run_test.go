package kubectl

import (
	"context"
	"reflect"
	"testing"

	"kubelite/api"
	"kubelite/api/client"
)

func TestRunCreatesAPod(t *testing.T) {
	c := startChain(t)
	stdout, stderr, code := c.run(t, "", "run", "httpd", "--image=httpd", "--port=80", "--env=GREETING=hi")
	if code != 0 || stdout != "pod/httpd created\n" || stderr != "" {
		t.Fatalf("run httpd: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	pod, err := client.For[api.Pod](c.API.Admin, api.NamespaceDefault).Get(context.Background(), "httpd")
	if err != nil {
		t.Fatal(err)
	}
	container := pod.Spec.Containers[0]
	if pod.Labels["run"] != "httpd" || container.Name != "httpd" || container.Image != "httpd" ||
		pod.Spec.RestartPolicy != api.RestartAlways || container.Stdin || container.TTY ||
		len(container.Ports) != 1 || container.Ports[0].ContainerPort != 80 ||
		!reflect.DeepEqual(container.Env, []api.EnvVar{{Name: "GREETING", Value: "hi"}}) {
		t.Errorf("the pod run made: labels %v, container %+v, restart %s", pod.Labels, container, pod.Spec.RestartPolicy)
	}

	if _, _, code := c.run(t, "", "run", "sleeper", "--image=busybox", "--restart=Never", "--command", "--", "sleep", "3600"); code != 0 {
		t.Fatalf("run sleeper: code %d", code)
	}
	pod, err = client.For[api.Pod](c.API.Admin, api.NamespaceDefault).Get(context.Background(), "sleeper")
	if err != nil {
		t.Fatal(err)
	}
	if got := pod.Spec.Containers[0]; !reflect.DeepEqual(got.Command, []string{"sleep", "3600"}) || got.Args != nil || pod.Spec.RestartPolicy != api.RestartNever {
		t.Errorf("--command: command %q, args %q, restart %s", got.Command, got.Args, pod.Spec.RestartPolicy)
	}
}

func TestRunRefusesBadFlags(t *testing.T) {
	c := startChain(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "x"}, "error: required flag(s) \"image\" not set\n"},
		{[]string{"run", "--image=busybox"}, "error: NAME is required for run\nSee 'kubectl-lite run -h' for help and examples\n"},
		{[]string{"run", "x", "--image=busybox", "--rm"}, "error: --rm should only be used for attached containers\n"},
		{[]string{"run", "x", "--image=busybox", "-t"}, "error: -i/--stdin is required for containers with -t/--tty=true\n"},
		{[]string{"run", "x", "--image=busybox", "--restart=Sometimes"}, "error: invalid restart policy: Sometimes\n"},
		{[]string{"run", "x", "--image=busybox", "--env=NOVALUE"}, "error: invalid env: NOVALUE\n"},
	} {
		stdout, stderr, code := c.run(t, "", tt.args...)
		if code != 1 || stdout != "" || stderr != tt.want {
			t.Errorf("%v: code %d, stdout %q\nstderr %q\nwant   %q", tt.args, code, stdout, stderr, tt.want)
		}
	}
	list, err := client.For[api.Pod](c.API.Admin, api.NamespaceDefault).List(context.Background(), client.ListOptions{})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("a refused run left pods behind: %v %v", list, err)
	}
}

func TestRunInteractiveWithAPipe(t *testing.T) {
	c := startChain(t)
	c.ActAsAgent(t)
	// The container's shell reads the script, runs it and exits with 5;
	// --restart=Never passes that exit code through, and --rm deletes the pod.
	stdout, stderr, code := c.run(t, "echo hello from $((6*7)); exit 5\n",
		"run", "job", "--rm", "-i", "--restart=Never", "--image=busybox", "--", "sh")
	if code != 5 || stdout != "hello from 42\npod \"job\" deleted\n" ||
		stderr != "If you don't see a command prompt, try pressing enter.\npod default/job terminated (Error)\n" {
		t.Errorf("run -i --rm: code %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}
	if !podGone(t, c, "job") {
		t.Error("run --rm left the pod")
	}
}
