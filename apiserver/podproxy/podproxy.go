// Package podproxy serves the pods/log, pods/exec and pods/attach
// subresources of the API server by relaying them to the node agent that
// runs the Pod, as Kubernetes' API server relays them to the kubelet:
//
//	GET /api/v1/namespaces/{ns}/pods/{name}/log?container=&follow=&tailLines=&previous=&timestamps=
//	    → GET https://{node InternalIP}:{kubelet port}/containerLogs/{ns}/{name}/{container}?...
//	GET /api/v1/namespaces/{ns}/pods/{name}/exec?container=&command=...&stdin=&stdout=&stderr=&tty=
//	    → GET https://.../exec/{ns}/{name}/{container}?...   (a WebSocket, relayed byte for byte)
//
// The proxy finds the Pod's node, checks the request as Kubernetes does
// (the container named or the only one, a node assigned), and relays it
// with the node token as its credential: the caller's own Authorization
// never reaches the node. It trusts the node agent's certificate because
// it is exactly the one the node published on its Node object
// (kubeletserver.ServingCertAnnotation), not because a CA vouches for it.
package podproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"kubelite/api"
	"kubelite/apiserver"
	"kubelite/apiserver/storage"
)

// ServingCertAnnotation is the Node annotation holding the node agent's
// serving certificate; the agent publishes it (its value is
// kubeletserver.ServingCertAnnotation: the two sides of one contract).
const ServingCertAnnotation = "kubelite.io/kubelet-serving-cert"

// DefaultKubeletPort is the node agent's port when its Node does not say.
const DefaultKubeletPort = 10250

// Objects reads the Pods and Nodes that requests are routed by.
type Objects interface {
	Pod(ctx context.Context, namespace, name string) (*api.Pod, error)
	Node(ctx context.Context, name string) (*api.Node, error)
}

// StoreObjects reads Pods and Nodes from the API server's storage.
func StoreObjects(store *storage.Store) Objects {
	return storeObjects{
		pods:  store.For(api.ResourceFor(&api.Pod{})),
		nodes: store.For(api.ResourceFor(&api.Node{})),
	}
}

type storeObjects struct {
	pods, nodes *storage.ResourceStore
}

func (s storeObjects) Pod(ctx context.Context, namespace, name string) (*api.Pod, error) {
	obj, err := s.pods.Get(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return obj.(*api.Pod), nil
}

func (s storeObjects) Node(ctx context.Context, name string) (*api.Node, error) {
	obj, err := s.nodes.Get(ctx, "", name)
	if err != nil {
		return nil, err
	}
	return obj.(*api.Node), nil
}

// Config configures the proxy.
type Config struct {
	// Objects finds Pods and Nodes. Required.
	Objects Objects
	// NodeToken is the credential presented to node agents. Required.
	NodeToken string
	// Authorize, when set, is asked again for exec and attach with the
	// verb "create", as Kubernetes does for their WebSocket upgrades (which
	// are GET requests, authorized as "get" by the API server): reading a
	// Pod must not be enough to run commands in it.
	Authorize func(r *http.Request, verb, resource, namespace string) error
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Proxy relays the streaming subresources of Pods to node agents.
type Proxy struct {
	objects   Objects
	nodeToken string
	authorize func(r *http.Request, verb, resource, namespace string) error
	log       *slog.Logger
}

// New returns the proxy; put its Handlers in apiserver.Config.Proxies.
func New(cfg Config) (*Proxy, error) {
	if cfg.Objects == nil {
		return nil, errors.New("pod proxy: no Objects to find Pods and Nodes in")
	}
	if cfg.NodeToken == "" {
		return nil, errors.New("pod proxy: no node token to present to node agents")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Proxy{
		objects:   cfg.Objects,
		nodeToken: cfg.NodeToken,
		authorize: cfg.Authorize,
		log:       cfg.Logger.With("component", "pod-proxy"),
	}, nil
}

// Handlers are the proxy's subresources, keyed as apiserver.Config.Proxies
// wants them.
func (p *Proxy) Handlers() map[string]http.Handler {
	return map[string]http.Handler{
		"pods/log":    p.handler(logRequest),
		"pods/exec":   p.handler(execRequest),
		"pods/attach": p.handler(attachRequest),
	}
}

// handler serves one subresource: find where the request goes, then relay it.
func (p *Proxy) handler(kind requestKind) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		namespace, name := apiserver.PodNamespaceAndName(r)
		if kind.streaming && p.authorize != nil {
			if err := p.authorize(r, "create", "pods/"+kind.subresource, namespace); err != nil {
				writeStatus(w, err)
				return
			}
		}
		target, err := p.route(r.Context(), kind, namespace, name, r.URL.Query())
		if err != nil {
			writeStatus(w, err)
			return
		}
		p.relay(w, r, target)
	})
}

// relay passes the request to the node agent and its answer back; an
// upgrade to a WebSocket becomes a byte-for-byte tunnel.
func (p *Proxy) relay(w http.ResponseWriter, r *http.Request, target *target) {
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = target.url
			pr.Out.Host = ""
			// Set replaces whatever the caller sent: its credential is
			// for the API server, never for the node.
			pr.Out.Header.Set("Authorization", "Bearer "+p.nodeToken)
		},
		Transport:     target.transport,
		FlushInterval: -1, // log lines go out as they come
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
				resp.Body.Close()
				return &agentRefusedError{node: target.node, status: resp.Status}
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the caller has gone
			}
			p.log.Warn("relaying to a node agent failed", "node", target.node, "path", target.url.Path, "err", err)
			var refused *agentRefusedError
			if errors.As(err, &refused) {
				writeStatus(w, api.NewInternalError(err))
				return
			}
			writeStatus(w, api.NewInternalError(fmt.Errorf("error dialing backend: %w", err)))
		},
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	proxy.ServeHTTP(w, r)
}

// agentRefusedError is a node agent refusing the node token: the cluster's
// credentials are out of step, which the caller's own may not be blamed for.
type agentRefusedError struct {
	node, status string
}

func (e *agentRefusedError) Error() string {
	return fmt.Sprintf("the node agent of node %q refused the API server's credentials (%s): does it have the cluster's node token?", e.node, e.status)
}

// agentURL is the URL of a path of a node agent's API. The segments are
// names of stored objects, which hold no "/".
func agentURL(host string, segments []string, query url.Values) *url.URL {
	return &url.URL{Scheme: "https", Host: host, Path: "/" + strings.Join(segments, "/"), RawQuery: query.Encode()}
}
