package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"kubelite/api"
)

func TestTimingOf(t *testing.T) {
	tests := []struct {
		name  string
		kind  Kind
		probe api.Probe
		want  Timing
	}{
		{"defaults", Readiness, api.Probe{},
			Timing{Period: 10 * time.Second, Timeout: time.Second, SuccessThreshold: 1, FailureThreshold: 3}},
		{"all set", Readiness, api.Probe{InitialDelaySeconds: 5, PeriodSeconds: 2, TimeoutSeconds: 3, SuccessThreshold: 2, FailureThreshold: 4},
			Timing{InitialDelay: 5 * time.Second, Period: 2 * time.Second, Timeout: 3 * time.Second, SuccessThreshold: 2, FailureThreshold: 4}},
		{"liveness success threshold is always 1", Liveness, api.Probe{SuccessThreshold: 3},
			Timing{Period: 10 * time.Second, Timeout: time.Second, SuccessThreshold: 1, FailureThreshold: 3}},
		{"startup success threshold is always 1", Startup, api.Probe{SuccessThreshold: 3, FailureThreshold: 30},
			Timing{Period: 10 * time.Second, Timeout: time.Second, SuccessThreshold: 1, FailureThreshold: 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TimingOf(tt.kind, &tt.probe); got != tt.want {
				t.Errorf("TimingOf = %+v; want %+v", got, tt.want)
			}
		})
	}
}

// The tracker's standing result after each outcome, written as a string:
// S success, F failure, U unknown (could not check).
func TestTracker(t *testing.T) {
	tests := []struct {
		name     string
		kind     Kind
		success  int
		failure  int
		outcomes string
		want     string // standing result after each outcome
	}{
		{"readiness starts not ready and passes at once", Readiness, 1, 3, "SSF", "SSS"},
		{"readiness fails after 3 failures in a row", Readiness, 1, 3, "SFFSFFF", "SSSSSSF"},
		{"readiness needs 2 successes in a row", Readiness, 2, 1, "SFSS", "FFFS"},
		{"liveness starts alive", Liveness, 1, 3, "FF", "SS"},
		{"liveness fails on the 3rd failure", Liveness, 1, 3, "FFF", "SSF"},
		{"liveness recovers with one success", Liveness, 1, 1, "FS", "FS"},
		{"an unknown outcome counts as a failure", Liveness, 1, 2, "UU", "SF"},
		{"startup is unknown until it passes", Startup, 1, 3, "FFS", "UUS"},
		{"startup fails after its threshold", Startup, 1, 2, "FF", "UF"},
	}
	letters := map[byte]Result{'S': Success, 'F': Failure, 'U': Unknown}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(tt.kind, Timing{SuccessThreshold: tt.success, FailureThreshold: tt.failure})
			var got strings.Builder
			prev := tr.Result()
			for i := 0; i < len(tt.outcomes); i++ {
				changed := tr.Observe(letters[tt.outcomes[i]])
				if changed != (tr.Result() != prev) {
					t.Errorf("outcome %d: changed = %v, but the result went from %v to %v", i, changed, prev, tr.Result())
				}
				prev = tr.Result()
				got.WriteByte(tr.Result().String()[0])
			}
			if got.String() != tt.want {
				t.Errorf("results = %s; want %s", got.String(), tt.want)
			}
		})
	}
}

func TestResolvePort(t *testing.T) {
	ports := []api.ContainerPort{{Name: "http", ContainerPort: 8080}}
	tests := []struct {
		port    api.IntOrString
		want    int
		wantErr bool
	}{
		{api.FromInt(80), 80, false},
		{api.FromString("http"), 8080, false},
		{api.FromString("81"), 81, false},
		{api.FromString("metrics"), 0, true},
		{api.FromInt(0), 0, true},
		{api.FromInt(70000), 0, true},
	}
	for _, tt := range tests {
		got, err := ResolvePort(tt.port, ports)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ResolvePort(%v) = %d, %v; want %d (error %v)", tt.port, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestNewCheckerErrors(t *testing.T) {
	target := Target{PodIP: "10.244.1.5"}
	tests := []struct {
		name    string
		handler api.ProbeHandler
		want    string
	}{
		{"no handler", api.ProbeHandler{}, "no handler"},
		{"exec without a way to exec", api.ProbeHandler{Exec: &api.ExecAction{Command: []string{"true"}}}, "no way to run commands"},
		{"named port missing", api.ProbeHandler{TCPSocket: &api.TCPSocketAction{Port: api.FromString("db")}}, `port "db"`},
		{"bad scheme", api.ProbeHandler{HTTPGet: &api.HTTPGetAction{Port: api.FromInt(80), Scheme: "FTP"}}, "unsupported scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewChecker(tt.handler, target)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewChecker error = %v; want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := NewChecker(api.ProbeHandler{TCPSocket: &api.TCPSocketAction{Port: api.FromInt(80)}}, Target{}); err == nil {
		t.Error("a TCP probe of a pod without an IP was accepted")
	}
}

// loopbackTarget points probes at a test server on loopback.
func loopbackTarget(t *testing.T, addr string) (Target, api.IntOrString) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return Target{PodIP: host, Ports: []api.ContainerPort{{Name: "web", ContainerPort: int32(mustAtoi(t, port))}}}, api.FromString("web")
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestHTTPChecker(t *testing.T) {
	var mu sync.Mutex
	var gotHeaders http.Header
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotHeaders = r.Header.Clone()
		mu.Unlock()
		switch r.URL.Path {
		case "/ok":
			if r.URL.RawQuery != "full=1" {
				http.Error(w, "query lost", http.StatusBadRequest)
				return
			}
			fmt.Fprint(w, "ok")
		case "/redirect":
			http.Redirect(w, r, "/ok?full=1", http.StatusFound)
		case "/elsewhere":
			http.Redirect(w, r, "http://192.0.2.1/", http.StatusFound)
		case "/slow":
			time.Sleep(200 * time.Millisecond)
		default:
			http.Error(w, "not healthy", http.StatusServiceUnavailable)
		}
	}))
	defer server.Close()
	target, port := loopbackTarget(t, server.Listener.Addr().String())

	tests := []struct {
		path    string
		timeout time.Duration
		want    Result
		message string
	}{
		{"/ok?full=1", time.Second, Success, ""},
		{"ok?full=1", time.Second, Success, ""}, // a path without its slash
		{"/redirect", time.Second, Success, ""},
		{"/elsewhere", time.Second, Success, ""}, // not followed off the host
		{"/broken", time.Second, Failure, "statuscode: 503 not healthy"},
		{"/slow", 50 * time.Millisecond, Failure, "timed out"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			checker, err := NewChecker(api.ProbeHandler{HTTPGet: &api.HTTPGetAction{
				Path: tt.path, Port: port,
				HTTPHeaders: []api.HTTPHeader{{Name: "X-Probe", Value: "yes"}},
			}}, target)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			got, message := checker.Check(ctx)
			if got != tt.want || !strings.Contains(message, tt.message) {
				t.Errorf("Check = %v, %q; want %v, %q", got, message, tt.want, tt.message)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if gotHeaders.Get("User-Agent") != UserAgent || gotHeaders.Get("X-Probe") != "yes" {
		t.Errorf("headers sent = %v", gotHeaders)
	}
}

func TestTCPChecker(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target, port := loopbackTarget(t, listener.Addr().String())
	checker, err := NewChecker(api.ProbeHandler{TCPSocket: &api.TCPSocketAction{Port: port}}, target)
	if err != nil {
		t.Fatal(err)
	}
	if got, message := checker.Check(context.Background()); got != Success {
		t.Errorf("Check with a listener = %v, %q", got, message)
	}
	listener.Close()
	if got, message := checker.Check(context.Background()); got != Failure || !strings.Contains(message, "refused") {
		t.Errorf("Check without a listener = %v, %q; want a refused connection", got, message)
	}
}

// The probe dials through Target.Dial: the agent dials from the node's
// network namespace.
func TestCheckersUseTargetDial(t *testing.T) {
	var dialed []string
	target := Target{PodIP: "10.244.1.5", Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		dialed = append(dialed, address)
		return nil, errors.New("no route")
	}}
	for _, handler := range []api.ProbeHandler{
		{TCPSocket: &api.TCPSocketAction{Port: api.FromInt(5432)}},
		{HTTPGet: &api.HTTPGetAction{Path: "/", Port: api.FromInt(80), Host: "10.244.1.6"}},
	} {
		checker, err := NewChecker(handler, target)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := checker.Check(context.Background()); got != Failure {
			t.Errorf("Check = %v; want Failure", got)
		}
	}
	if want := []string{"10.244.1.5:5432", "10.244.1.6:80"}; strings.Join(dialed, " ") != strings.Join(want, " ") {
		t.Errorf("dialed %v; want %v", dialed, want)
	}
}

func TestExecChecker(t *testing.T) {
	tests := []struct {
		name    string
		code    int
		output  string
		err     error
		want    Result
		message string
	}{
		{"exit 0", 0, "", nil, Success, ""},
		{"exit 1", 1, "not ready\n", nil, Failure, `exited with 1: not ready`},
		{"timeout", -1, "", context.DeadlineExceeded, Failure, "timed out"},
		{"cannot run", -1, "", errors.New("container is not running"), Failure, "not running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ran []string
			checker, err := NewChecker(api.ProbeHandler{Exec: &api.ExecAction{Command: []string{"cat", "/tmp/ready"}}}, Target{
				Exec: func(ctx context.Context, cmd []string) (int, []byte, error) {
					ran = cmd
					return tt.code, []byte(tt.output), tt.err
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			got, message := checker.Check(context.Background())
			if got != tt.want || !strings.Contains(message, tt.message) {
				t.Errorf("Check = %v, %q; want %v, %q", got, message, tt.want, tt.message)
			}
			if strings.Join(ran, " ") != "cat /tmp/ready" {
				t.Errorf("ran %q", ran)
			}
		})
	}
}

// scriptedChecker returns outcomes in order, then its last one forever.
type scriptedChecker struct {
	mu       sync.Mutex
	outcomes []Result
	calls    int
}

func (c *scriptedChecker) Check(ctx context.Context) (Result, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := min(c.calls, len(c.outcomes)-1)
	c.calls++
	if c.outcomes[i] == Failure {
		return Failure, fmt.Sprintf("check %d failed", c.calls)
	}
	return c.outcomes[i], ""
}

// collect runs a worker until it has reported n updates (or stops by
// itself) and returns them.
func collect(t *testing.T, w *Worker, n int) []Update {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	updates := make(chan Update, 100)
	w.Report = func(u Update) { updates <- u }
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	var got []Update
	for len(got) < n {
		select {
		case u := <-updates:
			got = append(got, u)
		case <-done:
			return got
		case <-ctx.Done():
			t.Fatalf("got %d updates; want %d", len(got), n)
		}
	}
	cancel()
	<-done
	return got
}

func TestWorkerReportsChangesAndFailures(t *testing.T) {
	w := &Worker{
		Kind:      Liveness,
		Timing:    Timing{Period: time.Millisecond, Timeout: time.Second, SuccessThreshold: 1, FailureThreshold: 2},
		Checker:   &scriptedChecker{outcomes: []Result{Success, Failure, Failure, Success}},
		StartedAt: time.Now(),
	}
	got := collect(t, w, 4)
	want := []Update{
		{Kind: Liveness, Result: Success, Outcome: Success},
		{Kind: Liveness, Result: Success, Outcome: Failure, Message: "check 2 failed"},
		{Kind: Liveness, Result: Failure, Changed: true, Outcome: Failure, Message: "check 3 failed"},
		{Kind: Liveness, Result: Success, Changed: true, Outcome: Success},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("update %d = %+v; want %+v", i, got[i], want[i])
		}
	}
}

func TestWorkerWaitsForInitialDelayFromStart(t *testing.T) {
	start := time.Now()
	w := &Worker{
		Kind:      Readiness,
		Timing:    Timing{InitialDelay: 150 * time.Millisecond, Period: time.Hour, Timeout: time.Second, SuccessThreshold: 1, FailureThreshold: 1},
		Checker:   &scriptedChecker{outcomes: []Result{Success}},
		StartedAt: start.Add(-100 * time.Millisecond), // the container started a while ago
	}
	collect(t, w, 1)
	if waited := time.Since(start); waited < 40*time.Millisecond || waited > 140*time.Millisecond {
		t.Errorf("first check after %v; want about 50ms (150ms delay from a start 100ms ago)", waited)
	}
}

func TestStartupWorkerStopsOnceStarted(t *testing.T) {
	w := &Worker{
		Kind:      Startup,
		Timing:    Timing{Period: time.Millisecond, Timeout: time.Second, SuccessThreshold: 1, FailureThreshold: 10},
		Checker:   &scriptedChecker{outcomes: []Result{Failure, Success}},
		StartedAt: time.Now(),
	}
	got := collect(t, w, 100) // returns when the worker stops by itself
	if len(got) != 2 || got[1].Result != Success || !got[1].Changed {
		t.Errorf("updates = %+v; want a failure, then success and stop", got)
	}
}
