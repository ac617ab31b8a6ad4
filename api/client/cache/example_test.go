package cache_test

import (
	"context"
	"log/slog"
	"time"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/api/client/cache"
	"kubelite/api/client/workqueue"
)

// A controller in the shape the design asks for: the informer's handlers
// only enqueue keys; workers read the current state from the cache and
// reconcile; failures are retried with backoff; resyncs re-check everything.
func Example_controller() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := client.New(&client.Config{Server: "https://127.0.0.1:6443", Token: "…"})
	if err != nil {
		slog.Error("building client", "err", err)
		return
	}

	pods := cache.NewInformer(client.For[api.Pod](c, ""), client.ListOptions{}, 10*time.Minute)
	queue := workqueue.New()
	enqueue := func(p *api.Pod) { queue.Add(cache.Key(p)) }
	pods.AddHandler(cache.Handler[*api.Pod]{
		OnAdd:    enqueue,
		OnUpdate: func(_, p *api.Pod) { enqueue(p) },
		OnDelete: enqueue,
	})
	go pods.Run(ctx)
	if !cache.WaitForCacheSync(ctx, pods) {
		return
	}

	reconcile := func(ctx context.Context, key string) error {
		pod, ok := pods.GetByKey(key)
		if !ok {
			return nil // deleted: clean up whatever belonged to it
		}
		pod = api.DeepCopy(pod) // cached objects are shared: copy before changing
		_ = pod
		return nil
	}
	queue.Run(ctx, 2, reconcile)
}
