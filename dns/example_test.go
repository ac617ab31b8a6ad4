package dns_test

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/api/client/cache"
	"kubelite/dns"
)

// How a node agent runs the cluster DNS server: caches of Services and
// Endpoints for all namespaces, the Store over them, the Server; and, for
// each Pod, a resolv.conf pointing at the kube-dns Service.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := client.New(&client.Config{Server: "https://127.0.0.1:6443", Token: "…"})
	if err != nil {
		slog.Error("building client", "err", err)
		return
	}

	services := cache.NewInformer(client.For[api.Service](c, ""), client.ListOptions{}, 0)
	endpoints := cache.NewInformer(client.For[api.Endpoints](c, ""), client.ListOptions{}, 0)
	store := dns.NewInformerStore(services, endpoints)
	go services.Run(ctx)
	go endpoints.Run(ctx)

	server, err := dns.NewServer(dns.Config{
		Zone:        "cluster.local.",
		TTL:         5 * time.Second,
		ListenAddrs: []string{"10.0.0.11:53"}, // the node's address, where kube-dns traffic is sent
		Registerer:  prometheus.NewRegistry(),
	}, store)
	if err != nil {
		slog.Error("cluster DNS", "err", err)
		return
	}
	go func() {
		if err := server.Run(ctx); err != nil {
			slog.Error("cluster DNS stopped", "err", err)
		}
	}()

	// For a Pod in namespace "default":
	_ = os.WriteFile("/run/pod/resolv.conf", dns.ResolvConf("10.96.0.10", "default", "cluster.local"), 0o644)
}
