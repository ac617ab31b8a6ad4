package remotecommand

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"kubelite/api"
)

func TestMessageFraming(t *testing.T) {
	msg := encodeMessage(Stdout, []byte("hi"))
	if !bytes.Equal(msg, []byte{1, 'h', 'i'}) {
		t.Errorf("stdout message = %v, want [1 h i]", msg)
	}
	ch, data, err := decodeMessage([]byte{2, 'e'})
	if err != nil || ch != Stderr || string(data) != "e" {
		t.Errorf("decode [2 e] = %v %q %v", ch, data, err)
	}
	if _, _, err := decodeMessage(nil); err == nil {
		t.Error("an empty message decoded without error")
	}
	if got := string(encodeResize(TerminalSize{Width: 80, Height: 24})); got != `{"Width":80,"Height":24}` {
		t.Errorf("resize = %s, want Kubernetes' {\"Width\":80,\"Height\":24}", got)
	}
	size, err := decodeResize([]byte(`{"Width":120,"Height":40}`))
	if err != nil || size != (TerminalSize{Width: 120, Height: 40}) {
		t.Errorf("decode resize = %+v, %v", size, err)
	}
	if _, err := decodeResize([]byte("80x24")); err == nil {
		t.Error("a malformed resize decoded without error")
	}
}

func TestExitStatusIsKubernetesShaped(t *testing.T) {
	var wire map[string]any
	if err := json.Unmarshal(statusJSON(&ExitError{Code: 3}), &wire); err != nil {
		t.Fatal(err)
	}
	details, _ := wire["details"].(map[string]any)
	causes, _ := details["causes"].([]any)
	if wire["status"] != "Failure" || wire["reason"] != "NonZeroExitCode" || len(causes) != 1 {
		t.Fatalf("exit status on the wire: %v", wire)
	}
	if cause := causes[0].(map[string]any); cause["reason"] != "ExitCode" || cause["message"] != "3" {
		t.Errorf("exit code cause: %v, want reason ExitCode, message \"3\"", cause)
	}
	if err := json.Unmarshal(statusJSON(nil), &wire); err != nil || wire["status"] != "Success" {
		t.Errorf("success status: %v %v", wire, err)
	}
}

func TestErrorFromStatus(t *testing.T) {
	// What a kubelet sends, byte for byte.
	kubelet := `{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 7], exit code 7","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}`
	var exit *ExitError
	if err := errorFromStatus([]byte(kubelet)); !errors.As(err, &exit) || exit.Code != 7 {
		t.Errorf("kubelet's exit status: %v, want exit code 7", err)
	}
	if err := errorFromStatus(nil); err != nil {
		t.Errorf("an empty error channel means success, got %v", err)
	}
	if err := errorFromStatus(statusJSON(nil)); err != nil {
		t.Errorf("success: %v", err)
	}
	var st *api.Status
	if err := errorFromStatus(statusJSON(errors.New("no such container"))); !errors.As(err, &st) || !strings.Contains(st.Message, "no such container") {
		t.Errorf("failure: %v, want a Status with the message", err)
	}
	for _, bad := range []string{
		`{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"300"}]}}`,
		`{"status":"Failure","reason":"NonZeroExitCode"}`,
		`{"status":"Maybe"}`,
		`not json`,
	} {
		err := errorFromStatus([]byte(bad))
		if err == nil || errors.As(err, &exit) {
			t.Errorf("%s: got %v, want a protocol error", bad, err)
		}
	}
}

// session serves one remote command session per request with run, on a
// loopback HTTP server; served reports what Serve returned.
type session struct {
	url    string
	served chan error
}

func serveSessions(t *testing.T, opts Options, run func(ctx context.Context, streams ProcessStreams) error) *session {
	t.Helper()
	s := &session{served: make(chan error, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := Upgrade(w, r)
		var refused *UpgradeError
		if errors.As(err, &refused) {
			http.Error(w, refused.Message, refused.Code)
			return
		}
		if err != nil {
			s.served <- err
			return
		}
		s.served <- Serve(r.Context(), conn, opts, run)
	}))
	t.Cleanup(srv.Close)
	s.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	return s
}

// wait returns what the server's Serve returned.
func (s *session) wait(t *testing.T) {
	t.Helper()
	if err := <-s.served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func dial(t *testing.T, url string) *Conn {
	t.Helper()
	conn, err := Dial(context.Background(), url, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func TestSessionCarriesStreamsBothWaysAndTheExitCode(t *testing.T) {
	s := serveSessions(t, Options{Stdin: true, Stdout: true, Stderr: true}, func(ctx context.Context, streams ProcessStreams) error {
		in, err := io.ReadAll(streams.Stdin) // ends when the client closes its stdin
		if err != nil {
			return err
		}
		io.WriteString(streams.Stdout, strings.ToUpper(string(in)))
		io.WriteString(streams.Stderr, "to stderr")
		return &ExitError{Code: 3}
	})
	conn := dial(t, s.url)
	if conn.Protocol() != ProtocolV5 {
		t.Errorf("negotiated %q, want %s", conn.Protocol(), ProtocolV5)
	}
	var stdout, stderr bytes.Buffer
	err := Stream(context.Background(), conn, ClientStreams{Stdin: strings.NewReader("hello"), Stdout: &stdout, Stderr: &stderr})
	s.wait(t)
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != 3 {
		t.Errorf("outcome %v, want exit code 3", err)
	}
	if stdout.String() != "HELLO" || stderr.String() != "to stderr" {
		t.Errorf("stdout %q, stderr %q: want HELLO and \"to stderr\" apart", stdout.String(), stderr.String())
	}
}

func TestSessionSuccessAndFailure(t *testing.T) {
	ok := serveSessions(t, Options{Stdout: true}, func(ctx context.Context, streams ProcessStreams) error {
		io.WriteString(streams.Stdout, "done\n")
		return nil
	})
	var stdout bytes.Buffer
	if err := Stream(context.Background(), dial(t, ok.url), ClientStreams{Stdout: &stdout}); err != nil || stdout.String() != "done\n" {
		t.Errorf("success: %v, stdout %q", err, stdout.String())
	}
	ok.wait(t)

	failed := serveSessions(t, Options{Stdout: true}, func(ctx context.Context, streams ProcessStreams) error {
		return errors.New("container is not running")
	})
	err := Stream(context.Background(), dial(t, failed.url), ClientStreams{Stdout: io.Discard})
	var st *api.Status
	if !errors.As(err, &st) || !strings.Contains(st.Message, "container is not running") {
		t.Errorf("failure: %v, want a Status naming the problem", err)
	}
	failed.wait(t)
}

func TestSessionResizes(t *testing.T) {
	want := TerminalSize{Width: 100, Height: 30}
	s := serveSessions(t, Options{Stdin: true, Stdout: true, TTY: true}, func(ctx context.Context, streams ProcessStreams) error {
		if streams.Stderr != nil {
			t.Error("a TTY session has a stderr stream")
		}
		// A slow reader gets the latest size: read until the last one.
		for size := range streams.Resize {
			if size == want {
				io.WriteString(streams.Stdout, "resized")
				return nil
			}
		}
		return errors.New("the resize channel closed before the last size")
	})
	sizes := make(chan TerminalSize, 2)
	sizes <- TerminalSize{Width: 80, Height: 24}
	sizes <- want
	var stdout bytes.Buffer
	if err := Stream(context.Background(), dial(t, s.url), ClientStreams{Stdout: &stdout, Resize: sizes}); err != nil || stdout.String() != "resized" {
		t.Errorf("resize session: %v, stdout %q", err, stdout.String())
	}
	s.wait(t)
}

func TestCloseStdinNeedsV5(t *testing.T) {
	s := serveSessions(t, Options{Stdin: true, Stdout: true}, func(ctx context.Context, streams ProcessStreams) error {
		buf := make([]byte, 2)
		if _, err := io.ReadFull(streams.Stdin, buf); err != nil {
			return err
		}
		io.WriteString(streams.Stdout, string(buf))
		return nil
	})
	// A v4 client: stdin flows, but its end cannot be told.
	ws, _, err := (&websocket.Dialer{Subprotocols: []string{ProtocolV4}}).Dial(s.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn := NewConn(ws)
	if conn.Protocol() != ProtocolV4 {
		t.Fatalf("negotiated %q, want %s", conn.Protocol(), ProtocolV4)
	}
	if sent, err := conn.CloseChannel(Stdin); sent || err != nil {
		t.Errorf("CloseChannel on v4 = %v, %v; want nothing sent", sent, err)
	}
	var stdout bytes.Buffer
	if err := Stream(context.Background(), conn, ClientStreams{Stdin: strings.NewReader("v4"), Stdout: &stdout}); err != nil || stdout.String() != "v4" {
		t.Errorf("v4 session: %v, stdout %q", err, stdout.String())
	}
	s.wait(t)
}

func TestClientGoingAwayEndsTheProcess(t *testing.T) {
	started := make(chan struct{})
	s := serveSessions(t, Options{Stdout: true}, func(ctx context.Context, streams ProcessStreams) error {
		close(started)
		<-ctx.Done() // a process that never ends by itself
		return ctx.Err()
	})
	conn := dial(t, s.url)
	<-started
	conn.Close()
	if err := <-s.served; err == nil {
		t.Error("Serve reported nothing about a client that dropped the connection")
	}
}

func TestStreamEndsWithItsContext(t *testing.T) {
	release := make(chan struct{})
	s := serveSessions(t, Options{Stdout: true}, func(ctx context.Context, streams ProcessStreams) error {
		io.WriteString(streams.Stdout, "running")
		select {
		case <-ctx.Done():
		case <-release:
		}
		return nil
	})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	out := &notifyingWriter{wrote: make(chan struct{}, 1)}
	go func() {
		<-out.wrote
		cancel() // the user pressed ^C after the first output
	}()
	if err := Stream(ctx, dial(t, s.url), ClientStreams{Stdout: out}); !errors.Is(err, context.Canceled) {
		t.Errorf("Stream after cancel: %v, want context.Canceled", err)
	}
	<-s.served
}

type notifyingWriter struct{ wrote chan struct{} }

func (w *notifyingWriter) Write(p []byte) (int, error) {
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func TestUpgradeRefusals(t *testing.T) {
	s := serveSessions(t, Options{Stdout: true}, func(context.Context, ProcessStreams) error { return nil })
	httpURL := "http" + strings.TrimPrefix(s.url, "ws")
	resp, err := http.Post(httpURL, "text/plain", nil) // what a SPDY client does first
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "WebSocket") {
		t.Errorf("a plain request: %s %q, want 400 naming WebSocket", resp.Status, body)
	}

	_, resp, err = (&websocket.Dialer{Subprotocols: []string{"channel.k8s.io"}}).Dial(s.url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an unsupported subprotocol: %v, %v; want 400", err, resp)
	}
	body, _ = io.ReadAll(resp.Body)
	if !strings.Contains(string(body), ProtocolV5) {
		t.Errorf("the refusal %q does not name the protocols spoken", body)
	}
}
