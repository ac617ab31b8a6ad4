package podproxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"kubelite/api"
)

// requestKind is one of the relayed subresources.
type requestKind struct {
	subresource string // in the API: pods/{name}/{subresource}
	agentPath   string // in the node agent's API: /{agentPath}/{ns}/{pod}/{container}
	streaming   bool   // a remote command session (exec, attach)
	command     bool   // takes a command (exec)
}

var (
	logRequest    = requestKind{subresource: "log", agentPath: "containerLogs"}
	execRequest   = requestKind{subresource: "exec", agentPath: "exec", streaming: true, command: true}
	attachRequest = requestKind{subresource: "attach", agentPath: "attach", streaming: true}
)

// target is where a request is relayed to.
type target struct {
	node      string
	url       *url.URL
	transport http.RoundTripper
}

// route checks a request as Kubernetes does and finds the node agent and
// the path it goes to.
func (p *Proxy) route(ctx context.Context, kind requestKind, namespace, name string, query url.Values) (*target, error) {
	pod, err := p.objects.Pod(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	container, err := containerOf(pod, query.Get("container"))
	if err != nil {
		return nil, err
	}
	agentQuery, err := kind.agentQuery(query)
	if err != nil {
		return nil, err
	}
	if pod.Spec.NodeName == "" {
		return nil, api.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", name))
	}
	node, err := p.objects.Node(ctx, pod.Spec.NodeName)
	if err != nil {
		return nil, err
	}
	host, transport, err := nodeAgent(node)
	if err != nil {
		return nil, err
	}
	return &target{
		node:      node.Name,
		url:       agentURL(host, []string{kind.agentPath, namespace, name, container}, agentQuery),
		transport: transport,
	}, nil
}

// containerOf is the container a request is about: the one named, or the
// Pod's only one; the errors are Kubernetes' words.
func containerOf(pod *api.Pod, name string) (string, error) {
	if name == "" {
		switch len(pod.Spec.Containers) {
		case 1:
			return pod.Spec.Containers[0].Name, nil
		case 0:
			return "", api.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s", pod.Name))
		}
		msg := fmt.Sprintf("a container name must be specified for pod %s, choose one of: [%s]", pod.Name, containerNames(pod.Spec.Containers))
		if len(pod.Spec.InitContainers) > 0 {
			msg += fmt.Sprintf(" or one of the init containers: [%s]", containerNames(pod.Spec.InitContainers))
		}
		return "", api.NewBadRequest(msg)
	}
	for _, list := range [][]api.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range list {
			if c.Name == name {
				return name, nil
			}
		}
	}
	return "", api.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
}

func containerNames(containers []api.Container) string {
	names := make([]string, len(containers))
	for i, c := range containers {
		names[i] = c.Name
	}
	return strings.Join(names, " ")
}

// agentQuery translates the API's parameters into the node agent's: the
// booleans of exec and attach become "1", as the kubelet reads them, and
// only what the agent understands is passed on.
func (k requestKind) agentQuery(q url.Values) (url.Values, error) {
	out := url.Values{}
	if !k.streaming {
		for _, name := range []string{"sinceSeconds", "sinceTime", "limitBytes"} {
			if q.Has(name) {
				// Refused rather than ignored: a log that silently ignores
				// --since would look like a complete answer.
				return nil, api.NewBadRequest(fmt.Sprintf("%s is not supported by kubelite's node agents yet", name))
			}
		}
		for _, name := range []string{"follow", "previous", "timestamps"} {
			if queryBool(q, name) {
				out.Set(name, "true")
			}
		}
		if v := q.Get("tailLines"); v != "" {
			if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
				return nil, api.NewBadRequest(fmt.Sprintf("tailLines: Invalid value: %q: must be an integer greater than or equal to 0", v))
			}
			out.Set("tailLines", v)
		}
		return out, nil
	}
	if k.command {
		if len(q["command"]) == 0 {
			return nil, api.NewBadRequest("you must specify at least one command for the container")
		}
		out["command"] = q["command"]
	}
	for _, name := range []string{"stdin", "stdout", "stderr", "tty"} {
		if queryBool(q, name) {
			out.Set(name, "1")
		}
	}
	if out.Get("stdin") == "" && out.Get("stdout") == "" && out.Get("stderr") == "" {
		return nil, api.NewBadRequest("you must specify at least 1 of stdin, stdout, stderr")
	}
	return out, nil
}

// queryBool reads a boolean parameter as Kubernetes converts them: absent,
// "false" and "0" are false, anything else ("true", "1") is true.
func queryBool(q url.Values, name string) bool {
	values, ok := q[name]
	if !ok || len(values) == 0 {
		return false
	}
	switch strings.ToLower(values[0]) {
	case "false", "0":
		return false
	}
	return true
}

// nodeAgent is where a node's agent listens and a transport that trusts
// exactly the certificate the node published.
func nodeAgent(node *api.Node) (host string, transport *http.Transport, err error) {
	ip := node.InternalIP()
	if ip == "" {
		return "", nil, api.NewStatus(http.StatusServiceUnavailable, api.ReasonServiceUnavail,
			fmt.Sprintf("node %q has no InternalIP address to reach its agent at", node.Name))
	}
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port == 0 {
		port = DefaultKubeletPort
	}
	certPEM := node.Annotations[ServingCertAnnotation]
	if certPEM == "" {
		return "", nil, api.NewStatus(http.StatusServiceUnavailable, api.ReasonServiceUnavail,
			fmt.Sprintf("node %q has not published its agent's serving certificate (annotation %s)", node.Name, ServingCertAnnotation))
	}
	cert, err := parseCertificate([]byte(certPEM))
	if err != nil {
		return "", nil, api.NewStatus(http.StatusServiceUnavailable, api.ReasonServiceUnavail,
			fmt.Sprintf("node %q published an unreadable serving certificate: %v", node.Name, err))
	}
	return net.JoinHostPort(ip, strconv.Itoa(port)), pinnedTransport(node.Name, cert), nil
}

func parseCertificate(certPEM []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(block.Bytes)
}

// pinnedTransport connects to a node agent and accepts only the pinned
// certificate.
func pinnedTransport(node string, pinned *x509.Certificate) *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			NextProtos: []string{"http/1.1"}, // WebSocket upgrades are HTTP/1.1
			// The certificate is self-signed: no chain to verify. The pin
			// below is the whole check, and it is stricter than a CA's.
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 || !cs.PeerCertificates[0].Equal(pinned) {
					return fmt.Errorf("the node agent's certificate is not the one node %q published", node)
				}
				return nil
			},
		},
		// One connection per request: a log stream or a session holds it
		// for its whole life, and nothing idle is left behind.
		DisableKeepAlives: true,
	}
}
