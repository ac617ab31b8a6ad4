// Package podproxytest runs, for tests of logs, exec and attach through
// the whole chain, a real API server (apiservertest) with the pod proxy in
// front of one node agent API (kubeletservertest, with its fake runtime of
// local processes) registered as a Node.
package podproxytest

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/apiserver/apiservertest"
	"kubelite/apiserver/auth"
	"kubelite/apiserver/etcd/etcdtest"
	"kubelite/apiserver/podproxy"
	"kubelite/apiserver/storage"
	"kubelite/nodeagent/kubeletserver/kubeletservertest"
)

// NodeName is the name of the cluster's one node.
const NodeName = "node-1"

// Cluster is an API server, its pod proxy and one node agent.
type Cluster struct {
	API   *apiservertest.Server
	Agent *kubeletservertest.Agent
}

// Start starts a cluster that stops at the end of the test.
func Start(t testing.TB) *Cluster {
	t.Helper()
	etcd := etcdtest.Start(t)
	// The node token here is the agent's: in production both sides are
	// given the cluster's node token.
	agent := kubeletservertest.Start(t, "")
	proxy, err := podproxy.New(podproxy.Config{
		// The same etcd and prefix the test API server stores under.
		Objects:   podproxy.StoreObjects(storage.New(etcd, "/registry")),
		NodeToken: agent.Token,
		Authorize: auth.DefaultPolicy().AuthorizeRequest,
		Logger:    slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	server := apiservertest.Start(t, apiservertest.Options{Etcd: etcd, Proxies: proxy.Handlers()})
	if _, err := client.For[api.Node](server.Admin, "").Create(context.Background(), agent.Node(NodeName)); err != nil {
		t.Fatal(err)
	}
	return &Cluster{API: server, Agent: agent}
}

// RunningPod stores pod as running on the node, with a fake container for
// each of its containers (exec works in them; none is started), and
// returns the containers by name.
func (c *Cluster) RunningPod(t testing.TB, pod *api.Pod) map[string]*kubeletservertest.Container {
	t.Helper()
	ctx := context.Background()
	if pod.Namespace == "" {
		pod.Namespace = api.NamespaceDefault
	}
	pod.Spec.NodeName = NodeName
	pods := client.For[api.Pod](c.API.Admin, pod.Namespace)
	created, err := pods.Create(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	containers := map[string]*kubeletservertest.Container{}
	for _, spec := range pod.Spec.Containers {
		fake, err := c.Agent.Runtime.AddContainer(pod.Namespace, pod.Name, spec.Name, kubeletservertest.ContainerOptions{StdinOnce: spec.StdinOnce})
		if err != nil {
			t.Fatal(err)
		}
		containers[spec.Name] = fake
	}
	created.Status = runningStatus(created)
	if _, err := pods.UpdateStatus(ctx, created); err != nil {
		t.Fatal(err)
	}
	return containers
}

func runningStatus(pod *api.Pod) api.PodStatus {
	status := api.PodStatus{
		Phase:     api.PodRunning,
		HostIP:    "127.0.0.1",
		StartTime: api.Ptr(api.Now()),
		Conditions: []api.PodCondition{
			{Type: api.PodScheduled, Status: api.ConditionTrue},
			{Type: api.PodReady, Status: api.ConditionTrue},
		},
	}
	for _, spec := range pod.Spec.Containers {
		status.ContainerStatuses = append(status.ContainerStatuses, api.ContainerStatus{
			Name: spec.Name, Image: spec.Image, Ready: true, Started: api.Ptr(true),
			State: api.ContainerState{Running: &api.ContainerStateRunning{StartedAt: api.Now()}},
		})
	}
	return status
}

// ActAsAgent plays the node agent for the Pods created from now on, until
// the test ends, as far as `kubectl run` needs: it binds each new Pod to
// the node, starts its first container as a local process — its command
// and args, else sh — on a terminal if the spec says tty, and reports it
// Running and Ready; it reports the container's exit; and when the Pod is
// deleted it kills the process and confirms the deletion.
func (c *Cluster) ActAsAgent(t testing.TB) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	events, err := client.For[api.Pod](c.API.Admin, "").Watch(ctx, client.ListOptions{})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	a := &agent{t: t, cluster: c, ctx: ctx, started: map[string]bool{}}
	a.workers.Add(1)
	go func() {
		defer a.workers.Done()
		for ev := range events {
			if ev.Type == api.Error {
				if ctx.Err() == nil {
					t.Errorf("fake agent: the pod watch ended: %v", ev.Err)
				}
				return
			}
			if ev.Type == api.Added || ev.Type == api.Modified {
				a.sync(ev.Object)
			}
		}
	}()
	t.Cleanup(func() {
		stop()
		a.workers.Wait()
	})
}

// agent is ActAsAgent's state; its goroutines end with ctx.
type agent struct {
	t       testing.TB
	cluster *Cluster
	ctx     context.Context
	workers sync.WaitGroup
	started map[string]bool // namespace/name of the Pods started; only the watch goroutine uses it
}

func (a *agent) sync(pod *api.Pod) {
	key := pod.Namespace + "/" + pod.Name
	switch {
	case pod.DeletionTimestamp != nil:
		a.cluster.Agent.Runtime.RemovePod(pod.Namespace, pod.Name)
		err := client.For[api.Pod](a.cluster.API.Admin, pod.Namespace).Delete(a.ctx, pod.Name, client.DeleteOptions{GracePeriodSeconds: api.Ptr(int64(0))})
		if err != nil && !api.IsNotFound(err) && a.ctx.Err() == nil {
			a.t.Errorf("fake agent: confirming the deletion of %s: %v", key, err)
		}
	case !a.started[key]:
		a.started[key] = true
		if err := a.start(pod); err != nil && a.ctx.Err() == nil {
			a.t.Errorf("fake agent: starting %s: %v", key, err)
		}
	}
}

// start binds the Pod, runs its first container and reports it running.
func (a *agent) start(pod *api.Pod) error {
	admin := a.cluster.API.Admin
	binding, _ := json.Marshal(api.Binding{
		TypeMeta:   api.TypeMeta{APIVersion: "v1", Kind: "Binding"},
		ObjectMeta: api.ObjectMeta{Name: pod.Name},
		Target:     api.ObjectReference{Kind: "Node", Name: NodeName},
	})
	if pod.Spec.NodeName == "" {
		if _, err := admin.Resource(api.ResourceFor(&api.Pod{}), pod.Namespace).Subresource(a.ctx, http.MethodPost, pod.Name, "binding", nil, binding); err != nil {
			return err
		}
	}
	spec := pod.Spec.Containers[0]
	fake, err := a.cluster.Agent.Runtime.AddContainer(pod.Namespace, pod.Name, spec.Name, kubeletservertest.ContainerOptions{StdinOnce: spec.StdinOnce})
	if err != nil {
		return err
	}
	argv := append(append([]string(nil), spec.Command...), spec.Args...)
	if len(argv) == 0 {
		argv = []string{"sh"} // busybox's default command
	}
	if err := fake.Start(argv, kubeletservertest.StartOptions{TTY: spec.TTY, Stdin: spec.Stdin}); err != nil {
		return err
	}
	if err := a.updateStatus(pod, runningStatus); err != nil {
		return err
	}
	a.workers.Add(1)
	go func() {
		defer a.workers.Done()
		select {
		case <-a.ctx.Done():
		case <-fake.Exited():
			err := a.updateStatus(pod, func(pod *api.Pod) api.PodStatus { return exitedStatus(pod, fake.ExitCode()) })
			if err != nil && !api.IsNotFound(err) && a.ctx.Err() == nil {
				a.t.Errorf("fake agent: reporting the exit of %s/%s: %v", pod.Namespace, pod.Name, err)
			}
		}
	}()
	return nil
}

// exitedStatus is the status of a Pod whose container exited with code.
func exitedStatus(pod *api.Pod, code int) api.PodStatus {
	status := pod.Status
	phase, reason := api.PodSucceeded, "Completed"
	if code != 0 {
		phase, reason = api.PodFailed, "Error"
	}
	if pod.Spec.RestartPolicy == api.RestartNever || (pod.Spec.RestartPolicy == api.RestartOnFailure && code == 0) {
		status.Phase = phase
	}
	status.Conditions = []api.PodCondition{{Type: api.PodReady, Status: api.ConditionFalse}}
	status.ContainerStatuses = []api.ContainerStatus{{
		Name: pod.Spec.Containers[0].Name, Image: pod.Spec.Containers[0].Image,
		State: api.ContainerState{Terminated: &api.ContainerStateTerminated{ExitCode: int32(code), Reason: reason}},
	}}
	return status
}

// updateStatus sets the status that next computes from the stored Pod,
// retrying on conflicts.
func (a *agent) updateStatus(pod *api.Pod, next func(*api.Pod) api.PodStatus) error {
	pods := client.For[api.Pod](a.cluster.API.Admin, pod.Namespace)
	for {
		current, err := pods.Get(a.ctx, pod.Name)
		if err != nil {
			return err
		}
		current.Status = next(current)
		_, err = pods.UpdateStatus(a.ctx, current)
		if !api.IsConflict(err) {
			return err
		}
	}
}
