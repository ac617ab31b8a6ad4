package api

import "strings"

// Default values, as Kubernetes sets them.
const (
	DefaultSchedulerName                 = "default-scheduler"
	DefaultTerminationMessagePath        = "/dev/termination-log"
	DefaultTerminationGracePeriodSeconds = 30
	DefaultClientIPAffinitySeconds       = 10800 // three hours
	DefaultRevisionHistoryLimit          = 10
	DefaultProgressDeadlineSeconds       = 600
	DefaultMaxSurge                      = "25%"
	DefaultMaxUnavailable                = "25%"

	// LabelMetadataName is the label every Namespace carries with its own name,
	// so that label selectors can pick namespaces by name.
	LabelMetadataName = "kubernetes.io/metadata.name"
)

// Default fills in, in place, the fields a user may leave out, with
// Kubernetes' defaults. The API server calls it after Decode and before
// Validate; it only ever sets fields that are unset.
func Default(obj Object) {
	// The namespace of a cluster-scoped object means nothing; the API server
	// drops it rather than rejecting the object, as Kubernetes does.
	if namespaced, known := kindScope(KindOf(obj)); known && !namespaced {
		obj.GetObjectMeta().Namespace = ""
	}
	switch o := obj.(type) {
	case *Namespace:
		defaultNamespace(o)
	case *Node:
		defaultNode(o)
	case *Pod:
		DefaultPodSpec(&o.Spec)
	case *Service:
		defaultService(o)
	case *Endpoints:
		defaultEndpoints(o)
	case *Event:
		defaultEvent(o)
	case *Deployment:
		defaultDeployment(o)
	case *ReplicaSet:
		defaultReplicaSet(o)
	}
}

func defaultNamespace(ns *Namespace) {
	if ns.Status.Phase == "" {
		ns.Status.Phase = NamespaceActive
	}
	// A namespace being created from generateName has no name yet.
	if ns.Name != "" {
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[LabelMetadataName] = ns.Name
	}
}

func defaultNode(node *Node) {
	// A node that reports no allocatable resources can use all it has.
	if node.Status.Allocatable == nil && node.Status.Capacity != nil {
		node.Status.Allocatable = make(ResourceList, len(node.Status.Capacity))
		for name, quantity := range node.Status.Capacity {
			node.Status.Allocatable[name] = quantity
		}
	}
}

// DefaultPodSpec applies the Pod defaults to a Pod's spec or to the template
// of a Deployment or ReplicaSet.
func DefaultPodSpec(spec *PodSpec) {
	if spec.DNSPolicy == "" {
		spec.DNSPolicy = DNSClusterFirst
	}
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = RestartAlways
	}
	if spec.TerminationGracePeriodSeconds == nil {
		spec.TerminationGracePeriodSeconds = Ptr[int64](DefaultTerminationGracePeriodSeconds)
	}
	if spec.SecurityContext == nil {
		spec.SecurityContext = &PodSecurityContext{}
	}
	if spec.SchedulerName == "" {
		spec.SchedulerName = DefaultSchedulerName
	}
	if spec.EnableServiceLinks == nil {
		spec.EnableServiceLinks = Ptr(true)
	}
	for i := range spec.Containers {
		defaultContainer(&spec.Containers[i], spec.HostNetwork)
	}
	for i := range spec.InitContainers {
		defaultContainer(&spec.InitContainers[i], spec.HostNetwork)
	}
}

func defaultContainer(c *Container, hostNetwork bool) {
	if c.ImagePullPolicy == "" {
		// A floating tag may move, so it is pulled every time.
		if imageTag(c.Image) == "latest" {
			c.ImagePullPolicy = PullAlways
		} else {
			c.ImagePullPolicy = PullIfNotPresent
		}
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = DefaultTerminationMessagePath
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = TerminationMessageReadFile
	}
	for i := range c.Ports {
		port := &c.Ports[i]
		if port.Protocol == "" {
			port.Protocol = ProtocolTCP
		}
		// On the host's network a container port is a host port.
		if hostNetwork && port.HostPort == 0 {
			port.HostPort = port.ContainerPort
		}
	}
	for i := range c.Env {
		if ref := envFieldRef(&c.Env[i]); ref != nil && ref.APIVersion == "" {
			ref.APIVersion = "v1"
		}
	}
	// Limits without requests: the container requests what it may use.
	for name, quantity := range c.Resources.Limits {
		if _, ok := c.Resources.Requests[name]; !ok {
			if c.Resources.Requests == nil {
				c.Resources.Requests = ResourceList{}
			}
			c.Resources.Requests[name] = quantity
		}
	}
	defaultProbe(c.LivenessProbe)
	defaultProbe(c.ReadinessProbe)
	defaultProbe(c.StartupProbe)
}

func envFieldRef(ev *EnvVar) *ObjectFieldSelector {
	if ev.ValueFrom == nil {
		return nil
	}
	return ev.ValueFrom.FieldRef
}

func defaultProbe(probe *Probe) {
	if probe == nil {
		return
	}
	if probe.TimeoutSeconds == 0 {
		probe.TimeoutSeconds = 1
	}
	if probe.PeriodSeconds == 0 {
		probe.PeriodSeconds = 10
	}
	if probe.SuccessThreshold == 0 {
		probe.SuccessThreshold = 1
	}
	if probe.FailureThreshold == 0 {
		probe.FailureThreshold = 3
	}
	if get := probe.HTTPGet; get != nil {
		if get.Path == "" {
			get.Path = "/"
		}
		if get.Scheme == "" {
			get.Scheme = "HTTP"
		}
	}
}

// imageTag returns the tag of an image reference: "1.25" in "nginx:1.25",
// "latest" when the reference has neither tag nor digest, "" for a digest only.
func imageTag(image string) string {
	name, _, hasDigest := strings.Cut(image, "@")
	// A ':' before the last '/' separates a registry's port, not a tag.
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		return name[i+1:]
	}
	if hasDigest {
		return ""
	}
	return "latest"
}

func defaultService(svc *Service) {
	spec := &svc.Spec
	if spec.Type == "" {
		spec.Type = ServiceTypeClusterIP
	}
	if spec.SessionAffinity == "" {
		spec.SessionAffinity = SessionAffinityNone
	}
	if spec.SessionAffinity == SessionAffinityClientIP {
		if spec.SessionAffinityConfig == nil {
			spec.SessionAffinityConfig = &SessionAffinityConfig{}
		}
		if spec.SessionAffinityConfig.ClientIP == nil {
			spec.SessionAffinityConfig.ClientIP = &ClientIPConfig{}
		}
		if spec.SessionAffinityConfig.ClientIP.TimeoutSeconds == nil {
			spec.SessionAffinityConfig.ClientIP.TimeoutSeconds = Ptr[int32](DefaultClientIPAffinitySeconds)
		}
	}
	for i := range spec.Ports {
		port := &spec.Ports[i]
		if port.Protocol == "" {
			port.Protocol = ProtocolTCP
		}
		if port.TargetPort.IsZero() || (port.TargetPort.IsString && port.TargetPort.StrVal == "") {
			port.TargetPort = FromInt(port.Port)
		}
	}
	if (spec.Type == ServiceTypeNodePort || spec.Type == ServiceTypeLoadBalancer) && spec.ExternalTrafficPolicy == "" {
		spec.ExternalTrafficPolicy = TrafficPolicyCluster
	}
	if spec.Type == ServiceTypeLoadBalancer && spec.AllocateLoadBalancerNodePorts == nil {
		spec.AllocateLoadBalancerNodePorts = Ptr(true)
	}
	if len(spec.ClusterIPs) == 0 && spec.ClusterIP != "" {
		spec.ClusterIPs = []string{spec.ClusterIP}
	}
	if spec.Type == ServiceTypeExternalName {
		return // a DNS alias: no addresses, no traffic policies
	}
	if spec.InternalTrafficPolicy == nil {
		spec.InternalTrafficPolicy = Ptr(TrafficPolicyCluster)
	}
	// kubelite's service network is IPv4 only. A headless Service without a
	// selector lists addresses its owner manages, of whichever family.
	if len(spec.IPFamilies) == 0 {
		spec.IPFamilies = []string{IPv4Protocol}
	}
	if spec.IPFamilyPolicy == nil {
		if svc.IsHeadless() && len(spec.Selector) == 0 {
			spec.IPFamilyPolicy = Ptr(IPFamilyPolicyPreferDualStack)
		} else {
			spec.IPFamilyPolicy = Ptr(IPFamilyPolicySingleStack)
		}
	}
}

func defaultEndpoints(ep *Endpoints) {
	for i := range ep.Subsets {
		for j := range ep.Subsets[i].Ports {
			if port := &ep.Subsets[i].Ports[j]; port.Protocol == "" {
				port.Protocol = ProtocolTCP
			}
		}
	}
}

func defaultEvent(ev *Event) {
	if ev.Count == 0 {
		ev.Count = 1
	}
	if ev.Type == "" {
		ev.Type = EventNormal
	}
}

func defaultDeployment(d *Deployment) {
	spec := &d.Spec
	if spec.Replicas == nil {
		spec.Replicas = Ptr[int32](1)
	}
	if spec.Strategy.Type == "" {
		spec.Strategy.Type = RollingUpdateStrategy
	}
	if spec.Strategy.Type == RollingUpdateStrategy {
		if spec.Strategy.RollingUpdate == nil {
			spec.Strategy.RollingUpdate = &RollingUpdateDeployment{}
		}
		if spec.Strategy.RollingUpdate.MaxUnavailable == nil {
			spec.Strategy.RollingUpdate.MaxUnavailable = Ptr(FromString(DefaultMaxUnavailable))
		}
		if spec.Strategy.RollingUpdate.MaxSurge == nil {
			spec.Strategy.RollingUpdate.MaxSurge = Ptr(FromString(DefaultMaxSurge))
		}
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = Ptr[int32](DefaultRevisionHistoryLimit)
	}
	if spec.ProgressDeadlineSeconds == nil {
		spec.ProgressDeadlineSeconds = Ptr[int32](DefaultProgressDeadlineSeconds)
	}
	DefaultPodSpec(&spec.Template.Spec)
}

func defaultReplicaSet(rs *ReplicaSet) {
	if rs.Spec.Replicas == nil {
		rs.Spec.Replicas = Ptr[int32](1)
	}
	DefaultPodSpec(&rs.Spec.Template.Spec)
}

// KeepServiceAllocations carries into a replacement Service the values the
// API server allocated and a client sending the whole object (as
// `kubectl apply` of the same file does) leaves out, as Kubernetes does on
// update: the cluster IPs while the Service keeps needing one, and the node
// ports of same-named ports while it keeps being reachable on nodes. Call it
// before Default and ValidateUpdate.
func KeepServiceAllocations(newSvc, oldSvc *Service) {
	newSpec, oldSpec := &newSvc.Spec, &oldSvc.Spec
	if oldSpec.Type != ServiceTypeExternalName && newSpec.Type != ServiceTypeExternalName {
		if newSpec.ClusterIP == "" {
			newSpec.ClusterIP = oldSpec.ClusterIP
		}
		if len(newSpec.ClusterIPs) == 0 {
			newSpec.ClusterIPs = oldSpec.ClusterIPs
		}
	}
	if !hasNodePorts(oldSpec) || !hasNodePorts(newSpec) {
		return
	}
	// A node port the new spec gives to some port explicitly is not reused.
	claimed := map[int32]bool{}
	for _, p := range newSpec.Ports {
		claimed[p.NodePort] = true
	}
	oldNodePorts := map[string]int32{}
	for _, p := range oldSpec.Ports {
		oldNodePorts[p.Name] = p.NodePort
	}
	for i := range newSpec.Ports {
		p := &newSpec.Ports[i]
		if old := oldNodePorts[p.Name]; p.NodePort == 0 && !claimed[old] {
			p.NodePort = old
		}
	}
	if newSpec.HealthCheckNodePort == 0 {
		newSpec.HealthCheckNodePort = oldSpec.HealthCheckNodePort
	}
}

func hasNodePorts(spec *ServiceSpec) bool {
	return spec.Type == ServiceTypeNodePort || spec.Type == ServiceTypeLoadBalancer
}
