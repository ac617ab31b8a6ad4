package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kubelite/api/client"
	"kubelite/controller/events"
	"kubelite/controller/leader"
)

// Manager defaults.
const (
	// LeaderElectionName names the election (and the mirrored Lease
	// kube-system/kube-controller-manager), as Kubernetes names its own.
	LeaderElectionName = "kube-controller-manager"
	// DefaultResync is how often the shared caches re-deliver every object,
	// the backstop that catches anything a controller missed.
	DefaultResync = 10 * time.Minute
	// DefaultWorkers is the number of workers of a controller whose
	// descriptor names none.
	DefaultWorkers = 2
)

// The events package implements EventRecorder without importing this
// package (which imports it).
var _ EventRecorder = (*events.Recorder)(nil)

// ManagerConfig configures RunManager: what every controller needs, and
// the controllers to run.
type ManagerConfig struct {
	// Client reaches the API server.
	Client *client.Client
	// Etcd elects the leader among servers sharing the etcd cluster; nil
	// runs the controllers at once, without election (a single server).
	Etcd *clientv3.Client
	// Identity names this server in the election and in Events'
	// reportingInstance (e.g. "hostname_1a2b3c"); required with Etcd.
	Identity string
	// LeaderElectionTTL bounds how long a dead leader goes unnoticed
	// (default leader.DefaultTTL).
	LeaderElectionTTL time.Duration

	// Cluster settings the controllers read through ControllerContext.
	ServiceCIDR string // e.g. 10.96.0.0/12
	ClusterCIDR string // e.g. 10.244.0.0/16
	// APIServerAddress is the address this API server advertises;
	// APIServerAddresses lists the others of the cluster, if any. The
	// kubernetes Service's Endpoints list them all.
	APIServerAddress   string
	APIServerAddresses []string
	APIServerPort      int
	// LoadBalancerPool is a CIDR or a range a.b.c.d-a.b.c.e; empty leaves
	// LoadBalancer Services pending.
	LoadBalancerPool       string
	NodeMonitorGracePeriod time.Duration
	PodEvictionTimeout     time.Duration

	// Resync is the shared caches' resync period (DefaultResync).
	Resync time.Duration
	// Controllers are the controllers to run, each built anew whenever this
	// server becomes the leader.
	Controllers []ControllerDescriptor
	Logger      *slog.Logger
}

// Runner is a built controller.
type Runner interface {
	// Run reconciles with the given number of workers until ctx ends, and
	// returns when every goroutine it started has stopped.
	Run(ctx context.Context, workers int)
}

// ControllerDescriptor names a controller and says how to build it. The
// list of descriptors lives with the program that runs the controllers,
// because the controller packages import this one.
type ControllerDescriptor struct {
	// Name is the component named in the controller's Events
	// ("endpoint-controller", "default-scheduler"...).
	Name string
	// Workers is the number of workers (DefaultWorkers when 0).
	Workers int
	// New builds the controller; it registers its informer handlers here
	// or at the start of Run.
	New func(ControllerContext) (Runner, error)
}

// ControllerContext is what a controller is built from.
type ControllerContext struct {
	// Config is the manager's configuration (cluster settings); read only.
	Config    *ManagerConfig
	Client    *client.Client
	Informers *Informers
	// Recorder records Events in the controller's name.
	Recorder EventRecorder
	Logger   *slog.Logger
}

// RunManager runs the controllers while this server leads, until ctx ends.
// Each term builds fresh caches, an event recorder and every controller,
// and stops them all — waiting for each to return — when leadership is lost.
func RunManager(ctx context.Context, cfg ManagerConfig) error {
	if cfg.Client == nil {
		return errors.New("controller manager: no API client")
	}
	if cfg.Etcd != nil && cfg.Identity == "" {
		return errors.New("controller manager: leader election needs an identity")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Resync <= 0 {
		cfg.Resync = DefaultResync
	}
	logger := cfg.Logger.With("component", "controller-manager")
	if cfg.Etcd == nil {
		logger.Info("running controllers without leader election")
		return runControllers(ctx, &cfg, logger)
	}
	opts := []leader.Option{leader.WithLeaseMirror(cfg.Client), leader.WithLogger(cfg.Logger)}
	if cfg.LeaderElectionTTL > 0 {
		opts = append(opts, leader.WithTTL(cfg.LeaderElectionTTL))
	}
	leader.Run(ctx, cfg.Etcd, LeaderElectionName, cfg.Identity, func(leadCtx context.Context) {
		if err := runControllers(leadCtx, &cfg, logger); err != nil {
			logger.Error("cannot run the controllers", "err", err)
			<-leadCtx.Done() // keep leading, so that no other server flaps on the same error
		}
	}, opts...)
	return nil
}

// runControllers builds and runs one term's caches, recorder and
// controllers until ctx ends; it returns when all have stopped.
func runControllers(ctx context.Context, cfg *ManagerConfig, logger *slog.Logger) error {
	informers := NewInformers(cfg.Client, cfg.Resync)
	broadcaster := events.NewBroadcaster(cfg.Client, events.Config{Instance: cfg.Identity, Logger: cfg.Logger})
	type built struct {
		name    string
		runner  Runner
		workers int
	}
	var controllers []built
	for _, d := range cfg.Controllers {
		runner, err := d.New(ControllerContext{
			Config:    cfg,
			Client:    cfg.Client,
			Informers: informers,
			Recorder:  broadcaster.NewRecorder(d.Name),
			Logger:    cfg.Logger,
		})
		if err != nil {
			return fmt.Errorf("building %s: %w", d.Name, err)
		}
		workers := d.Workers
		if workers <= 0 {
			workers = DefaultWorkers
		}
		controllers = append(controllers, built{name: d.Name, runner: runner, workers: workers})
	}

	logger.Info("starting controllers", "count", len(controllers))
	var wg sync.WaitGroup
	wg.Go(func() { broadcaster.Run(ctx) })
	wg.Go(func() { informers.Run(ctx) })
	for _, c := range controllers {
		wg.Go(func() { c.runner.Run(ctx, c.workers) })
	}
	wg.Wait()
	logger.Info("stopped controllers")
	return nil
}
