package runtime

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/oci"
)

// BenchmarkCreateStart measures create+start of busybox `true` through the
// Runtime (FIFOs, CRI log file, labels, exit watcher) beside the same work
// done with the bare containerd client (NewContainer + NewTask + Start, no
// IO), in the same run against the same containerd. Waiting for the exit
// and removing the container are not timed.
//
//	sudo go test -run '^$' -bench CreateStart -benchtime 20x ./nodeagent/runtime/
func BenchmarkCreateStart(b *testing.B) {
	r := newRuntime(b)
	ctx := r.withNamespace(context.Background())
	logDir := b.TempDir()

	b.Run("runtime", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			id, err := r.CreateContainer(ctx, ContainerSpec{PodName: "bench", Name: "true", Image: "busybox",
				Command: []string{"true"}, LogPath: filepath.Join(logDir, fmt.Sprintf("%d.log", i))})
			if err != nil {
				b.Fatal(err)
			}
			if err := r.Start(ctx, id); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if st, err := r.Wait(ctx, id); err != nil || st.ExitCode != 0 {
				b.Fatalf("wait: %+v, %v", st, err)
			}
			if err := r.Remove(ctx, id); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})

	b.Run("containerd-client", func(b *testing.B) {
		img, err := r.client.GetImage(ctx, "docker.io/library/busybox:latest")
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			id := newID()
			container, err := r.client.NewContainer(ctx, id,
				containerd.WithImage(img),
				containerd.WithNewSnapshot(id, img),
				containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("true")))
			if err != nil {
				b.Fatal(err)
			}
			task, err := container.NewTask(ctx, cio.NullIO)
			if err != nil {
				b.Fatal(err)
			}
			exits, err := task.Wait(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if err := task.Start(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			<-exits
			if _, err := task.Delete(ctx); err != nil {
				b.Fatal(err)
			}
			if err := container.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}
