package nodeagent

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"time"

	"kubelite/api"
	"kubelite/api/client"
)

// Well-known node labels, as the kubelet sets them.
const (
	LabelHostname = "kubernetes.io/hostname"
	LabelOS       = "kubernetes.io/os"
	LabelArch     = "kubernetes.io/arch"
)

// nodeFacts is what a Node's metadata and status are computed from.
type nodeFacts struct {
	name        string
	labels      map[string]string // extra labels (Config.NodeLabels)
	annotations map[string]string // Config.NodeAnnotations
	ip          string
	machine     machine
	maxPods     int
	kubeletPort int32
	notReady    []string // parts that are not up; none when ready
	now         time.Time
}

// nodeLabels are the labels the agent puts on its Node.
func nodeLabels(f nodeFacts) map[string]string {
	labels := maps.Clone(f.labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelHostname] = f.name
	labels[LabelOS] = "linux"
	labels[LabelArch] = f.machine.architecture
	return labels
}

// buildNodeStatus is the Node's status as the agent reports it. Times of
// conditions whose status did not change carry over from old.
func buildNodeStatus(f nodeFacts, old api.NodeStatus) api.NodeStatus {
	m := f.machine
	capacity := api.ResourceList{
		"cpu":    strconv.Itoa(m.cpus),
		"memory": strconv.FormatInt(m.memoryKiB, 10) + "Ki",
		"pods":   strconv.Itoa(f.maxPods),
	}
	status := api.NodeStatus{
		Capacity:    capacity,
		Allocatable: maps.Clone(capacity),
		Addresses: []api.NodeAddress{
			{Type: api.NodeInternalIP, Address: f.ip},
			{Type: api.NodeHostName, Address: f.name},
		},
		DaemonEndpoints: api.NodeDaemonEndpoints{KubeletEndpoint: api.DaemonEndpoint{Port: f.kubeletPort}},
		NodeInfo: api.NodeSystemInfo{
			MachineID:               m.machineID,
			KernelVersion:           m.kernelVersion,
			OSImage:                 m.osImage,
			ContainerRuntimeVersion: m.runtimeVersion,
			KubeletVersion:          Version,
			KubeProxyVersion:        Version,
			OperatingSystem:         "linux",
			Architecture:            m.architecture,
		},
	}
	ready := api.NodeCondition{Type: api.NodeReady, Status: api.ConditionTrue, Reason: "KubeletReady", Message: "kubelite agent is posting ready status"}
	if len(f.notReady) > 0 {
		ready = api.NodeCondition{Type: api.NodeReady, Status: api.ConditionFalse, Reason: "KubeletNotReady", Message: notReadyMessage(f.notReady)}
	}
	// The agent does not measure pressure; it reports none, as a kubelet
	// with room to spare does.
	for _, c := range []api.NodeCondition{
		{Type: "MemoryPressure", Status: api.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelite agent has sufficient memory available"},
		{Type: "DiskPressure", Status: api.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelite agent has no disk pressure"},
		{Type: "PIDPressure", Status: api.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelite agent has sufficient PID available"},
		ready,
	} {
		c.LastHeartbeatTime = api.NewTime(f.now)
		c.LastTransitionTime = api.NewTime(f.now)
		for _, prev := range old.Conditions {
			if prev.Type == c.Type && prev.Status == c.Status && !prev.LastTransitionTime.IsZero() {
				c.LastTransitionTime = prev.LastTransitionTime
			}
		}
		status.Conditions = append(status.Conditions, c)
	}
	return status
}

// nodeStatusChanged reports whether a status differs from the last one in
// more than heartbeat times: such a change is written at once, a mere
// heartbeat only at the report frequency.
func nodeStatusChanged(a, b api.NodeStatus) bool {
	return string(withoutHeartbeats(a)) != string(withoutHeartbeats(b))
}

func withoutHeartbeats(s api.NodeStatus) []byte {
	s.Conditions = append([]api.NodeCondition(nil), s.Conditions...)
	for i := range s.Conditions {
		s.Conditions[i].LastHeartbeatTime = api.Time{}
	}
	data, _ := json.Marshal(s)
	return data
}

// registerNode creates the agent's Node, or takes over the existing one:
// its labels are completed and its status replaced; its spec (podCIDR,
// taints, unschedulable) belongs to the control plane and is kept.
func (a *Agent) registerNode(ctx context.Context, f nodeFacts) (*api.Node, error) {
	nodes := client.For[api.Node](a.client, "")
	node := &api.Node{
		ObjectMeta: api.ObjectMeta{Name: f.name, Labels: nodeLabels(f), Annotations: maps.Clone(f.annotations)},
		Status:     buildNodeStatus(f, api.NodeStatus{}),
	}
	created, err := nodes.Create(ctx, node)
	if err == nil {
		a.log.Info("registered node", "node", f.name, "internalIP", f.ip)
		return created, nil
	}
	if !api.IsAlreadyExists(err) {
		return nil, fmt.Errorf("register node %s: %w", f.name, err)
	}
	existing, err := nodes.Get(ctx, f.name)
	if err != nil {
		return nil, fmt.Errorf("register node %s: %w", f.name, err)
	}
	if missing(existing.Labels, node.Labels) || missing(existing.Annotations, node.Annotations) {
		next := api.DeepCopy(existing)
		next.Labels = merged(next.Labels, node.Labels)
		next.Annotations = merged(next.Annotations, node.Annotations)
		if existing, err = nodes.Update(ctx, next); err != nil {
			return nil, fmt.Errorf("register node %s: metadata: %w", f.name, err)
		}
	}
	next := api.DeepCopy(existing)
	next.Status = buildNodeStatus(f, existing.Status)
	updated, err := nodes.UpdateStatus(ctx, next)
	if err != nil {
		return nil, fmt.Errorf("register node %s: status: %w", f.name, err)
	}
	a.log.Info("node registered again", "node", f.name, "internalIP", f.ip, "podCIDR", updated.Spec.PodCIDR)
	return updated, nil
}

// missing reports whether have lacks an entry of want (or has another value).
func missing(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return true
		}
	}
	return false
}

// merged is have with want's entries set.
func merged(have, want map[string]string) map[string]string {
	if len(want) == 0 {
		return have
	}
	if have == nil {
		have = map[string]string{}
	}
	maps.Copy(have, want)
	return have
}

// nodeStatusReporter writes the Node's status when it changes, and at the
// report frequency otherwise (the Lease is the frequent heartbeat).
type nodeStatusReporter struct {
	agent      *Agent
	facts      func() nodeFacts
	last       api.NodeStatus
	lastReport time.Time
}

// report writes the status if it changed or is due.
func (r *nodeStatusReporter) report(ctx context.Context) error {
	a := r.agent
	nodes := client.For[api.Node](a.client, "")
	node, err := nodes.Get(ctx, a.cfg.NodeName)
	if err != nil {
		return fmt.Errorf("node status: %w", err)
	}
	f := r.facts()
	status := buildNodeStatus(f, node.Status)
	if !nodeStatusChanged(status, node.Status) && f.now.Sub(r.lastReport) < a.cfg.NodeStatusReportFrequency {
		return nil
	}
	next := api.DeepCopy(node)
	next.Status = status
	if _, err := nodes.UpdateStatus(ctx, next); err != nil {
		return fmt.Errorf("node status: %w", err)
	}
	if ready := len(f.notReady) == 0; ready != (len(r.last.Conditions) > 0 && isReady(r.last)) {
		if ready {
			a.log.Info("node is ready", "node", a.cfg.NodeName)
		} else {
			a.log.Info("node is not ready", "node", a.cfg.NodeName, "waiting", notReadyMessage(f.notReady))
		}
	}
	r.last, r.lastReport = status, f.now
	return nil
}

func isReady(s api.NodeStatus) bool {
	return (&api.Node{Status: s}).IsReady()
}

// leaseRenewer keeps the Node's Lease in kube-node-lease: the heartbeat
// the node controller watches.
type leaseRenewer struct {
	agent *Agent
	node  *api.Node  // for the Lease's owner reference
	lease *api.Lease // the last one written, to update without a read
	now   func() time.Time
}

// renew writes the Lease with a fresh renewTime, creating it if needed.
func (l *leaseRenewer) renew(ctx context.Context) error {
	a := l.agent
	leases := client.For[api.Lease](a.client, api.NamespaceNodeLease)
	now := api.MicroTime{Time: l.now()}
	if l.lease != nil {
		next := api.DeepCopy(l.lease)
		next.Spec.RenewTime = &now
		updated, err := leases.Update(ctx, next)
		if err == nil {
			l.lease = updated
			return nil
		}
		if !api.IsConflict(err) && !api.IsNotFound(err) {
			return fmt.Errorf("renew lease: %w", err)
		}
		l.lease = nil // someone else wrote it, or it is gone: start over
	}
	current, err := leases.Get(ctx, a.cfg.NodeName)
	switch {
	case api.IsNotFound(err):
		created, err := leases.Create(ctx, l.newLease(now))
		if err != nil {
			return fmt.Errorf("create lease: %w", err)
		}
		l.lease = created
		return nil
	case err != nil:
		return fmt.Errorf("renew lease: %w", err)
	}
	next := api.DeepCopy(current)
	next.Spec = l.newLease(now).Spec
	next.Spec.AcquireTime = current.Spec.AcquireTime
	updated, err := leases.Update(ctx, next)
	if err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	l.lease = updated
	return nil
}

func (l *leaseRenewer) newLease(now api.MicroTime) *api.Lease {
	a := l.agent
	seconds := int32(a.cfg.LeaseDuration / time.Second)
	lease := &api.Lease{
		ObjectMeta: api.ObjectMeta{Name: a.cfg.NodeName, Namespace: api.NamespaceNodeLease},
		Spec: api.LeaseSpec{
			HolderIdentity:       api.Ptr(a.cfg.NodeName),
			LeaseDurationSeconds: &seconds,
			AcquireTime:          &now,
			RenewTime:            &now,
		},
	}
	if l.node != nil {
		// Owned by the Node: deleting the Node deletes its Lease.
		lease.OwnerReferences = []api.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: l.node.Name, UID: l.node.UID}}
	}
	return lease
}

// heartbeat renews the Lease every LeaseRenewInterval and looks at the
// node's status every NodeStatusUpdateFrequency, or at once when a part of
// the node comes up or goes down. Failures are logged and retried at the
// next tick: the API server may be restarting.
func (a *Agent) heartbeat(ctx context.Context, lease *leaseRenewer, status *nodeStatusReporter) error {
	leaseTicker := time.NewTicker(a.cfg.LeaseRenewInterval)
	defer leaseTicker.Stop()
	statusTicker := time.NewTicker(a.cfg.NodeStatusUpdateFrequency)
	defer statusTicker.Stop()
	renew := func() {
		if err := lease.renew(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("could not renew the node's lease", "err", err)
		}
	}
	report := func() {
		if err := status.report(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("could not report the node's status", "err", err)
		}
	}
	renew()
	report()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-leaseTicker.C:
			renew()
		case <-statusTicker.C:
			report()
		case <-a.readiness.changed:
			report()
		}
	}
}
