package kubeletserver_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"kubelite/api"
	"kubelite/nodeagent/kubeletserver"
	"kubelite/nodeagent/kubeletserver/kubeletservertest"
	"kubelite/nodeagent/kubeletserver/remotecommand"
	"kubelite/nodeagent/runtime"
)

func authorization(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// get requests a path of the agent with the given Authorization header.
func get(t *testing.T, agent *kubeletservertest.Agent, path string, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, agent.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	client := agent.HTTPClient()
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readStatus(t *testing.T, resp *http.Response) *api.Status {
	t.Helper()
	var st api.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("%s: the body is not a Status: %v", resp.Status, err)
	}
	return &st
}

func addContainer(t *testing.T, agent *kubeletservertest.Agent, pod, name string, opts kubeletservertest.ContainerOptions) *kubeletservertest.Container {
	t.Helper()
	c, err := agent.Runtime.AddContainer("default", pod, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEveryRequestNeedsTheToken(t *testing.T) {
	agent := kubeletservertest.Start(t, "")
	addContainer(t, agent, "web", "httpd", kubeletservertest.ContainerOptions{})
	const logs = "/containerLogs/default/web/httpd"
	for name, header := range map[string]http.Header{
		"no Authorization": {},
		"a wrong token":    authorization("not-" + agent.Token),
		"an empty token":   {"Authorization": {"Bearer "}},
		"a Basic scheme":   {"Authorization": {"Basic " + agent.Token}},
		"a token prefix":   authorization(agent.Token[:len(agent.Token)-1]),
	} {
		resp := get(t, agent, logs, header)
		if st := readStatus(t, resp); resp.StatusCode != http.StatusUnauthorized || st.Reason != api.ReasonUnauthorized {
			t.Errorf("%s: %s %+v, want 401 Unauthorized", name, resp.Status, st)
		}
	}
	// Before the path is even looked at: nothing leaks about what exists.
	if resp := get(t, agent, "/exec/default/nosuchpod/x?command=id&stdout=1", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("exec without a token: %s, want 401", resp.Status)
	}
	wsURL := "wss://" + agent.Addr + "/exec/default/web/httpd?command=id&stdout=1"
	_, err := remotecommand.Dial(context.Background(), wsURL, agent.TLSConfig(), authorization("wrong"))
	var st *api.Status
	if !errors.As(err, &st) || st.Code != http.StatusUnauthorized {
		t.Errorf("an exec WebSocket with a wrong token: %v, want a 401 Status", err)
	}
	if resp := get(t, agent, logs, authorization(agent.Token)); resp.StatusCode != http.StatusOK {
		t.Errorf("with the token: %s, want 200", resp.Status)
	}
}

func TestServesOnlyTLSWithItsOwnCertificate(t *testing.T) {
	agent := kubeletservertest.Start(t, "")
	// A client that trusts the usual CAs does not trust the agent: only a
	// client that pins its published certificate does.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{}}}
	defer client.CloseIdleConnections()
	if _, err := client.Get(agent.URL + "/containerLogs/default/web/httpd"); err == nil {
		t.Error("a client without the agent's certificate connected")
	}
	resp, err := http.Get("http://" + agent.Addr + "/containerLogs/default/web/httpd")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP: %s, want the TLS server's 400", resp.Status)
		}
	}
}

func TestLogsTailAndTimestamps(t *testing.T) {
	agent := kubeletservertest.Start(t, "")
	c := addContainer(t, agent, "web", "httpd", kubeletservertest.ContainerOptions{})
	at := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)
	record := func(stream string, partial bool, content string) runtime.LogLine {
		return runtime.LogLine{Time: at, Stream: stream, Partial: partial, Content: []byte(content)}
	}
	if err := c.WriteLogRecords(
		record(runtime.Stdout, false, "one"),
		record(runtime.Stderr, false, "two (stderr)"),
		record(runtime.Stdout, true, "three, a long line "), // cut by the runtime...
		record(runtime.Stdout, false, "joined again"),       // ...and ended here
		record(runtime.Stdout, false, "four"),
	); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ query, want string }{
		{"", "one\ntwo (stderr)\nthree, a long line joined again\nfour\n"},
		{"?tailLines=2", "three, a long line joined again\nfour\n"},
		{"?tailLines=1", "four\n"},
		{"?tailLines=0", ""},
		{"?tailLines=100", "one\ntwo (stderr)\nthree, a long line joined again\nfour\n"},
		{"?tailLines=1&timestamps=true", "2024-05-01T12:00:00.123456789Z four\n"},
	} {
		resp := get(t, agent, "/containerLogs/default/web/httpd"+tt.query, authorization(agent.Token))
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(body) != tt.want {
			t.Errorf("logs%s: %s\n%q\nwant\n%q", tt.query, resp.Status, body, tt.want)
		}
	}
	resp := get(t, agent, "/containerLogs/default/web/httpd?tailLines=-1", authorization(agent.Token))
	if st := readStatus(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(st.Message, "tailLines") {
		t.Errorf("tailLines=-1: %s %q, want 400 naming tailLines", resp.Status, st.Message)
	}
	resp = get(t, agent, "/containerLogs/default/web/sidecar", authorization(agent.Token))
	if st := readStatus(t, resp); resp.StatusCode != http.StatusNotFound || !strings.Contains(st.Message, "sidecar") {
		t.Errorf("an unknown container: %s %q, want 404 naming it", resp.Status, st.Message)
	}
}

func TestPreviousLogs(t *testing.T) {
	agent := kubeletservertest.Start(t, "")
	c := addContainer(t, agent, "web", "httpd", kubeletservertest.ContainerOptions{})
	c.WriteLog(runtime.Stdout, "current")
	resp := get(t, agent, "/containerLogs/default/web/httpd?previous=true", authorization(agent.Token))
	st := readStatus(t, resp)
	if resp.StatusCode != http.StatusBadRequest || st.Message != `previous terminated container "httpd" in pod "web" not found` {
		t.Errorf("previous of a container that never restarted: %s %q", resp.Status, st.Message)
	}
	if err := c.SetPreviousLog("before the crash", "panic: oops"); err != nil {
		t.Fatal(err)
	}
	resp = get(t, agent, "/containerLogs/default/web/httpd?previous=true&follow=true", authorization(agent.Token))
	if body, _ := io.ReadAll(resp.Body); string(body) != "before the crash\npanic: oops\n" {
		t.Errorf("previous (follow ends at once: that container is gone): %q", body)
	}
}

func TestFollowStreamsNewLinesUntilTheContainerExits(t *testing.T) {
	agent := kubeletservertest.Start(t, "")
	c := addContainer(t, agent, "web", "httpd", kubeletservertest.ContainerOptions{})
	c.WriteLog(runtime.Stdout, "old 1", "old 2")
	resp := get(t, agent, "/containerLogs/default/web/httpd?follow=true&tailLines=1", authorization(agent.Token))
	lines := bufio.NewScanner(resp.Body)
	expect := func(want string) {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("the stream ended (%v) before %q", lines.Err(), want)
		}
		if lines.Text() != want {
			t.Fatalf("line %q, want %q", lines.Text(), want)
		}
	}
	expect("old 2")
	c.WriteLog(runtime.Stdout, "new 1")
	expect("new 1")
	c.WriteLog(runtime.Stderr, "new 2")
	c.WriteLog(runtime.Stdout, "last words")
	c.Exit(1)
	expect("new 2")
	expect("last words")
	if lines.Scan() {
		t.Errorf("more after the container exited: %q", lines.Text())
	}
	if lines.Err() != nil {
		t.Errorf("the stream broke instead of ending: %v", lines.Err())
	}
}

// execURL is the WebSocket URL of an exec in container web/httpd.
func execURL(agent *kubeletservertest.Agent, streams string, command ...string) string {
	q, _ := url.ParseQuery(streams)
	for _, c := range command {
		q.Add("command", c)
	}
	return "wss://" + agent.Addr + "/exec/default/web/httpd?" + q.Encode()
}

func dial(t *testing.T, agent *kubeletservertest.Agent, url string) *remotecommand.Conn {
	t.Helper()
	conn, err := remotecommand.Dial(context.Background(), url, agent.TLSConfig(), authorization(agent.Token))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func TestExecSeparatesStreamsAndReportsTheExitCode(t *testing.T) {
	agent := kubeletservertest.Start(t, "")
	addContainer(t, agent, "web", "httpd", kubeletservertest.ContainerOptions{})

	conn := dial(t, agent, execURL(agent, "stdout=1&stderr=1", "sh", "-c", "echo out; echo err >&2; exit 3"))
	var stdout, stderr bytes.Buffer
	err := remotecommand.Stream(context.Background(), conn, remotecommand.ClientStreams{Stdout: &stdout, Stderr: &stderr})
	var exit *remotecommand.ExitError
	if !errors.As(err, &exit) || exit.Code != 3 {
		t.Errorf("outcome %v, want exit code 3", err)
	}
	if stdout.String() != "out\n" || stderr.String() != "err\n" {
		t.Errorf("stdout %q, stderr %q: want out and err apart", stdout.String(), stderr.String())
	}

	conn = dial(t, agent, execURL(agent, "stdin=true&stdout=true", "tr", "a-z", "A-Z"))
	stdout.Reset()
	err = remotecommand.Stream(context.Background(), conn, remotecommand.ClientStreams{Stdin: strings.NewReader("piped in\n"), Stdout: &stdout})
	if err != nil || stdout.String() != "PIPED IN\n" {
		t.Errorf("stdin (its end closes the command's stdin): %v, stdout %q", err, stdout.String())
	}
}

func TestExecRefusals(t *testing.T) {
	agent := kubeletservertest.Start(t, "")
	addContainer(t, agent, "web", "httpd", kubeletservertest.ContainerOptions{})
	for _, tt := range []struct {
		path, want string
		code       int
	}{
		{"/exec/default/web/httpd?stdout=1", "at least one command", http.StatusBadRequest},
		{"/exec/default/web/httpd?command=id", "at least 1 of stdin, stdout, stderr", http.StatusBadRequest},
		{"/exec/default/web/sidecar?command=id&stdout=1", "sidecar", http.StatusNotFound},
		{"/exec/default/web/httpd?command=id&stdout=1", "WebSocket", http.StatusBadRequest}, // not an upgrade
		{"/attach/default/web/httpd?stdout=1", "WebSocket", http.StatusBadRequest},
	} {
		resp := get(t, agent, tt.path, authorization(agent.Token))
		if st := readStatus(t, resp); resp.StatusCode != tt.code || !strings.Contains(st.Message, tt.want) {
			t.Errorf("%s: %s %q, want %d mentioning %q", tt.path, resp.Status, st.Message, tt.code, tt.want)
		}
	}
	c := addContainer(t, agent, "done", "job", kubeletservertest.ContainerOptions{})
	c.Exit(0)
	conn := dial(t, agent, "wss://"+agent.Addr+"/exec/default/done/job?command=id&stdout=1")
	err := remotecommand.Stream(context.Background(), conn, remotecommand.ClientStreams{Stdout: io.Discard})
	var st *api.Status
	if !errors.As(err, &st) || !strings.Contains(st.Message, "not running") {
		t.Errorf("exec in an exited container: %v, want a failure saying it is not running", err)
	}
}

// lineReader hands out the lines written to it, without their "\r".
type lineReader struct {
	lines chan string
	w     *io.PipeWriter
}

func newLineReader() *lineReader {
	r, w := io.Pipe()
	lr := &lineReader{lines: make(chan string), w: w}
	go func() {
		defer close(lr.lines)
		scanner := bufio.NewScanner(r)
		for scanner.Scan() {
			lr.lines <- strings.TrimSuffix(scanner.Text(), "\r")
		}
		io.Copy(io.Discard, r)
	}()
	return lr
}

func (lr *lineReader) Write(p []byte) (int, error) { return lr.w.Write(p) }

// next returns the next line that matches re, with its submatches.
func (lr *lineReader) next(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	for line := range lr.lines {
		if m := re.FindStringSubmatch(line); m != nil {
			return m
		}
	}
	t.Fatalf("the output ended before a line matching %s", re)
	return nil
}

func TestExecWithATerminal(t *testing.T) {
	agent := kubeletservertest.Start(t, "")
	addContainer(t, agent, "web", "httpd", kubeletservertest.ContainerOptions{})
	// Prints the terminal's size for every line it reads, until "q".
	script := `while read n && [ "$n" != q ]; do echo "size$n:$(stty size)"; echo "stderr too" >&2; done`
	conn := dial(t, agent, execURL(agent, "stdin=1&stdout=1&stderr=1&tty=1", "sh", "-c", script))
	stdin, typing := io.Pipe()
	out := newLineReader()
	sizes := make(chan remotecommand.TerminalSize, 1)
	sizes <- remotecommand.TerminalSize{Width: 100, Height: 30}
	outcome := make(chan error, 1)
	go func() {
		outcome <- remotecommand.Stream(context.Background(), conn, remotecommand.ClientStreams{Stdin: stdin, Stdout: out, Stderr: out, Resize: sizes})
		out.w.Close()
	}()
	// The size travels beside the typing: ask until the terminal has it.
	for i := 1; ; i++ {
		fmt.Fprintf(typing, "%d\n", i)
		m := out.next(t, regexp.MustCompile(fmt.Sprintf(`^size%d:(\d+ \d+)$`, i)))
		if m[1] == "30 100" {
			break
		}
		if i == 100 {
			t.Fatalf("the terminal is still %s", m[1])
		}
	}
	out.next(t, regexp.MustCompile(`^stderr too$`)) // a terminal merges stderr into stdout
	fmt.Fprintln(typing, "q")
	if err := <-outcome; err != nil {
		t.Errorf("outcome %v, want success", err)
	}
	typing.Close()
}

func TestAttachToARunningContainer(t *testing.T) {
	agent := kubeletservertest.Start(t, "")
	c := addContainer(t, agent, "job", "sh", kubeletservertest.ContainerOptions{StdinOnce: true})
	if err := c.Start([]string{"sh"}, kubeletservertest.StartOptions{Stdin: true}); err != nil {
		t.Fatal(err)
	}
	conn := dial(t, agent, "wss://"+agent.Addr+"/attach/default/job/sh?stdin=1&stdout=1&stderr=1")
	var stdout, stderr bytes.Buffer
	err := remotecommand.Stream(context.Background(), conn, remotecommand.ClientStreams{
		Stdin:  strings.NewReader("echo attached; echo oops >&2; exit 4\n"),
		Stdout: &stdout, Stderr: &stderr,
	})
	if err != nil {
		t.Errorf("attach outcome %v: the session ends well when the container exits", err)
	}
	if stdout.String() != "attached\n" || stderr.String() != "oops\n" {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	<-c.Exited()
	if c.ExitCode() != 4 {
		t.Errorf("the container exited with %d, want 4", c.ExitCode())
	}
	resp := get(t, agent, "/containerLogs/default/job/sh", authorization(agent.Token))
	if body, _ := io.ReadAll(resp.Body); string(body) != "attached\noops\n" && string(body) != "oops\nattached\n" {
		t.Errorf("the log holds %q", body)
	}
}

func TestServeEndsSessionsWhenStopped(t *testing.T) {
	rt := kubeletservertest.NewRuntime(t.TempDir())
	defer rt.Close()
	if _, err := rt.AddContainer("default", "web", "httpd", kubeletservertest.ContainerOptions{}); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := kubeletserver.New(kubeletserver.Config{Token: "t0ken", CertDir: t.TempDir(), Logger: quiet}, rt, rt)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	agent := &kubeletservertest.Agent{Server: srv, Addr: ln.Addr().String(), Token: "t0ken"}
	conn := dial(t, agent, execURL(agent, "stdin=1&stdout=1", "cat")) // runs until its stdin ends
	stdin, typing := io.Pipe()
	defer typing.Close()
	out := newLineReader()
	outcome := make(chan error, 1)
	go func() {
		outcome <- remotecommand.Stream(context.Background(), conn, remotecommand.ClientStreams{Stdin: stdin, Stdout: out})
		out.w.Close()
	}()
	fmt.Fprintln(typing, "running")
	out.next(t, regexp.MustCompile("^running$"))
	stop()
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if err := <-outcome; err == nil {
		t.Error("the session ended as if the command had succeeded")
	}
}

func TestNewRefusesNoToken(t *testing.T) {
	rt := kubeletservertest.NewRuntime(t.TempDir())
	if _, err := kubeletserver.New(kubeletserver.Config{CertDir: t.TempDir()}, rt, rt); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("New without a token: %v", err)
	}
}
