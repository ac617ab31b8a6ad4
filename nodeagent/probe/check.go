package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"kubelite/api"
)

// Checker performs one check of a probe. It returns the outcome and a
// short explanation of a failure (the command's output, the HTTP status),
// which the agent puts in an Unhealthy event. ctx carries the probe's
// timeout.
type Checker interface {
	Check(ctx context.Context) (Result, string)
}

// CheckerFunc adapts a function to Checker.
type CheckerFunc func(ctx context.Context) (Result, string)

// Check calls f.
func (f CheckerFunc) Check(ctx context.Context) (Result, string) { return f(ctx) }

// Target is the container a probe checks and the means to reach it.
type Target struct {
	// PodIP is the default host of HTTP and TCP probes.
	PodIP string
	// Ports are the container's ports, which named probe ports refer to.
	Ports []api.ContainerPort
	// Dial opens connections for HTTP and TCP probes. The agent dials from
	// the node's network namespace, where pod IPs are reachable.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Exec runs a command in the container and returns its exit code and
	// combined output.
	Exec func(ctx context.Context, cmd []string) (exitCode int, output []byte, err error)
}

// UserAgent is what HTTP probes send, as the kubelet sends kube-probe/<version>.
const UserAgent = "kube-probe/1.32"

// maxOutput bounds what a failure message keeps of a body or an output.
const maxOutput = 1024

// NewChecker returns the checker of a probe's handler: exactly one of exec,
// httpGet and tcpSocket must be set.
func NewChecker(handler api.ProbeHandler, target Target) (Checker, error) {
	switch {
	case handler.Exec != nil:
		if target.Exec == nil {
			return nil, errors.New("exec probe: no way to run commands in the container")
		}
		if len(handler.Exec.Command) == 0 {
			return nil, errors.New("exec probe: no command")
		}
		return execChecker{command: handler.Exec.Command, exec: target.Exec}, nil
	case handler.HTTPGet != nil:
		return newHTTPChecker(handler.HTTPGet, target)
	case handler.TCPSocket != nil:
		address, err := hostPort(handler.TCPSocket.Host, handler.TCPSocket.Port, target)
		if err != nil {
			return nil, fmt.Errorf("tcpSocket probe: %w", err)
		}
		return tcpChecker{address: address, dial: dialer(target)}, nil
	default:
		return nil, errors.New("probe has no handler: set exec, httpGet or tcpSocket")
	}
}

// ResolvePort returns the number of a probe's port, looking a named port
// up among the container's ports.
func ResolvePort(port api.IntOrString, ports []api.ContainerPort) (int, error) {
	if !port.IsString {
		if port.IntVal <= 0 || port.IntVal > 65535 {
			return 0, fmt.Errorf("invalid port %d", port.IntVal)
		}
		return int(port.IntVal), nil
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil && n > 0 && n <= 65535 {
		return n, nil
	}
	for _, p := range ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("port %q is not among the container's ports", port.StrVal)
}

func hostPort(host string, port api.IntOrString, target Target) (string, error) {
	number, err := ResolvePort(port, target.Ports)
	if err != nil {
		return "", err
	}
	if host == "" {
		host = target.PodIP
	}
	if host == "" {
		return "", errors.New("no host: the pod has no IP yet")
	}
	return net.JoinHostPort(host, strconv.Itoa(number)), nil
}

func dialer(target Target) func(ctx context.Context, network, address string) (net.Conn, error) {
	if target.Dial != nil {
		return target.Dial
	}
	var d net.Dialer
	return d.DialContext
}

// tcpChecker passes when a TCP connection opens.
type tcpChecker struct {
	address string
	dial    func(ctx context.Context, network, address string) (net.Conn, error)
}

func (c tcpChecker) Check(ctx context.Context) (Result, string) {
	conn, err := c.dial(ctx, "tcp", c.address)
	if err != nil {
		return Failure, fmt.Sprintf("dial tcp %s: %v", c.address, unwrapOpError(err))
	}
	conn.Close()
	return Success, ""
}

// execChecker passes when the command exits with 0.
type execChecker struct {
	command []string
	exec    func(ctx context.Context, cmd []string) (int, []byte, error)
}

func (c execChecker) Check(ctx context.Context) (Result, string) {
	code, output, err := c.exec(ctx, c.command)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (err != nil && ctx.Err() != nil):
		return Failure, fmt.Sprintf("command %q timed out", c.command)
	case err != nil:
		return Failure, fmt.Sprintf("command %q: %v", c.command, err)
	case code != 0:
		return Failure, fmt.Sprintf("command %q exited with %d: %s", c.command, code, truncate(output))
	}
	return Success, ""
}

// httpChecker passes on a status from 200 to 399.
type httpChecker struct {
	url     string
	headers http.Header
	client  *http.Client
}

func newHTTPChecker(get *api.HTTPGetAction, target Target) (Checker, error) {
	address, err := hostPort(get.Host, get.Port, target)
	if err != nil {
		return nil, fmt.Errorf("httpGet probe: %w", err)
	}
	scheme := strings.ToLower(get.Scheme)
	if scheme == "" {
		scheme = "http"
	}
	if scheme != "http" && scheme != "https" {
		return nil, fmt.Errorf("httpGet probe: unsupported scheme %q", get.Scheme)
	}
	path := get.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := &url.URL{Scheme: scheme, Host: address}
	// The path may carry a query: parse it rather than escape it.
	ref, err := url.Parse(path)
	if err != nil {
		return nil, fmt.Errorf("httpGet probe: path %q: %w", get.Path, err)
	}
	u = u.ResolveReference(ref)

	headers := http.Header{}
	headers.Set("User-Agent", UserAgent)
	headers.Set("Accept", "*/*")
	for _, h := range get.HTTPHeaders {
		headers.Add(h.Name, h.Value)
	}
	transport := &http.Transport{
		DialContext: dialer(target),
		// As the kubelet: probes do not verify certificates, and never
		// reuse connections, so each check sees the server as a new
		// client would.
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // probes check liveness, not identity
		DisableKeepAlives: true,
		Proxy:             nil,
	}
	client := &http.Client{
		Transport: transport,
		// Follow redirects on the same host only; a redirect elsewhere
		// counts as success, as the kubelet counts it.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 || req.URL.Host != via[0].URL.Host {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	return &httpChecker{url: u.String(), headers: headers, client: client}, nil
}

func (c *httpChecker) Check(ctx context.Context) (Result, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return Failure, err.Error()
	}
	req.Header = c.headers.Clone()
	if host := req.Header.Get("Host"); host != "" {
		req.Host = host
	}
	resp, err := c.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return Failure, fmt.Sprintf("Get %q: timed out", c.url)
		}
		return Failure, fmt.Sprintf("Get %q: %v", c.url, unwrapOpError(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxOutput))
	if resp.StatusCode >= http.StatusOK && resp.StatusCode < http.StatusBadRequest {
		return Success, ""
	}
	return Failure, fmt.Sprintf("HTTP probe failed with statuscode: %d %s", resp.StatusCode, truncate(body))
}

// unwrapOpError shortens "dial tcp 10.244.1.5:80: connect: connection
// refused" wrapped in url.Error to its useful part.
func unwrapOpError(err error) error {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return opErr.Err
	}
	return err
}

func truncate(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > maxOutput {
		s = s[:maxOutput] + "…"
	}
	return s
}
