package etcd_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kubelite/apiserver/etcd"
	"kubelite/apiserver/etcd/etcdtest"
)

// testTimeout only guards against a hung test; no test measures time.
const testTimeout = 60 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestEmbeddedServesAndClosesTwice(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	server := etcdtest.StartEmbedded(t, t.TempDir())

	if endpoints := server.Endpoints(); len(endpoints) != 1 || !strings.HasPrefix(endpoints[0], "http://127.0.0.1:") {
		t.Errorf("endpoints %v, want one loopback URL", endpoints)
	}
	client := server.Client()
	if _, err := client.Put(ctx, "/registry/hello", "world"); err != nil {
		t.Fatalf("put: %v", err)
	}
	resp, err := client.Get(ctx, "/registry/hello")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "world" {
		t.Fatalf("get: %v %v", resp, err)
	}
	// A watch left open must not hold up Close.
	watchCtx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	client.Watch(watchCtx, "/registry/", clientv3.WithPrefix())

	server.Close()
	server.Close()
	if _, err := client.Get(ctx, "/registry/hello"); err == nil {
		t.Error("the shared client still works after Close")
	}
	select {
	case err := <-server.Failed():
		t.Errorf("a normal shutdown reported a failure: %v", err)
	default:
	}
}

func TestStartEmbeddedBadConfig(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)

	_, err := etcd.StartEmbedded(ctx, etcd.EmbeddedConfig{ClientURL: etcdtest.FreeLoopbackURL(t), PeerURL: etcdtest.FreeLoopbackURL(t)})
	if err == nil || !strings.Contains(err.Error(), "DataDir is required") {
		t.Errorf("without a data dir: %v, want DataDir is required", err)
	}

	// A port in use is reported as such.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, err = etcd.StartEmbedded(ctx, etcd.EmbeddedConfig{
		DataDir:   t.TempDir(),
		ClientURL: "http://" + busy.Addr().String(),
		PeerURL:   etcdtest.FreeLoopbackURL(t),
	})
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("client port in use: %v, want EADDRINUSE", err)
	}
}

func TestConnectToExternalEtcd(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	endpoints := etcdtest.StartExternal(t)

	client, err := etcd.Connect(ctx, endpoints)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer client.Close()
	if _, err := client.Put(ctx, "/registry/hello", "world"); err != nil {
		t.Fatalf("put: %v", err)
	}
	resp, err := client.Get(ctx, "/registry/hello")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "world" {
		t.Fatalf("get: %v %v", resp, err)
	}
	if del, err := client.Delete(ctx, "/registry/hello"); err != nil || del.Deleted != 1 {
		t.Fatalf("delete: %v %v", del, err)
	}

	// A dead endpoint beside a live one does not stop Connect.
	dead := etcdtest.FreeLoopbackURL(t)
	both, err := etcd.Connect(ctx, []string{dead, endpoints[0]})
	if err != nil {
		t.Fatalf("connect with one dead endpoint: %v", err)
	}
	both.Close()
}

func TestConnectFailsClearly(t *testing.T) {
	t.Parallel()
	if _, err := etcd.Connect(testContext(t), nil); err == nil {
		t.Error("connect without endpoints succeeded")
	}

	dead := etcdtest.FreeLoopbackURL(t) // nothing listens there
	ctx, cancel := context.WithTimeout(testContext(t), 500*time.Millisecond)
	defer cancel()
	_, err := etcd.Connect(ctx, []string{dead})
	if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(dead, "http://")) {
		t.Errorf("connect to a dead endpoint: %v, want an error naming it", err)
	}
}
