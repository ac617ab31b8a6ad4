package allocator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/apiserver"
	"kubelite/apiserver/etcd/etcdtest"
	"kubelite/apiserver/storage"
	"kubelite/controller/allocator"
)

// The hook is what the API server expects for "services".
var _ apiserver.Hook = (*allocator.ServiceHook)(nil)

// apiServer is one API server (plain HTTP on loopback, no auth) with its
// allocator, over a shared etcd.
type apiServer struct {
	hook     *allocator.ServiceHook
	services *client.Typed[api.Service, *api.Service]
	all      *client.Typed[api.Service, *api.Service] // every namespace
}

func startAPIServer(t *testing.T, cli *clientv3.Client) *apiServer {
	t.Helper()
	hook, err := allocator.NewServiceHook(cli, allocator.Config{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := apiserver.New(apiserver.Config{
		Store: storage.New(cli, "/registry"),
		Hooks: map[string]apiserver.Hook{"services": hook},
	})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	if err := srv.Bootstrap(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(&client.Config{Server: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	return &apiServer{hook: hook, services: client.For[api.Service](c, "default"), all: client.For[api.Service](c, "")}
}

func TestNodePortTutorialThroughTheAPIServer(t *testing.T) {
	cli := etcdtest.Start(t)
	s := startAPIServer(t, cli)

	svc, err := s.services.Create(ctxT(t), newService("httpd-svc", api.ServiceTypeNodePort, servicePort("", 8080, 31000)))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%d:%d/%s", svc.Spec.Ports[0].Port, svc.Spec.Ports[0].NodePort, svc.Spec.Ports[0].Protocol); got != "8080:31000/TCP" {
		t.Errorf("PORT(S) = %s, want 8080:31000/TCP", got)
	}
	if !strings.HasPrefix(svc.Spec.ClusterIP, "10.") || len(svc.Spec.ClusterIPs) != 1 || svc.Spec.ClusterIPs[0] != svc.Spec.ClusterIP {
		t.Errorf("clusterIP %q, clusterIPs %v", svc.Spec.ClusterIP, svc.Spec.ClusterIPs)
	}
	want := expectedKeys(svc)

	// The same node port again: refused, and nothing half-applied.
	_, err = s.services.Create(ctxT(t), newService("httpd2-svc", api.ServiceTypeNodePort, servicePort("http", 8080, 0), servicePort("https", 8443, 31000)))
	wantInvalid(t, err, `Service "httpd2-svc" is invalid: spec.ports[1].nodePort: Invalid value: 31000: provided port is already allocated`)
	ipTaken := newService("httpd3-svc", api.ServiceTypeClusterIP, servicePort("", 8080, 0))
	ipTaken.Spec.ClusterIP = svc.Spec.ClusterIP
	_, err = s.services.Create(ctxT(t), ipTaken)
	wantInvalid(t, err, fmt.Sprintf(`Service "httpd3-svc" is invalid: spec.clusterIPs: Invalid value: []string{%q}: failed to allocate IP %s: provided IP is already allocated`,
		svc.Spec.ClusterIP, svc.Spec.ClusterIP))
	outside := newService("httpd4-svc", api.ServiceTypeClusterIP, servicePort("", 8080, 0))
	outside.Spec.ClusterIP = "10.0.0.5"
	_, err = s.services.Create(ctxT(t), outside)
	wantInvalid(t, err, `Service "httpd4-svc" is invalid: spec.clusterIPs: Invalid value: []string{"10.0.0.5"}: failed to allocate IP 10.0.0.5: the provided IP (10.0.0.5) is not in the valid range. The range of valid IPs is 10.96.0.0/12`)
	if got := allocationKeys(t, cli); !maps.Equal(got, want) {
		t.Fatalf("keys after refused creates = %v, want %v", got, want)
	}

	// A new node port through an update: the old one goes once it is stored.
	svc.Spec.Ports[0].NodePort = 31001
	svc, err = s.services.Update(ctxT(t), svc)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := allocationKeys(t, cli), expectedKeys(svc); !maps.Equal(got, want) {
		t.Fatalf("keys after the update = %v, want %v", got, want)
	}

	if err := s.services.Delete(ctxT(t), "httpd-svc", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := allocationKeys(t, cli); len(got) != 0 {
		t.Fatalf("keys after delete = %v, want none", got)
	}
}

// TestUpdateKeepsAllocatedValuesThroughTheAPIServer replaces a Service with
// a manifest that names its cluster IP but not its node port, as
// `kubectl replace -f` of an edited `kubectl get -o yaml` without the
// nodePort line does.
func TestUpdateKeepsAllocatedValuesThroughTheAPIServer(t *testing.T) {
	cli := etcdtest.Start(t)
	s := startAPIServer(t, cli)
	created, err := s.services.Create(ctxT(t), newService("web", api.ServiceTypeNodePort, servicePort("http", 80, 0)))
	if err != nil {
		t.Fatal(err)
	}
	manifest := newService("web", api.ServiceTypeNodePort, servicePort("http", 80, 0))
	manifest.Spec.ClusterIP = created.Spec.ClusterIP
	manifest.Labels = map[string]string{"tier": "front"}
	updated, err := s.services.Update(ctxT(t), manifest)
	if err != nil {
		t.Fatal(err)
	}
	if updated.Spec.ClusterIP != created.Spec.ClusterIP || updated.Spec.Ports[0].NodePort != created.Spec.Ports[0].NodePort {
		t.Fatalf("after the update: clusterIP %s, nodePort %d; want %s, %d kept",
			updated.Spec.ClusterIP, updated.Spec.Ports[0].NodePort, created.Spec.ClusterIP, created.Spec.Ports[0].NodePort)
	}
	if got, want := allocationKeys(t, cli), expectedKeys(created); !maps.Equal(got, want) {
		t.Fatalf("keys = %v, want %v", got, want)
	}

	// NodePort → ClusterIP: the node port is dropped and released.
	manifest.Spec.Type = api.ServiceTypeClusterIP
	updated, err = s.services.Update(ctxT(t), manifest)
	if err != nil {
		t.Fatal(err)
	}
	if updated.Spec.Ports[0].NodePort != 0 || updated.Spec.ClusterIP != created.Spec.ClusterIP {
		t.Fatalf("after switching to ClusterIP: clusterIP %s, nodePort %d", updated.Spec.ClusterIP, updated.Spec.Ports[0].NodePort)
	}
	if got, want := allocationKeys(t, cli), expectedKeys(updated); !maps.Equal(got, want) {
		t.Fatalf("keys = %v, want %v", got, want)
	}
}

// TestConcurrentCreatesThenRestart creates 500 Services from 20 goroutines
// through the API server, some asking for the same node port or cluster IP
// on purpose; then starts a new API server (a restart) over the same etcd.
func TestConcurrentCreatesThenRestart(t *testing.T) {
	cli := etcdtest.Start(t)
	s := startAPIServer(t, cli)

	const total, workers = 500, 20
	type outcome struct {
		svc *api.Service
		err error
	}
	outcomes := make([]outcome, total)
	requests := make([]*api.Service, total)
	for i := range total {
		requests[i] = concurrencyTestService(i)
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				svc, err := s.services.Create(ctxT(t), api.DeepCopy(requests[i]))
				outcomes[i] = outcome{svc, err}
			}
		})
	}
	for i := range total {
		next <- i
	}
	close(next)
	wg.Wait()

	holders := map[string]string{} // allocation key → Service
	created := map[string]*api.Service{}
	refused := 0
	for i, o := range outcomes {
		req := requests[i]
		if o.err != nil {
			refused++
			wantInvalid(t, o.err, expectedRefusal(req))
			continue
		}
		created[o.svc.Name] = o.svc
		for key := range expectedKeys(o.svc) {
			if other, dup := holders[key]; dup {
				t.Fatalf("%s handed out twice: to %s and to %s", key, other, o.svc.Name)
			}
			holders[key] = o.svc.Name
		}
		if ip := req.Spec.ClusterIP; ip != "" && o.svc.Spec.ClusterIP != ip {
			t.Errorf("%s asked for %s, got %s", o.svc.Name, ip, o.svc.Spec.ClusterIP)
		}
		for j, p := range req.Spec.Ports {
			if p.NodePort != 0 && o.svc.Spec.Ports[j].NodePort != p.NodePort {
				t.Errorf("%s asked for node port %d, got %d", o.svc.Name, p.NodePort, o.svc.Spec.Ports[j].NodePort)
			}
		}
	}
	// 100 Services share 10 node ports and 100 share 10 cluster IPs.
	if refused < 180 {
		t.Errorf("%d creates refused, want at least 180", refused)
	}
	t.Logf("%d Services created, %d refused", len(created), refused)

	// A restart: a new allocator and API server over the same etcd.
	restarted := startAPIServer(t, cli)
	list, err := restarted.all.List(ctxT(t), client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantKeys := map[string]string{}
	for i := range list.Items {
		svc := &list.Items[i]
		maps.Copy(wantKeys, expectedKeys(svc))
		before, ok := created[svc.Name]
		if !ok {
			continue // a Service of the cluster itself
		}
		delete(created, svc.Name)
		if svc.Spec.ClusterIP != before.Spec.ClusterIP || !equalNodePorts(svc, before) {
			t.Errorf("%s after the restart: %s %v, before: %s %v", svc.Name,
				svc.Spec.ClusterIP, svc.Spec.Ports, before.Spec.ClusterIP, before.Spec.Ports)
		}
	}
	if len(created) > 0 {
		t.Errorf("%d created Services are missing after the restart", len(created))
	}
	if got := allocationKeys(t, cli); !maps.Equal(got, wantKeys) {
		t.Fatalf("allocation keys (%d) differ from the values the Services hold (%d)", len(got), len(wantKeys))
	}
	report, err := restarted.hook.Repair(ctxT(t), list.Items)
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Recreated)+len(report.Released)+len(report.Duplicates)+len(report.OutOfRange) > 0 {
		t.Fatalf("repair after the restart found work to do: %+v", report)
	}
}

// concurrencyTestService is the i-th Service of the concurrency test, one
// of five kinds.
func concurrencyTestService(i int) *api.Service {
	name := "svc-" + strconv.Itoa(i)
	switch i % 5 {
	case 0: // a cluster IP, any
		return newService(name, api.ServiceTypeClusterIP, servicePort("", 80, 0))
	case 1: // two node ports, any
		return newService(name, api.ServiceTypeNodePort, servicePort("http", 80, 0), servicePort("https", 443, 0))
	case 2: // a node port of its own
		return newService(name, api.ServiceTypeNodePort, servicePort("", 80, int32(32000+i/5)))
	case 3: // one of ten node ports, ten Services each
		return newService(name, api.ServiceTypeNodePort, servicePort("", 80, int32(31000+(i/5)%10)))
	default: // one of ten cluster IPs, ten Services each
		svc := newService(name, api.ServiceTypeClusterIP, servicePort("", 80, 0))
		svc.Spec.ClusterIP = fmt.Sprintf("10.96.100.%d", 1+(i/5)%10)
		return svc
	}
}

// expectedRefusal is the error a refused create of req must give: the
// value it asked for was taken (by a twin, or by a random pick).
func expectedRefusal(req *api.Service) string {
	prefix := fmt.Sprintf("Service %q is invalid: ", req.Name)
	if ip := req.Spec.ClusterIP; ip != "" {
		return prefix + fmt.Sprintf(`spec.clusterIPs: Invalid value: []string{%q}: failed to allocate IP %s: provided IP is already allocated`, ip, ip)
	}
	for i, p := range req.Spec.Ports {
		if p.NodePort != 0 {
			return prefix + fmt.Sprintf("spec.ports[%d].nodePort: Invalid value: %d: provided port is already allocated", i, p.NodePort)
		}
	}
	return "(no refusal expected for " + req.Name + ")"
}

func newService(name, typ string, ports ...api.ServicePort) *api.Service {
	return &api.Service{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       api.ServiceSpec{Type: typ, Selector: map[string]string{"run": name}, Ports: ports},
	}
}

func servicePort(name string, number, nodePort int32) api.ServicePort {
	return api.ServicePort{Name: name, Port: number, Protocol: api.ProtocolTCP, TargetPort: api.FromInt(number), NodePort: nodePort}
}

// expectedKeys are the allocation keys svc should have, as
// "serviceips/10.96.0.5" → "default/name".
func expectedKeys(svc *api.Service) map[string]string {
	owner := svc.Namespace + "/" + svc.Name
	keys := map[string]string{}
	if svc.Spec.Type != api.ServiceTypeExternalName && svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != api.ClusterIPNone {
		keys["serviceips/"+svc.Spec.ClusterIP] = owner
	}
	if svc.Spec.Type == api.ServiceTypeNodePort || svc.Spec.Type == api.ServiceTypeLoadBalancer {
		for _, p := range svc.Spec.Ports {
			if p.NodePort != 0 {
				keys["servicenodeports/"+strconv.Itoa(int(p.NodePort))] = owner
			}
		}
	}
	return keys
}

// allocationKeys reads the allocation keys from etcd, as etcdctl shows them.
func allocationKeys(t *testing.T, cli *clientv3.Client) map[string]string {
	t.Helper()
	const prefix = "/registry/ranges/"
	resp, err := cli.Get(ctxT(t), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, kv := range resp.Kvs {
		var value struct {
			Owner string `json:"owner"`
		}
		if err := json.Unmarshal(kv.Value, &value); err != nil {
			t.Fatalf("%s = %q: %v", kv.Key, kv.Value, err)
		}
		keys[strings.TrimPrefix(string(kv.Key), prefix)] = value.Owner
	}
	return keys
}

func equalNodePorts(a, b *api.Service) bool {
	if len(a.Spec.Ports) != len(b.Spec.Ports) {
		return false
	}
	for i := range a.Spec.Ports {
		if a.Spec.Ports[i].NodePort != b.Spec.Ports[i].NodePort {
			return false
		}
	}
	return true
}

func wantInvalid(t *testing.T, err error, message string) {
	t.Helper()
	var st *api.Status
	if !errors.As(err, &st) {
		t.Fatalf("want Invalid %q, got %v", message, err)
	}
	if st.Reason != api.ReasonInvalid || st.Code != 422 || st.Message != message {
		t.Fatalf("want Invalid (422) %q,\n got %s (%d) %q", message, st.Reason, st.Code, st.Message)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
