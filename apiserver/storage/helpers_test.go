package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kubelite/api"
	"kubelite/apiserver/etcd/etcdtest"
	"kubelite/apiserver/storage"
)

// testTimeout only guards against a hung test; no test measures time.
const testTimeout = 60 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func resource(t testing.TB, name string) *api.Resource {
	t.Helper()
	r, ok := api.NewScheme().ByName(name)
	if !ok {
		t.Fatalf("no resource %q in the scheme", name)
	}
	return r
}

// testEnv is a store on its own embedded etcd.
type testEnv struct {
	client *clientv3.Client
	store  *storage.Store
	pods   *storage.ResourceStore
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	client := etcdtest.Start(t)
	store := storage.New(client, "/registry")
	return &testEnv{client: client, store: store, pods: store.For(resource(t, "pods"))}
}

// newPod is a typical Pod: one httpd container listening on port 80.
func newPod(ns, name string, labels map[string]string) *api.Pod {
	return &api.Pod{
		ObjectMeta: api.ObjectMeta{
			Name:              name,
			Namespace:         ns,
			UID:               "6f1b7c1e-5d0a-4c1e-9e7e-" + name,
			Labels:            labels,
			CreationTimestamp: api.NewTime(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)),
		},
		Spec: api.PodSpec{
			Containers: []api.Container{{
				Name:            "httpd",
				Image:           "docker.io/library/httpd:latest",
				Ports:           []api.ContainerPort{{ContainerPort: 80, Protocol: api.ProtocolTCP}},
				ImagePullPolicy: api.PullIfNotPresent,
			}},
			RestartPolicy:                 api.RestartAlways,
			TerminationGracePeriodSeconds: api.Ptr(int64(30)),
			DNSPolicy:                     "ClusterFirst",
			NodeName:                      "node-1",
			SchedulerName:                 "default-scheduler",
		},
		Status: api.PodStatus{
			Phase:  "Running",
			HostIP: "192.168.56.11",
			PodIP:  "10.244.1.7",
			PodIPs: []api.PodIP{{IP: "10.244.1.7"}},
		},
	}
}

func mustCreate(t testing.TB, ctx context.Context, pods *storage.ResourceStore, pod *api.Pod) *api.Pod {
	t.Helper()
	created, err := pods.Create(ctx, pod)
	if err != nil {
		t.Fatalf("create %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	return created.(*api.Pod)
}

// setLabel is an Update function that sets one label.
func setLabel(key, value string) func(api.Object) (api.Object, error) {
	return func(current api.Object) (api.Object, error) {
		meta := current.GetObjectMeta()
		if meta.Labels == nil {
			meta.Labels = map[string]string{}
		}
		meta.Labels[key] = value
		return current, nil
	}
}

// requireStatus fails unless err is a *api.Status (not wrapped) with code and reason.
func requireStatus(t *testing.T, err error, code int32, reason api.StatusReason) *api.Status {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %d %s", code, reason)
	}
	status, ok := err.(*api.Status)
	if !ok {
		var wrapped *api.Status
		t.Fatalf("got %T %v (wraps a Status: %v), want a *api.Status %d %s", err, err, errors.As(err, &wrapped), code, reason)
	}
	if status.Code != code || status.Reason != reason {
		t.Fatalf("got Status %d %s %q, want %d %s", status.Code, status.Reason, status.Message, code, reason)
	}
	return status
}

// nextEvent reads one event, failing if the channel closes.
func nextEvent(t *testing.T, ctx context.Context, events <-chan storage.Event) storage.Event {
	t.Helper()
	select {
	case event, open := <-events:
		if !open {
			t.Fatal("watch channel closed early")
		}
		if event.Err != nil {
			t.Fatalf("watch failed: %v", event.Err)
		}
		return event
	case <-ctx.Done():
		t.Fatalf("no watch event: %v", ctx.Err())
	}
	return storage.Event{}
}

// eventSummary is what the tests compare of an event.
type eventSummary struct {
	Type   api.EventType
	Key    string
	RV     string
	Labels map[string]string
}

func summarize(event storage.Event) eventSummary {
	meta := event.Object.GetObjectMeta()
	return eventSummary{Type: event.Type, Key: meta.Namespace + "/" + meta.Name, RV: meta.ResourceVersion, Labels: meta.Labels}
}
