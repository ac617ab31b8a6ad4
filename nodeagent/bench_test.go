package nodeagent_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/nodeagent/runtime"
)

// BenchmarkPodStartup measures Pod create → Running, as seen through a
// watch on the API server, for 1 and for 30 Pods on one node, and beside
// it, in the same run and on the same containerd, bare containerd create
// + start of the same image (the baseline: what `ctr run` costs). The
// difference is the orchestration: API writes and watches, the pod
// worker, CNI, the Pod's files, the status write.
//
//	sudo go test -run '^$' -bench PodStartup -benchtime 3x ./nodeagent/
func BenchmarkPodStartup(b *testing.B) {
	l := newLab(b)
	node := l.addNode("node1", "192.168.56.11", "10.244.1.0/24")
	for _, n := range []int{1, 30} {
		b.Run(fmt.Sprintf("pods=%d", n), func(b *testing.B) { benchmarkPods(b, l, node, n) })
	}

	bare, err := runtime.Connect(context.Background(), runtime.Config{
		Address:   filepath.Join(node.dataDir, "containerd", "containerd.sock"),
		Namespace: "bench-bare",
		StateDir:  b.TempDir(),
		Logger:    testLogger(b, "bare"),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer bare.Close()
	if _, err := bare.ImportDir(context.Background(), imagesDir); err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 30} {
		b.Run(fmt.Sprintf("bare-containerd=%d", n), func(b *testing.B) { benchmarkBare(b, bare, n) })
	}
}

// benchmarkPods creates n Pods at once and waits, through a watch, until
// all are Running; the cleanup between iterations is not timed.
func benchmarkPods(b *testing.B, l *lab, node *testNode, n int) {
	ctx := context.Background()
	pods := client.For[api.Pod](l.admin, "default")
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		list, err := pods.List(ctx, client.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		watchCtx, stopWatch := context.WithCancel(ctx)
		events, err := client.For[api.Pod](l.admin, "default").Watch(watchCtx, client.ListOptions{ResourceVersion: list.ResourceVersion})
		if err != nil {
			b.Fatal(err)
		}
		names := make([]string, n)
		for j := range names {
			names[j] = fmt.Sprintf("bench-%d-%d", i, j)
		}
		start := time.Now()
		b.StartTimer()
		for _, name := range names {
			pod := podSpec(name, api.Container{Name: "main", Image: "busybox", Command: []string{"sleep", "3600"}})
			pod.Namespace, pod.Spec.NodeName = "default", node.name
			if _, err := pods.Create(ctx, pod); err != nil {
				b.Fatal(err)
			}
		}
		running := map[string]bool{}
		for len(running) < n {
			select {
			case e, ok := <-events:
				if !ok {
					b.Fatal("watch ended")
				}
				if e.Object != nil && e.Object.Status.Phase == api.PodRunning {
					running[e.Object.Name] = true
				}
			case <-time.After(2 * time.Minute):
				b.Fatalf("%d of %d pods Running after 2 minutes", len(running), n)
			}
		}
		b.StopTimer()
		total += time.Since(start)
		stopWatch()
		for range events {
		}
		for _, name := range names {
			pods.Delete(ctx, name, client.DeleteOptions{GracePeriodSeconds: api.Ptr[int64](0)})
		}
		eventually(b, 2*time.Minute, "the benchmark's pods are cleaned up", func() error {
			containers, err := node.agent.Runtime().List(ctx)
			if err != nil {
				return err
			}
			if len(containers) > 0 {
				return fmt.Errorf("%d containers left", len(containers))
			}
			return nil
		})
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N*n), "ms/pod")
}

// benchmarkBare creates and starts n containers of the same image at once
// through the runtime alone: no API, no network, no pod worker.
func benchmarkBare(b *testing.B, rt *runtime.Runtime, n int) {
	ctx := context.Background()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		ids := make([]string, n)
		errs := make([]error, n)
		start := time.Now()
		var wg sync.WaitGroup
		for j := range n {
			wg.Go(func() {
				id, err := rt.CreateContainer(ctx, runtime.ContainerSpec{
					PodUID: "bare", PodName: "bare", PodNamespace: "default",
					Name: fmt.Sprintf("bare-%d-%d", i, j), Image: "busybox", Command: []string{"sleep", "3600"},
				})
				if err == nil {
					err = rt.Start(ctx, id)
				}
				ids[j], errs[j] = id, err
			})
		}
		wg.Wait()
		total += time.Since(start)
		b.StopTimer()
		for j, id := range ids {
			if errs[j] != nil {
				b.Fatal(errs[j])
			}
			if err := rt.Remove(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N*n), "ms/pod")
}
