// Package client is the REST client of the kubelite API: a dynamic client on
// raw JSON (used by kubectl-lite) and a typed generic client on top of it
// (used by the controllers, the node agent, the proxy and DNS).
//
// Every call takes a context; failures the server reports come back as
// *api.Status errors, so callers test them with api.IsNotFound and friends.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"kubelite/api"
)

// Config says how to reach and authenticate to the API server.
type Config struct {
	Server    string // https://127.0.0.1:6443
	Token     string // bearer token
	CAData    []byte // PEM CA bundle; empty means the system roots
	Insecure  bool   // skip TLS verification (tests, --insecure-skip-tls-verify)
	UserAgent string
	// Namespace is the default namespace of the kubeconfig context ("" when
	// the context names none; callers then use "default").
	Namespace string
	// Timeout bounds each Do call (not streams such as watches); zero means
	// only the caller's context bounds it.
	Timeout time.Duration
	// OnWarning receives each Warning header of a response (deprecations).
	OnWarning func(msg string)
}

// Limits that keep a confused or hostile server from exhausting memory.
const (
	// maxResponseBytes bounds a non-streamed answer (a large list included).
	maxResponseBytes = 128 << 20
	// maxErrorBodyBytes bounds what is read of a failed answer.
	maxErrorBodyBytes = 1 << 20
)

const defaultUserAgent = "kubelite-client"

// Client talks to one API server. It is safe for concurrent use and reuses
// connections (HTTP/2 when the server offers it), so share one per process.
type Client struct {
	cfg     Config
	baseURL *url.URL
	tls     *tls.Config
	http    *http.Client
}

// New returns a client for cfg. cfg is copied; later changes to it have no effect.
func New(cfg *Config) (*Client, error) {
	if cfg == nil || cfg.Server == "" {
		return nil, errors.New("client: no server address configured")
	}
	base, err := url.Parse(cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("client: parsing server address %q: %w", cfg.Server, err)
	}
	if (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("client: server address %q must be an http(s) URL", cfg.Server)
	}
	tlsConfig, err := newTLSConfig(cfg)
	if err != nil {
		return nil, err
	}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   10 * time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   25,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Watches sit idle for minutes: ping the server so that a dead
		// connection (a rebooted peer, a dropped NAT entry) is noticed and
		// the watches multiplexed on it fail instead of hanging forever.
		HTTP2: &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second},
	}
	c := &Client{
		cfg:     *cfg,
		baseURL: base,
		tls:     tlsConfig,
		// No client-wide timeout: watches and log streams are long-lived;
		// contexts bound every request instead.
		http: &http.Client{Transport: transport},
	}
	if c.cfg.UserAgent == "" {
		c.cfg.UserAgent = defaultUserAgent
	}
	return c, nil
}

func newTLSConfig(cfg *Config) (*tls.Config, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.Insecure {
		tlsConfig.InsecureSkipVerify = true
		return tlsConfig, nil
	}
	if len(cfg.CAData) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.CAData) {
			return nil, errors.New("client: CA data holds no PEM certificate")
		}
		tlsConfig.RootCAs = pool
	}
	return tlsConfig, nil
}

// Config returns a copy of the configuration the client was built from.
func (c *Client) Config() *Config {
	cfg := c.cfg
	return &cfg
}

// TLSConfig returns a copy of the TLS settings, for connections the client
// does not make itself (websocket streams for exec and attach).
func (c *Client) TLSConfig() *tls.Config { return c.tls.Clone() }

// URL is the absolute URL of an API path with query parameters.
func (c *Client) URL(path string, query url.Values) *url.URL {
	u := *c.baseURL
	u.Path = strings.TrimSuffix(c.baseURL.Path, "/") + path
	u.RawPath = ""
	u.RawQuery = query.Encode()
	return &u
}

// Do performs one request. A non-2xx answer is returned as a *api.Status
// error (decoded from the body, or synthesised from the code).
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body []byte) ([]byte, error) {
	if c.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	resp, err := c.send(ctx, method, path, query, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading response: %w", method, path, err)
	}
	if len(data) > maxResponseBytes {
		return nil, fmt.Errorf("%s %s: response larger than %d bytes", method, path, maxResponseBytes)
	}
	return data, nil
}

// Stream performs a request whose answer is read incrementally (watch, logs).
// The caller closes the stream; cancelling ctx ends it too.
func (c *Client) Stream(ctx context.Context, method, path string, query url.Values) (io.ReadCloser, error) {
	resp, err := c.send(ctx, method, path, query, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// send performs a request and turns a non-2xx answer into a *api.Status
// error; on success the caller owns the response body.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, body []byte) (*http.Response, error) {
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL(path, query).String(), reader)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err // a *url.Error, which names the method and URL
	}
	c.deliverWarnings(resp.Header)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
	if err != nil && len(data) == 0 {
		return nil, fmt.Errorf("%s %s: %s, and reading the body failed: %w", method, path, resp.Status, err)
	}
	return nil, decodeStatus(data, resp.StatusCode)
}

func (c *Client) deliverWarnings(h http.Header) {
	if c.cfg.OnWarning == nil {
		return
	}
	for _, value := range h.Values("Warning") {
		for _, text := range parseWarnings(value) {
			c.cfg.OnWarning(text)
		}
	}
}

// parseWarnings returns the texts of a Warning header value (RFC 7234):
// `299 - "text"`, optionally followed by a quoted date, several values
// separated by commas. Only code 299 (a miscellaneous persistent warning,
// which is what Kubernetes sends) is returned. A value that does not parse
// is returned whole rather than lost.
func parseWarnings(value string) []string {
	var texts []string
	rest := strings.TrimSpace(value)
	for rest != "" {
		code, after, ok := strings.Cut(rest, " ")
		if !ok || len(code) != 3 {
			break
		}
		_, after, ok = strings.Cut(strings.TrimLeft(after, " "), " ") // the agent, "-" from Kubernetes
		if !ok {
			break
		}
		text, after, ok := cutQuoted(strings.TrimLeft(after, " "))
		if !ok {
			break
		}
		if code == "299" {
			texts = append(texts, text)
		}
		after = strings.TrimLeft(after, " ")
		if strings.HasPrefix(after, `"`) { // the optional warn-date
			if _, after, ok = cutQuoted(after); !ok {
				break
			}
		}
		after, ok = strings.CutPrefix(strings.TrimLeft(after, " "), ",")
		if !ok && after != "" {
			break
		}
		rest = strings.TrimSpace(after)
	}
	if texts == nil && rest != "" {
		return []string{strings.TrimSpace(value)}
	}
	return texts
}

// cutQuoted splits an HTTP quoted-string off the front of s and unescapes it.
func cutQuoted(s string) (text, rest string, ok bool) {
	if !strings.HasPrefix(s, `"`) {
		return "", s, false
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(s[i])
		}
	}
	return "", s, false
}

// decodeStatus returns the Status a failed answer carries, filling what the
// server left out from the HTTP code, or a Status synthesised from the code
// when the body is not one (a proxy's HTML page, an empty body).
func decodeStatus(body []byte, code int) *api.Status {
	var status api.Status
	if err := json.Unmarshal(body, &status); err == nil && (status.Kind == "Status" || status.Status == "Failure") {
		if status.Code == 0 {
			status.Code = int32(code)
		}
		if status.Reason == "" {
			status.Reason = reasonForCode(int(status.Code))
		}
		if status.Message == "" {
			status.Message = messageForCode(int(status.Code), nil)
		}
		return &status
	}
	return api.NewStatus(code, reasonForCode(code), messageForCode(code, body))
}

// reasonForCode maps an HTTP code to the reason Kubernetes uses for it.
func reasonForCode(code int) api.StatusReason {
	switch code {
	case http.StatusBadRequest:
		return api.ReasonBadRequest
	case http.StatusUnauthorized:
		return api.ReasonUnauthorized
	case http.StatusForbidden:
		return api.ReasonForbidden
	case http.StatusNotFound:
		return api.ReasonNotFound
	case http.StatusMethodNotAllowed:
		return api.ReasonMethodNotAllowed
	case http.StatusConflict:
		return api.ReasonConflict
	case http.StatusGone:
		return api.ReasonGone
	case http.StatusRequestEntityTooLarge:
		return api.ReasonRequestTooLarge
	case http.StatusUnprocessableEntity:
		return api.ReasonInvalid
	case http.StatusTooManyRequests:
		return "TooManyRequests"
	case http.StatusServiceUnavailable:
		return api.ReasonServiceUnavail
	case http.StatusGatewayTimeout:
		return api.ReasonTimeout
	}
	if code >= 500 {
		return api.ReasonInternalError
	}
	return ""
}

// messageForCode is client-go's wording for an answer without a Status body.
func messageForCode(code int, body []byte) string {
	switch code {
	case http.StatusBadRequest:
		return "the server rejected our request for an unknown reason"
	case http.StatusUnauthorized:
		return "the server has asked for the client to provide credentials"
	case http.StatusForbidden:
		return "the server does not allow access to the requested resource"
	case http.StatusNotFound:
		return "the server could not find the requested resource"
	case http.StatusMethodNotAllowed:
		return "the server does not allow this method on the requested resource"
	case http.StatusConflict:
		return "the server reported a conflict"
	case http.StatusGone:
		return "the requested resource version is too old"
	case http.StatusRequestEntityTooLarge:
		return "the request is too large"
	case http.StatusUnprocessableEntity:
		return "the server rejected our request due to an error in our request"
	case http.StatusTooManyRequests:
		return "the server has received too many requests and has asked us to try again later"
	case http.StatusServiceUnavailable:
		return "the server is currently unable to handle the request"
	case http.StatusGatewayTimeout:
		return "the server was unable to return a response in the time allotted"
	}
	if code >= 500 {
		if text := strings.TrimSpace(string(body)); text != "" && len(text) <= 256 {
			return fmt.Sprintf("an error on the server (%q) has prevented the request from succeeding", text)
		}
		return "an error on the server has prevented the request from succeeding"
	}
	return fmt.Sprintf("the server responded with the status code %d but did not return more information", code)
}
