package kubectl

import (
	"time"

	"kubelite/api"
)

// Objects of the tutorial's cluster, in the states the printers must show.

func httpdLabels() map[string]string { return map[string]string{"run": "httpd"} }

func httpdOwner(kind, name, uid string) []api.OwnerReference {
	return []api.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: uid, Controller: api.Ptr(true)}}
}

func runningPod(name, ip, node string, age time.Duration) *api.Pod {
	return &api.Pod{
		TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: api.ObjectMeta{
			Name: name, Namespace: "default", UID: "uid-" + name,
			CreationTimestamp: ago(age),
			Labels:            map[string]string{"run": "httpd", "pod-template-hash": "5d8f7c6b9"},
			OwnerReferences:   httpdOwner("ReplicaSet", "httpd-5d8f7c6b9", "uid-rs"),
		},
		Spec: api.PodSpec{
			NodeName: node,
			Containers: []api.Container{{
				Name: "httpd", Image: "httpd",
				Ports: []api.ContainerPort{{ContainerPort: 80, Protocol: "TCP"}},
			}},
			RestartPolicy: api.RestartAlways,
			Tolerations: []api.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: "Exists", Effect: "NoExecute", TolerationSeconds: api.Ptr(int64(300))},
				{Key: "node.kubernetes.io/unreachable", Operator: "Exists", Effect: "NoExecute", TolerationSeconds: api.Ptr(int64(300))},
			},
		},
		Status: api.PodStatus{
			Phase:     api.PodRunning,
			HostIP:    "192.168.56.11",
			PodIP:     ip,
			PodIPs:    []api.PodIP{{IP: ip}},
			StartTime: agoPtr(age),
			QOSClass:  "BestEffort",
			Conditions: []api.PodCondition{
				{Type: api.PodInitialized, Status: "True"},
				{Type: api.PodReady, Status: "True"},
				{Type: api.ContainersReady, Status: "True"},
				{Type: api.PodScheduled, Status: "True"},
			},
			ContainerStatuses: []api.ContainerStatus{{
				Name: "httpd", Ready: true, Image: "docker.io/library/httpd:latest",
				ImageID:     "sha256:4f1a",
				ContainerID: "containerd://0a1b2c",
				State:       api.ContainerState{Running: &api.ContainerStateRunning{StartedAt: ago(age - time.Second)}},
			}},
		},
	}
}

func podFixtures() []api.Object {
	creating := runningPod("httpd-5d8f7c6b9-creat", "", "node2", 4*time.Second)
	creating.Status.Phase = api.PodPending
	creating.Status.PodIP, creating.Status.PodIPs = "", nil
	creating.Status.Conditions = nil
	creating.Status.ContainerStatuses[0].Ready = false
	creating.Status.ContainerStatuses[0].State = api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: "ContainerCreating"}}

	crashing := runningPod("httpd-5d8f7c6b9-crash", "10.244.2.7", "node2", 3*time.Hour+12*time.Minute)
	crashing.Status.ContainerStatuses[0].Ready = false
	crashing.Status.ContainerStatuses[0].RestartCount = 4
	crashing.Status.ContainerStatuses[0].State = api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
	crashing.Status.ContainerStatuses[0].LastState = api.ContainerState{Terminated: &api.ContainerStateTerminated{
		ExitCode: 1, Reason: "Error", StartedAt: ago(50 * time.Second), FinishedAt: ago(45 * time.Second)}}

	pulling := runningPod("busybox", "", "", 90*time.Second)
	pulling.Labels = map[string]string{"run": "busybox"}
	pulling.OwnerReferences = nil
	pulling.Spec.Containers[0] = api.Container{Name: "busybox", Image: "busybox"}
	pulling.Status.Phase = api.PodPending
	pulling.Status.PodIP, pulling.Status.PodIPs = "", nil
	pulling.Status.ContainerStatuses[0] = api.ContainerStatus{Name: "busybox", Image: "busybox",
		State: api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}

	terminating := runningPod("httpd-5d8f7c6b9-termi", "10.244.3.4", "node3", 2*24*time.Hour+3*time.Hour)
	terminating.DeletionTimestamp = agoPtr(5 * time.Second)
	terminating.DeletionGracePeriodSeconds = api.Ptr(int64(30))

	completed := runningPod("job-once", "10.244.1.9", "node1", 9*24*time.Hour)
	completed.Labels = nil
	completed.OwnerReferences = nil
	completed.Status.Phase = api.PodSucceeded
	completed.Status.ContainerStatuses[0].Ready = false
	completed.Status.ContainerStatuses[0].State = api.ContainerState{Terminated: &api.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}

	return []api.Object{
		runningPod("httpd-5d8f7c6b9-x7k2p", "10.244.1.2", "node1", 5*time.Minute+30*time.Second),
		creating, crashing, pulling, terminating, completed,
	}
}

func clusterIPService() *api.Service {
	return &api.Service{
		TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: api.ObjectMeta{Name: "httpd-svc", Namespace: "default", UID: "uid-svc",
			CreationTimestamp: ago(45 * time.Second),
			Annotations: map[string]string{
				lastAppliedAnnotation: `{"apiVersion":"v1","kind":"Service"}` + "\n",
			}},
		Spec: api.ServiceSpec{
			Type: api.ServiceTypeClusterIP, ClusterIP: "10.102.120.255", ClusterIPs: []string{"10.102.120.255"},
			Selector:        httpdLabels(),
			Ports:           []api.ServicePort{{Protocol: "TCP", Port: 8080, TargetPort: api.FromInt(80)}},
			SessionAffinity: api.SessionAffinityNone, IPFamilies: []string{"IPv4"}, IPFamilyPolicy: api.Ptr("SingleStack"),
			InternalTrafficPolicy: api.Ptr("Cluster"),
		},
	}
}

func serviceFixtures() []api.Object {
	kubernetes := &api.Service{
		ObjectMeta: api.ObjectMeta{Name: "kubernetes", Namespace: "default", CreationTimestamp: ago(3*24*time.Hour + 19*time.Hour),
			Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
		Spec: api.ServiceSpec{Type: api.ServiceTypeClusterIP, ClusterIP: "10.96.0.1", ClusterIPs: []string{"10.96.0.1"},
			Ports: []api.ServicePort{{Name: "https", Protocol: "TCP", Port: 443, TargetPort: api.FromInt(6443)}}},
	}
	nodePort := clusterIPService()
	nodePort.Name = "httpd-nodeport"
	nodePort.Spec.Type = api.ServiceTypeNodePort
	nodePort.Spec.ClusterIP, nodePort.Spec.ClusterIPs = "10.99.3.7", []string{"10.99.3.7"}
	nodePort.Spec.Ports = []api.ServicePort{
		{Name: "http", Protocol: "TCP", Port: 8080, TargetPort: api.FromInt(80), NodePort: 31000},
		{Name: "metrics", Protocol: "TCP", Port: 9090, TargetPort: api.FromString("metrics"), NodePort: 32312},
	}
	pending := clusterIPService()
	pending.Name = "httpd-lb"
	pending.Spec.Type = api.ServiceTypeLoadBalancer
	pending.Spec.ClusterIP, pending.Spec.ClusterIPs = "10.111.0.9", []string{"10.111.0.9"}
	pending.Spec.Ports[0].NodePort = 30080
	served := clusterIPService()
	served.Name = "httpd-lb-served"
	served.Spec.Type = api.ServiceTypeLoadBalancer
	served.Spec.ClusterIP, served.Spec.ClusterIPs = "10.111.0.10", []string{"10.111.0.10"}
	served.Spec.Ports[0].NodePort = 30081
	served.Status.LoadBalancer.Ingress = []api.LoadBalancerIngress{{IP: "192.168.56.241"}, {IP: "192.168.56.240"}}
	headless := clusterIPService()
	headless.Name = "httpd-headless"
	headless.Spec.ClusterIP, headless.Spec.ClusterIPs = api.ClusterIPNone, []string{api.ClusterIPNone}
	headless.Spec.Ports = nil
	external := clusterIPService()
	external.Name = "httpd-external"
	external.Spec.ExternalIPs = []string{"192.168.56.50"}
	external.Spec.Selector = nil
	return []api.Object{kubernetes, clusterIPService(), nodePort, pending, served, headless, external}
}

func httpdDeployment() *api.Deployment {
	return &api.Deployment{
		TypeMeta: api.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: api.ObjectMeta{Name: "httpd", Namespace: "default", UID: "uid-deploy", Generation: 1,
			CreationTimestamp: ago(3*time.Minute + 12*time.Second),
			Annotations:       map[string]string{"deployment.kubernetes.io/revision": "1"}},
		Spec: api.DeploymentSpec{
			Replicas: api.Ptr(int32(3)),
			Selector: &api.LabelSelector{MatchLabels: httpdLabels()},
			Template: api.PodTemplateSpec{
				ObjectMeta: api.ObjectMeta{Labels: httpdLabels()},
				Spec: api.PodSpec{Containers: []api.Container{{Name: "httpd", Image: "httpd",
					Ports: []api.ContainerPort{{ContainerPort: 80, Protocol: "TCP"}}}}},
			},
			Strategy: api.DeploymentStrategy{Type: api.RollingUpdateStrategy, RollingUpdate: &api.RollingUpdateDeployment{
				MaxUnavailable: api.Ptr(api.FromString("25%")), MaxSurge: api.Ptr(api.FromString("25%"))}},
		},
		Status: api.DeploymentStatus{
			ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3,
			Conditions: []api.DeploymentCondition{
				{Type: api.DeploymentAvailable, Status: "True", Reason: "MinimumReplicasAvailable"},
				{Type: api.DeploymentProgressing, Status: "True", Reason: "NewReplicaSetAvailable"},
			},
		},
	}
}

func httpdReplicaSet() *api.ReplicaSet {
	labels := map[string]string{"run": "httpd", "pod-template-hash": "5d8f7c6b9"}
	return &api.ReplicaSet{
		TypeMeta: api.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"},
		ObjectMeta: api.ObjectMeta{Name: "httpd-5d8f7c6b9", Namespace: "default", UID: "uid-rs",
			CreationTimestamp: ago(3*time.Minute + 12*time.Second), Labels: labels,
			OwnerReferences: httpdOwner("Deployment", "httpd", "uid-deploy")},
		Spec: api.ReplicaSetSpec{
			Replicas: api.Ptr(int32(3)),
			Selector: &api.LabelSelector{MatchLabels: labels},
			Template: api.PodTemplateSpec{
				ObjectMeta: api.ObjectMeta{Labels: labels},
				Spec: api.PodSpec{Containers: []api.Container{{Name: "httpd", Image: "httpd",
					Ports: []api.ContainerPort{{ContainerPort: 80, Protocol: "TCP"}}}}},
			},
		},
		Status: api.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3},
	}
}

func httpdEndpoints(ips ...string) *api.Endpoints {
	ep := &api.Endpoints{
		TypeMeta:   api.TypeMeta{APIVersion: "v1", Kind: "Endpoints"},
		ObjectMeta: api.ObjectMeta{Name: "httpd-svc", Namespace: "default", CreationTimestamp: ago(45 * time.Second)},
	}
	if len(ips) > 0 {
		subset := api.EndpointSubset{Ports: []api.EndpointPort{{Port: 80, Protocol: "TCP"}}}
		for _, ip := range ips {
			subset.Addresses = append(subset.Addresses, api.EndpointAddress{IP: ip})
		}
		ep.Subsets = []api.EndpointSubset{subset}
	}
	return ep
}

func readyNode(name, ip string) *api.Node {
	return &api.Node{
		TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "Node"},
		ObjectMeta: api.ObjectMeta{Name: name, UID: "uid-" + name, CreationTimestamp: ago(3*24*time.Hour + 19*time.Hour),
			Labels: map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
		Spec: api.NodeSpec{PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24"}},
		Status: api.NodeStatus{
			Capacity:    api.ResourceList{"cpu": "2", "memory": "4028816Ki", "pods": "110"},
			Allocatable: api.ResourceList{"cpu": "2", "memory": "3926416Ki", "pods": "110"},
			Conditions: []api.NodeCondition{{Type: api.NodeReady, Status: "True", Reason: "KubeletReady",
				Message:           "kubelite node agent is posting ready status",
				LastHeartbeatTime: ago(10 * time.Second), LastTransitionTime: ago(3*24*time.Hour + 19*time.Hour)}},
			Addresses: []api.NodeAddress{{Type: api.NodeInternalIP, Address: ip}, {Type: api.NodeHostName, Address: name}},
			NodeInfo: api.NodeSystemInfo{MachineID: "0f3e", KernelVersion: "6.1.0-18-amd64", OSImage: "Debian GNU/Linux 12 (bookworm)",
				ContainerRuntimeVersion: "containerd://1.7.35", KubeletVersion: "v1.32.0-kubelite", KubeProxyVersion: "v1.32.0-kubelite",
				OperatingSystem: "linux", Architecture: "amd64"},
		},
	}
}

func nodeFixtures() []api.Object {
	master := readyNode("node1", "192.168.56.11")
	master.Labels["node-role.kubernetes.io/control-plane"] = ""
	cordoned := readyNode("node2", "192.168.56.12")
	cordoned.Spec.Unschedulable = true
	lost := readyNode("node3", "192.168.56.13")
	lost.Status.Conditions[0].Status = "Unknown"
	lost.Status.Addresses = append(lost.Status.Addresses, api.NodeAddress{Type: api.NodeExternalIP, Address: "203.0.113.7"})
	lost.Status.NodeInfo.OSImage = ""
	return []api.Object{master, cordoned, lost}
}

func httpdEvents() []api.Event {
	ref := api.ObjectReference{Kind: "Pod", Namespace: "default", Name: "httpd-5d8f7c6b9-x7k2p", UID: "uid-httpd-5d8f7c6b9-x7k2p"}
	return []api.Event{
		{ObjectMeta: api.ObjectMeta{Name: "httpd-5d8f7c6b9-x7k2p.17d1", Namespace: "default"}, InvolvedObject: ref,
			Type: api.EventNormal, Reason: "Scheduled", Message: "Successfully assigned default/httpd-5d8f7c6b9-x7k2p to node1",
			Source: api.EventSource{Component: "default-scheduler"}, FirstTimestamp: ago(5*time.Minute + 30*time.Second), LastTimestamp: ago(5*time.Minute + 30*time.Second), Count: 1},
		{ObjectMeta: api.ObjectMeta{Name: "httpd-5d8f7c6b9-x7k2p.17d3", Namespace: "default"}, InvolvedObject: ref,
			Type: api.EventWarning, Reason: "BackOff", Message: "Back-off pulling image \"httpd\"",
			Source: api.EventSource{Component: "kubelet", Host: "node1"}, FirstTimestamp: ago(5 * time.Minute), LastTimestamp: ago(4 * time.Minute), Count: 3},
		{ObjectMeta: api.ObjectMeta{Name: "httpd-5d8f7c6b9-x7k2p.17d2", Namespace: "default"}, InvolvedObject: ref,
			Type: api.EventNormal, Reason: "Pulled", Message: "Container image \"httpd\" already present on machine",
			Source: api.EventSource{Component: "kubelet", Host: "node1"}, FirstTimestamp: ago(5*time.Minute + 20*time.Second), LastTimestamp: ago(5*time.Minute + 20*time.Second), Count: 1},
	}
}

func eventList(events []api.Event) *api.List[api.Event] { return &api.List[api.Event]{Items: events} }
