package storage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
)

// The Store benchmarks and the raw etcd ones write the same payload (a
// typical Pod's JSON) to the same embedded etcd, so the difference is the
// cost of the storage layer itself: encoding, decoding, the transaction.

func BenchmarkCreate(b *testing.B) {
	env := newTestEnv(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if _, err := env.pods.Create(ctx, newPod("default", fmt.Sprintf("web-%d", i), map[string]string{"run": "httpd"})); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkRawPut(b *testing.B) {
	env := newTestEnv(b)
	ctx := context.Background()
	payload := podJSON(b)
	i := 0
	for b.Loop() {
		if _, err := env.client.Put(ctx, fmt.Sprintf("/registry/pods/default/web-%d", i), payload); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkGet(b *testing.B) {
	env := newTestEnv(b)
	ctx := context.Background()
	mustCreate(b, ctx, env.pods, newPod("default", "web", map[string]string{"run": "httpd"}))
	for b.Loop() {
		if _, err := env.pods.Get(ctx, "default", "web"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawGet(b *testing.B) {
	env := newTestEnv(b)
	ctx := context.Background()
	if _, err := env.client.Put(ctx, "/registry/pods/default/web", podJSON(b)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		resp, err := env.client.Get(ctx, "/registry/pods/default/web")
		if err != nil || len(resp.Kvs) != 1 {
			b.Fatal(resp, err)
		}
	}
}

// podJSON is the value the Store writes for newPod.
func podJSON(b *testing.B) string {
	pod := newPod("default", "web", map[string]string{"run": "httpd"})
	pod.APIVersion, pod.Kind = "v1", "Pod"
	data, err := json.Marshal(pod)
	if err != nil {
		b.Fatal(err)
	}
	return string(data)
}
