package podworker

import (
	"context"
	"net"
	"time"

	"kubelite/api"
	"kubelite/nodeagent/network"
	"kubelite/nodeagent/runtime"
)

// Runtime is what the pod workers need of the container runtime.
// *runtime.Runtime implements it; the tests use a fake.
type Runtime interface {
	EnsureImage(ctx context.Context, ref string, policy runtime.PullPolicy) (runtime.Image, error)
	CreateContainer(ctx context.Context, spec runtime.ContainerSpec) (string, error)
	Start(ctx context.Context, id string) error
	Wait(ctx context.Context, id string) (runtime.ContainerStatus, error)
	Stop(ctx context.Context, id string, grace time.Duration) error
	Remove(ctx context.Context, id string) error
	Status(ctx context.Context, id string) (runtime.ContainerStatus, error)
	List(ctx context.Context) ([]runtime.Container, error)
	Exec(ctx context.Context, id string, cfg runtime.ExecConfig) (int, error)
}

var _ Runtime = (*runtime.Runtime)(nil)

// Network is what the pod workers need of the node's pod network.
// *network.Network implements it; the tests use a fake.
type Network interface {
	// SetupPod returns the Pod's network, making it when it has none.
	SetupPod(ctx context.Context, pod network.Pod) (network.PodNetwork, error)
	// TeardownPod removes the Pod's network; it succeeds when there is none.
	TeardownPod(ctx context.Context, uid string) error
	// Pods lists the UIDs of the Pods that have a network here.
	Pods() ([]string, error)
}

var _ Network = (*network.Network)(nil)

// PodAPI is how the pod workers report to the API server.
type PodAPI interface {
	// UpdateStatus writes pod.Status through the status subresource and
	// returns the stored Pod.
	UpdateStatus(ctx context.Context, pod *api.Pod) (*api.Pod, error)
	// ConfirmDeletion deletes the Pod with gracePeriodSeconds=0: the agent's
	// word that none of its containers runs any more. A Pod already gone,
	// or replaced by another of the same name, counts as deleted.
	ConfirmDeletion(ctx context.Context, pod *api.Pod) error
}

// Recorder records Events about Pods (Pulled, Created, Started, Killing,
// BackOff, Unhealthy, ...). It must not block.
type Recorder interface {
	Event(obj api.Object, eventType, reason, message string)
}

// Dialer opens connections to pods, for HTTP and TCP probes.
type Dialer func(ctx context.Context, network, address string) (net.Conn, error)
