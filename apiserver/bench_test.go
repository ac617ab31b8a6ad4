package apiserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/apiserver/apiservertest"
)

// The API server's cost over raw etcd: the same Pod payload created and read
// through the whole REST path (TLS, token auth, decoding, defaulting,
// validation, storage) and put/got directly on the same embedded etcd.
// `make bench` runs these; the README reports the ratios.

func benchPod(i int) *api.Pod {
	p := newPod(fmt.Sprintf("bench-%d", i), map[string]string{"app": "bench"})
	p.Spec.Containers[0].Ports = []api.ContainerPort{{ContainerPort: 80}}
	return p
}

func BenchmarkAPICreatePod(b *testing.B) {
	s := apiservertest.Start(b, apiservertest.Options{})
	pods := client.For[api.Pod](s.Admin, "default")
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := pods.Create(ctx, benchPod(i)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAPIGetPod(b *testing.B) {
	s := apiservertest.Start(b, apiservertest.Options{})
	pods := client.For[api.Pod](s.Admin, "default")
	ctx := context.Background()
	if _, err := pods.Create(ctx, benchPod(0)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := pods.Get(ctx, "bench-0"); err != nil {
			b.Fatal(err)
		}
	}
}

// rawPayload is what the API server stores for benchPod: the baseline puts the same bytes.
func rawPayload(b *testing.B, i int) string {
	p := benchPod(i)
	api.Default(p)
	p.APIVersion, p.Kind = "v1", "Pod"
	body, err := json.Marshal(p)
	if err != nil {
		b.Fatal(err)
	}
	return string(body)
}

func BenchmarkRawEtcdPut(b *testing.B) {
	s := apiservertest.Start(b, apiservertest.Options{})
	ctx := context.Background()
	payload := rawPayload(b, 0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Etcd.Put(ctx, fmt.Sprintf("/bench/pods/default/bench-%d", i), payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawEtcdGet(b *testing.B) {
	s := apiservertest.Start(b, apiservertest.Options{})
	ctx := context.Background()
	if _, err := s.Etcd.Put(ctx, "/bench/pods/default/bench-0", rawPayload(b, 0)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := s.Etcd.Get(ctx, "/bench/pods/default/bench-0")
		if err != nil || len(resp.Kvs) != 1 {
			b.Fatal(err)
		}
	}
}
