package allocator

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kubelite/api"
	"kubelite/apiserver/etcd/etcdtest"
)

// fakeClock is a clock that moves only when the test says so.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testEnv is one embedded etcd and a hook over it with a fake clock.
type testEnv struct {
	cli   *clientv3.Client
	hook  *ServiceHook
	clock *fakeClock
}

func newTestEnv(t *testing.T, cfg Config) *testEnv {
	t.Helper()
	cli := etcdtest.Start(t)
	env := &testEnv{cli: cli, clock: newFakeClock()}
	env.hook = env.newHook(t, cfg)
	return env
}

// newHook is another hook over the same etcd: another API server.
func (e *testEnv) newHook(t *testing.T, cfg Config) *ServiceHook {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	h, err := newServiceHook(e.cli, cfg, e.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// keys returns every allocation key under /registry/ranges/ as
// "serviceips/10.96.0.5" → owner.
func (e *testEnv) keys(t *testing.T) map[string]string {
	t.Helper()
	resp, err := e.cli.Get(ctxT(t), rangesPrefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, kv := range resp.Kvs {
		var rec record
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			t.Fatalf("key %s holds %q, not an allocation record: %v", kv.Key, kv.Value, err)
		}
		keys[strings.TrimPrefix(string(kv.Key), rangesPrefix)] = rec.Owner
	}
	return keys
}

// create runs the create path of the API server around the hook: the
// service as stored, or the refusal.
func (e *testEnv) create(t *testing.T, svc *api.Service) (*api.Service, error) {
	t.Helper()
	_, err := e.hook.BeforeCreate(ctxT(t), svc)
	return svc, err
}

// mustCreate is create that must succeed.
func (e *testEnv) mustCreate(t *testing.T, svc *api.Service) *api.Service {
	t.Helper()
	created, err := e.create(t, svc)
	if err != nil {
		t.Fatalf("create %s: %v", svc.Name, err)
	}
	return created
}

// update runs the update path: BeforeUpdate on a copy of old changed by
// edit, then (when it succeeded) AfterUpdate, as after a stored update.
func (e *testEnv) update(t *testing.T, old *api.Service, edit func(*api.Service)) (*api.Service, error) {
	t.Helper()
	next := api.DeepCopy(old)
	edit(next)
	if _, err := e.hook.BeforeUpdate(ctxT(t), next, old); err != nil {
		return nil, err
	}
	e.hook.AfterUpdate(ctxT(t), next, old)
	return next, nil
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func service(name, typ string, ports ...api.ServicePort) *api.Service {
	return &api.Service{
		TypeMeta:   api.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: api.ObjectMeta{Namespace: "default", Name: name, UID: "uid-" + name},
		Spec: api.ServiceSpec{
			Type:     typ,
			Selector: map[string]string{"run": name},
			Ports:    ports,
		},
	}
}

func port(name string, number, nodePort int32) api.ServicePort {
	return api.ServicePort{Name: name, Port: number, Protocol: api.ProtocolTCP, TargetPort: api.FromInt(number), NodePort: nodePort}
}

// wantInvalid checks that err is Kubernetes' Invalid error for Service name
// with exactly the given field error.
func wantInvalid(t *testing.T, err error, name, fieldError string) {
	t.Helper()
	want := `Service "` + name + `" is invalid: ` + fieldError
	var st *api.Status
	if !errors.As(err, &st) {
		t.Fatalf("want Invalid error %q, got %v", want, err)
	}
	if st.Reason != api.ReasonInvalid || st.Code != 422 || st.Message != want {
		t.Fatalf("want Invalid (422) %q,\n got %s (%d) %q", want, st.Reason, st.Code, st.Message)
	}
}

// wantInternal checks that err is a 500 with the given message.
func wantInternal(t *testing.T, err error, message string) {
	t.Helper()
	var st *api.Status
	if !errors.As(err, &st) || st.Reason != api.ReasonInternalError || st.Message != "Internal error occurred: "+message {
		t.Fatalf("want InternalError %q, got %v", message, err)
	}
}

func nodePorts(svc *api.Service) []int32 {
	var out []int32
	for _, p := range svc.Spec.Ports {
		out = append(out, p.NodePort)
	}
	return out
}
