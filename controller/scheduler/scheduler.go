// Package scheduler assigns Pods to nodes: each Pod with no spec.nodeName
// that names this scheduler is bound, through the pods/{name}/binding
// subresource, to a Ready, schedulable node that satisfies its
// nodeSelector and tolerates its taints, preferring nodes with fewer
// replicas of the same owner and then fewer Pods. A Pod that fits nowhere
// stays Pending with the condition PodScheduled=False (Unschedulable) and a
// FailedScheduling event, and is tried again when the nodes change.
//
// As Kubernetes' scheduler does, it "assumes" a Pod on its node as soon as
// it decides, so that the next decision counts it even before the Pod cache
// shows the binding.
package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sync"

	"kubelite/api"
	"kubelite/api/client"
	"kubelite/api/client/cache"
	"kubelite/api/client/workqueue"
	"kubelite/controller"
)

// Event and condition reasons, as Kubernetes' scheduler records them.
const (
	ReasonScheduled        = "Scheduled"
	ReasonFailedScheduling = "FailedScheduling"
	ReasonUnschedulable    = "Unschedulable"
)

// Config tunes the scheduler; the zero value is ready to use.
type Config struct {
	// SchedulerName is the spec.schedulerName of the Pods this scheduler
	// places (default "default-scheduler"; an empty one counts as the default).
	SchedulerName string
	// Logger receives the scheduler's logs (default slog.Default()).
	Logger *slog.Logger
}

// Controller is the scheduler.
type Controller struct {
	client   *client.Client
	pods     *cache.Informer[api.Pod, *api.Pod]
	nodes    *cache.Informer[api.Node, *api.Node]
	recorder controller.EventRecorder
	queue    *workqueue.Queue
	name     string
	logger   *slog.Logger

	// decideMu makes deciding and assuming one step, so that concurrent
	// workers each see the others' choices.
	decideMu sync.Mutex
	// assumed maps the keys of Pods being bound, or bound but not yet seen
	// bound in the cache, to their node.
	assumedMu sync.Mutex
	assumed   map[string]string
}

// New returns a scheduler that reads from inf and binds through c.
func New(c *client.Client, inf *controller.Informers, rec controller.EventRecorder, cfg Config) *Controller {
	logger := controller.Logger(cfg.Logger, "scheduler")
	name := cfg.SchedulerName
	if name == "" {
		name = api.DefaultSchedulerName
	}
	return &Controller{
		client:   c,
		pods:     inf.Pods,
		nodes:    inf.Nodes,
		recorder: rec,
		queue:    workqueue.New(workqueue.WithLogger(logger)),
		name:     name,
		logger:   logger,
		assumed:  make(map[string]string),
	}
}

// Run registers the informer handlers, waits for the caches and schedules
// Pods with the given number of workers until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	c.pods.AddHandler(cache.Handler[*api.Pod]{
		OnAdd:    c.onPod,
		OnUpdate: func(_, pod *api.Pod) { c.onPod(pod) },
		OnDelete: func(pod *api.Pod) { c.forgetAssumed(cache.Key(pod)) },
	})
	c.nodes.AddHandler(cache.Handler[*api.Node]{
		OnAdd: func(*api.Node) { c.enqueueUnscheduled() },
		OnUpdate: func(oldNode, node *api.Node) {
			if schedulingChanged(oldNode, node) {
				c.enqueueUnscheduled()
			}
		},
		OnDelete: func(*api.Node) { c.enqueueUnscheduled() },
	})
	if !cache.WaitForCacheSync(ctx, c.pods, c.nodes) {
		return
	}
	c.enqueueUnscheduled() // handlers registered after the first list missed its adds
	c.logger.Info("started", "workers", workers, "schedulerName", c.name)
	c.queue.Run(ctx, workers, c.reconcile)
	c.logger.Info("stopped")
}

func (c *Controller) onPod(pod *api.Pod) {
	if pod.Spec.NodeName != "" {
		c.forgetAssumed(cache.Key(pod)) // the cache has caught up with the binding
		return
	}
	if c.responsibleFor(pod) {
		c.queue.Add(cache.Key(pod))
	}
}

// enqueueUnscheduled queues every Pod waiting for this scheduler: a node
// change may let one of them fit.
func (c *Controller) enqueueUnscheduled() {
	for _, pod := range c.pods.ListSelector("", c.responsibleFor) {
		c.queue.Add(cache.Key(pod))
	}
}

// responsibleFor reports whether pod waits for this scheduler.
func (c *Controller) responsibleFor(pod *api.Pod) bool {
	name := pod.Spec.SchedulerName
	if name == "" {
		name = api.DefaultSchedulerName
	}
	return name == c.name && pod.Spec.NodeName == "" && occupiesNode(pod)
}

// schedulingChanged reports whether a node update may change which Pods
// fit on it; heartbeats alone do not.
func schedulingChanged(oldNode, node *api.Node) bool {
	return oldNode.IsReady() != node.IsReady() ||
		oldNode.Spec.Unschedulable != node.Spec.Unschedulable ||
		oldNode.Spec.PodCIDR != node.Spec.PodCIDR ||
		!reflect.DeepEqual(oldNode.Spec.PodCIDRs, node.Spec.PodCIDRs) ||
		!reflect.DeepEqual(oldNode.Spec.Taints, node.Spec.Taints) ||
		!reflect.DeepEqual(oldNode.Labels, node.Labels)
}

// reconcile schedules one Pod.
func (c *Controller) reconcile(ctx context.Context, key string) error {
	pod, ok := c.pods.GetByKey(key)
	if !ok || !c.responsibleFor(pod) {
		return nil
	}
	if _, busy := c.assumedNode(key); busy {
		return nil // bound already; the cache has not caught up
	}
	nodeName, fitErr := c.decide(pod)
	if fitErr != nil {
		return c.recordUnschedulable(ctx, pod, fitErr)
	}
	if err := c.bind(ctx, pod, nodeName); err != nil {
		c.forgetAssumed(key)
		if api.IsConflict(err) || api.IsNotFound(err) {
			return nil // bound by someone else, being deleted, or gone
		}
		return err
	}
	c.logger.Info("scheduled pod", "pod", key, "node", nodeName)
	c.recorder.Event(pod, api.EventNormal, ReasonScheduled,
		fmt.Sprintf("Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, nodeName))
	return nil
}

// decide chooses pod's node from the caches and the assumed Pods, and
// assumes pod there.
func (c *Controller) decide(pod *api.Pod) (string, *FitError) {
	c.decideMu.Lock()
	defer c.decideMu.Unlock()
	nodeName, fitErr := selectNode(pod, c.nodes.List(""), c.placedPods())
	if fitErr == nil {
		c.assumedMu.Lock()
		c.assumed[cache.Key(pod)] = nodeName
		c.assumedMu.Unlock()
	}
	return nodeName, fitErr
}

// placedPods are the Pods on nodes: those the cache shows bound, and the
// assumed ones it does not show bound yet.
func (c *Controller) placedPods() []*api.Pod {
	placed := c.pods.ListSelector("", func(p *api.Pod) bool { return p.Spec.NodeName != "" })
	c.assumedMu.Lock()
	defer c.assumedMu.Unlock()
	for key, nodeName := range c.assumed {
		cached, ok := c.pods.GetByKey(key)
		if !ok || cached.Spec.NodeName != "" {
			continue
		}
		assumed := *cached // shallow: only spec.nodeName differs, nothing is mutated
		assumed.Spec.NodeName = nodeName
		placed = append(placed, &assumed)
	}
	return placed
}

func (c *Controller) assumedNode(key string) (string, bool) {
	c.assumedMu.Lock()
	defer c.assumedMu.Unlock()
	nodeName, ok := c.assumed[key]
	return nodeName, ok
}

func (c *Controller) forgetAssumed(key string) {
	c.assumedMu.Lock()
	defer c.assumedMu.Unlock()
	delete(c.assumed, key)
}

// bind posts the Binding of pod to nodeName.
func (c *Controller) bind(ctx context.Context, pod *api.Pod, nodeName string) error {
	binding := api.Binding{
		TypeMeta:   api.TypeMeta{APIVersion: "v1", Kind: "Binding"},
		ObjectMeta: api.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     api.ObjectReference{Kind: "Node", Name: nodeName},
	}
	body, err := json.Marshal(binding)
	if err != nil {
		return fmt.Errorf("encoding binding of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	pods := c.client.Resource(api.ResourceFor(pod), pod.Namespace)
	if _, err := pods.Subresource(ctx, http.MethodPost, pod.Name, "binding", nil, body); err != nil {
		return fmt.Errorf("binding pod %s/%s to node %s: %w", pod.Namespace, pod.Name, nodeName, err)
	}
	return nil
}

// recordUnschedulable tells the user why pod waits: the PodScheduled=False
// condition and a FailedScheduling event. The Pod is tried again when the
// nodes change.
func (c *Controller) recordUnschedulable(ctx context.Context, cached *api.Pod, fitErr *FitError) error {
	message := fitErr.Error()
	pod := api.DeepCopy(cached)
	if !setUnschedulable(&pod.Status, message, api.Now()) {
		return nil // already said, and the echo of saying it must not repeat it
	}
	c.logger.Info("pod does not fit on any node", "pod", cache.Key(cached), "reason", message)
	c.recorder.Event(cached, api.EventWarning, ReasonFailedScheduling, message)
	_, err := client.For[api.Pod](c.client, pod.Namespace).UpdateStatus(ctx, pod)
	if api.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("recording that pod %s/%s is unschedulable: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// setUnschedulable sets the PodScheduled=False condition; it reports
// whether anything changed.
func setUnschedulable(status *api.PodStatus, message string, now api.Time) bool {
	want := api.PodCondition{
		Type:               api.PodScheduled,
		Status:             api.ConditionFalse,
		Reason:             ReasonUnschedulable,
		Message:            message,
		LastTransitionTime: now,
	}
	for i := range status.Conditions {
		current := &status.Conditions[i]
		if current.Type != api.PodScheduled {
			continue
		}
		if current.Status == want.Status && current.Reason == want.Reason && current.Message == want.Message {
			return false
		}
		if current.Status == want.Status {
			want.LastTransitionTime = current.LastTransitionTime
		}
		*current = want
		return true
	}
	status.Conditions = append(status.Conditions, want)
	return true
}
