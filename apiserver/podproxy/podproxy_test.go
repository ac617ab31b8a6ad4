package podproxy_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/apiserver/podproxy"
	"kubelite/apiserver/podproxy/podproxytest"
	"kubelite/nodeagent/kubeletserver"
	"kubelite/nodeagent/kubeletserver/kubeletservertest"
	"kubelite/nodeagent/kubeletserver/remotecommand"
	"kubelite/nodeagent/runtime"
)

func TestAnnotationIsTheAgentsOwn(t *testing.T) {
	if podproxy.ServingCertAnnotation != kubeletserver.ServingCertAnnotation {
		t.Errorf("the proxy reads %q, the agent publishes %q", podproxy.ServingCertAnnotation, kubeletserver.ServingCertAnnotation)
	}
	if podproxy.DefaultKubeletPort != kubeletserver.DefaultPort {
		t.Errorf("default ports differ: %d, %d", podproxy.DefaultKubeletPort, kubeletserver.DefaultPort)
	}
}

func pod(name string, containers ...string) *api.Pod {
	p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: name, Namespace: api.NamespaceDefault}}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, api.Container{Name: c, Image: "busybox"})
	}
	return p
}

// logs reads pods/{name}/log with query through the API server.
func logs(t *testing.T, c *client.Client, name string, query url.Values) (string, error) {
	t.Helper()
	stream, err := c.Stream(context.Background(), http.MethodGet, "/api/v1/namespaces/default/pods/"+name+"/log", query)
	if err != nil {
		return "", err
	}
	defer stream.Close()
	body, err := io.ReadAll(stream)
	return string(body), err
}

func TestLogsThroughTheAPIServer(t *testing.T) {
	cluster := podproxytest.Start(t)
	httpd := cluster.RunningPod(t, pod("web", "httpd"))["httpd"]
	httpd.WriteLog(runtime.Stdout, "GET / 200", "GET /missing 404")
	httpd.WriteLog(runtime.Stderr, "warning: slow")
	admin := cluster.API.Admin

	if got, err := logs(t, admin, "web", nil); err != nil || got != "GET / 200\nGET /missing 404\nwarning: slow\n" {
		t.Errorf("logs: %q, %v", got, err)
	}
	if got, err := logs(t, admin, "web", url.Values{"tailLines": {"1"}, "container": {"httpd"}}); err != nil || got != "warning: slow\n" {
		t.Errorf("logs --tail=1: %q, %v", got, err)
	}
	httpd.SetPreviousLog("crashed")
	if got, err := logs(t, admin, "web", url.Values{"previous": {"true"}}); err != nil || got != "crashed\n" {
		t.Errorf("logs --previous: %q, %v", got, err)
	}
	_, err := logs(t, admin, "web", url.Values{"tailLines": {"-3"}})
	if api.ReasonOf(err) != api.ReasonBadRequest {
		t.Errorf("tailLines=-3: %v, want BadRequest", err)
	}
}

func TestFollowedLogsThroughTheAPIServer(t *testing.T) {
	cluster := podproxytest.Start(t)
	httpd := cluster.RunningPod(t, pod("web", "httpd"))["httpd"]
	httpd.WriteLog(runtime.Stdout, "started")
	stream, err := cluster.API.Admin.Stream(context.Background(), http.MethodGet, "/api/v1/namespaces/default/pods/web/log", url.Values{"follow": {"true"}})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	lines := bufio.NewScanner(stream)
	for _, want := range []string{"started", "request 1"} {
		if want != "started" {
			httpd.WriteLog(runtime.Stdout, want)
		}
		if !lines.Scan() || lines.Text() != want {
			t.Fatalf("followed %q (%v), want %q", lines.Text(), lines.Err(), want)
		}
	}
	httpd.Exit(0)
	if lines.Scan() || lines.Err() != nil {
		t.Errorf("after the container exited: %q, %v; want the end of the stream", lines.Text(), lines.Err())
	}
}

// execURL is the WebSocket URL of pods/{name}/exec on the API server.
func execURL(c *client.Client, name string, query url.Values) string {
	u := c.URL("/api/v1/namespaces/default/pods/"+name+"/exec", query)
	u.Scheme = "wss"
	return u.String()
}

func dialAs(c *client.Client, u string) (*remotecommand.Conn, error) {
	return remotecommand.Dial(context.Background(), u, c.TLSConfig(), http.Header{"Authorization": {"Bearer " + c.Config().Token}})
}

func TestExecThroughTheAPIServer(t *testing.T) {
	cluster := podproxytest.Start(t)
	cluster.RunningPod(t, pod("web", "httpd"))
	admin := cluster.API.Admin
	query := url.Values{
		"command": {"sh", "-c", "cat; echo to-stderr >&2; exit 3"},
		"stdin":   {"true"}, "stdout": {"true"}, "stderr": {"true"},
	}
	// The agent accepts only its node token: that this works at all shows
	// the proxy did not pass the admin's token on.
	conn, err := dialAs(admin, execURL(admin, "web", query))
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err = remotecommand.Stream(context.Background(), conn, remotecommand.ClientStreams{
		Stdin: strings.NewReader("to-stdout\n"), Stdout: &stdout, Stderr: &stderr,
	})
	var exit *remotecommand.ExitError
	if !errors.As(err, &exit) || exit.Code != 3 {
		t.Errorf("outcome %v, want exit code 3", err)
	}
	if stdout.String() != "to-stdout\n" || stderr.String() != "to-stderr\n" {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

func TestAttachThroughTheAPIServer(t *testing.T) {
	cluster := podproxytest.Start(t)
	p := pod("job", "sh")
	p.Spec.Containers[0].Stdin, p.Spec.Containers[0].StdinOnce = true, true
	sh := cluster.RunningPod(t, p)["sh"]
	if err := sh.Start([]string{"sh"}, kubeletservertest.StartOptions{Stdin: true}); err != nil {
		t.Fatal(err)
	}
	admin := cluster.API.Admin
	u := admin.URL("/api/v1/namespaces/default/pods/job/attach", url.Values{"stdin": {"true"}, "stdout": {"true"}})
	u.Scheme = "wss"
	conn, err := dialAs(admin, u.String())
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	err = remotecommand.Stream(context.Background(), conn, remotecommand.ClientStreams{Stdin: strings.NewReader("echo attached\n"), Stdout: &stdout})
	if err != nil || stdout.String() != "attached\n" {
		t.Errorf("attach: %v, stdout %q", err, stdout.String())
	}
}

func TestRequestsAreCheckedAsKubernetesChecksThem(t *testing.T) {
	cluster := podproxytest.Start(t)
	cluster.RunningPod(t, pod("web", "httpd"))
	multi := pod("multi", "app", "sidecar")
	multi.Spec.InitContainers = []api.Container{{Name: "setup", Image: "busybox"}}
	cluster.RunningPod(t, multi)
	pods := client.For[api.Pod](cluster.API.Admin, "default")
	if _, err := pods.Create(context.Background(), pod("pending", "app")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		query  url.Values
		reason api.StatusReason
		msg    string
	}{
		{"nope", nil, api.ReasonNotFound, `pods "nope" not found`},
		{"multi", nil, api.ReasonBadRequest, "a container name must be specified for pod multi, choose one of: [app sidecar] or one of the init containers: [setup]"},
		{"multi", url.Values{"container": {"db"}}, api.ReasonBadRequest, "container db is not valid for pod multi"},
		{"pending", nil, api.ReasonBadRequest, "pod pending does not have a host assigned"},
		{"web", url.Values{"container": {"httpd"}, "tailLines": {"x"}}, api.ReasonBadRequest, `tailLines: Invalid value: "x"`},
		{"web", url.Values{"sinceSeconds": {"3600"}}, api.ReasonBadRequest, "sinceSeconds is not supported"},
	} {
		_, err := logs(t, cluster.API.Admin, tt.name, tt.query)
		var st *api.Status
		if !errors.As(err, &st) || st.Reason != tt.reason || !strings.Contains(st.Message, tt.msg) {
			t.Errorf("logs of %s %v: %v, want %s %q", tt.name, tt.query, err, tt.reason, tt.msg)
		}
	}
	admin := cluster.API.Admin
	for _, tt := range []struct {
		query url.Values
		msg   string
	}{
		{url.Values{"stdout": {"true"}}, "you must specify at least one command for the container"},
		{url.Values{"command": {"id"}}, "you must specify at least 1 of stdin, stdout, stderr"},
	} {
		_, err := dialAs(admin, execURL(admin, "web", tt.query))
		var st *api.Status
		if !errors.As(err, &st) || st.Reason != api.ReasonBadRequest || st.Message != tt.msg {
			t.Errorf("exec %v: %v, want BadRequest %q", tt.query, err, tt.msg)
		}
	}
}

func TestNodeCredentialsCannotExec(t *testing.T) {
	cluster := podproxytest.Start(t)
	cluster.RunningPod(t, pod("web", "httpd"))
	node := cluster.API.Client(t, cluster.API.Tokens.Node)
	// Nodes may read logs, as they may read everything...
	if _, err := logs(t, node, "web", nil); err != nil {
		t.Errorf("logs with the node's credentials: %v", err)
	}
	// ...but running commands needs "create" on pods/exec, which only
	// administrators have.
	_, err := dialAs(node, execURL(node, "web", url.Values{"command": {"id"}, "stdout": {"true"}}))
	var st *api.Status
	if !errors.As(err, &st) || st.Reason != api.ReasonForbidden || !strings.Contains(st.Message, `cannot create resource "pods/exec"`) {
		t.Errorf("exec with the node's credentials: %v, want Forbidden", err)
	}
}

func TestNodesThatCannotBeReached(t *testing.T) {
	cluster := podproxytest.Start(t)
	cluster.RunningPod(t, pod("web", "httpd"))
	nodes := client.For[api.Node](cluster.API.Admin, "")
	setAnnotation := func(value string) {
		t.Helper()
		node, err := nodes.Get(context.Background(), podproxytest.NodeName)
		if err != nil {
			t.Fatal(err)
		}
		if value == "" {
			delete(node.Annotations, podproxy.ServingCertAnnotation)
		} else {
			node.Annotations[podproxy.ServingCertAnnotation] = value
		}
		if _, err := nodes.Update(context.Background(), node); err != nil {
			t.Fatal(err)
		}
	}

	// Another agent's certificate: the connection is refused before any
	// request — and the node token — is sent.
	impostor := kubeletservertest.Start(t, "")
	setAnnotation(string(impostor.Server.CertPEM()))
	_, err := logs(t, cluster.API.Admin, "web", nil)
	if st := (*api.Status)(nil); !errors.As(err, &st) || st.Code != http.StatusInternalServerError || !strings.Contains(st.Message, "not the one node") {
		t.Errorf("a certificate that is not the published one: %v", err)
	}

	setAnnotation("")
	_, err = logs(t, cluster.API.Admin, "web", nil)
	if st := (*api.Status)(nil); !errors.As(err, &st) || st.Code != http.StatusServiceUnavailable || !strings.Contains(st.Message, "has not published") {
		t.Errorf("no published certificate: %v", err)
	}
}

func TestAgentRefusingTheNodeTokenIsTheServersFault(t *testing.T) {
	agent := kubeletservertest.Start(t, "")
	if _, err := agent.Runtime.AddContainer("default", "web", "httpd", kubeletservertest.ContainerOptions{}); err != nil {
		t.Fatal(err)
	}
	web := pod("web", "httpd")
	web.Spec.NodeName = "node-1"
	proxy, err := podproxy.New(podproxy.Config{Objects: objects{pod: web, node: agent.Node("node-1")}, NodeToken: "stale-token"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "https://api/api/v1/namespaces/default/pods/web/log", nil)
	req.Header.Set("Authorization", "Bearer the-callers-own")
	rec := httptest.NewRecorder()
	proxy.Handlers()["pods/log"].ServeHTTP(rec, req)
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "refused the API server's credentials") {
		t.Errorf("an agent refusing the node token: %d %s; want 500 (not the caller's 401)", rec.Code, rec.Body.String())
	}
}

// objects serves one Pod and one Node.
type objects struct {
	pod  *api.Pod
	node *api.Node
}

func (o objects) Pod(_ context.Context, namespace, name string) (*api.Pod, error) {
	if name != o.pod.Name {
		return nil, api.NewNotFound("", "pods", name)
	}
	return o.pod, nil
}

func (o objects) Node(_ context.Context, name string) (*api.Node, error) {
	if name != o.node.Name {
		return nil, api.NewNotFound("", "nodes", name)
	}
	return o.node, nil
}

func TestNewNeedsObjectsAndAToken(t *testing.T) {
	if _, err := podproxy.New(podproxy.Config{NodeToken: "t"}); err == nil {
		t.Error("New without Objects")
	}
	if _, err := podproxy.New(podproxy.Config{Objects: objects{}}); err == nil {
		t.Error("New without a node token")
	}
}
