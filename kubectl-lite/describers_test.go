package kubectl

import (
	"testing"
	"time"

	"kubelite/api"
)

func TestDescribers(t *testing.T) {
	nodePort := serviceFixtures()[2].(*api.Service)
	nodePortEndpoints := httpdEndpoints("10.244.1.2", "10.244.2.3", "10.244.3.4", "10.244.3.5")
	nodePortEndpoints.Subsets[0].Ports = []api.EndpointPort{{Name: "http", Port: 80, Protocol: "TCP"}, {Name: "metrics", Port: 9090, Protocol: "TCP"}}
	served := serviceFixtures()[4].(*api.Service)

	pods := podFixtures()
	crashing := pods[2].(*api.Pod)
	crashing.Spec.Containers[0].Command = []string{"httpd-foreground"}
	crashing.Spec.Containers[0].Env = []api.EnvVar{{Name: "MODE", Value: "demo"},
		{Name: "POD_IP", ValueFrom: &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.podIP"}}}}
	crashing.Spec.Containers[0].Resources = api.ResourceRequirements{Requests: api.ResourceList{"cpu": "100m", "memory": "64Mi"}}
	crashing.Spec.Containers[0].ReadinessProbe = &api.Probe{ProbeHandler: api.ProbeHandler{HTTPGet: &api.HTTPGetAction{Path: "/", Port: api.FromInt(80), Scheme: "HTTP"}},
		TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3}
	crashing.Spec.Containers[0].VolumeMounts = []api.VolumeMount{{Name: "cache", MountPath: "/var/cache"}}
	crashing.Spec.Volumes = []api.Volume{{Name: "cache", EmptyDir: &api.EmptyDirVolumeSource{}}}
	crashing.Status.QOSClass = ""

	oldRS := httpdReplicaSet()
	oldRS.Name = "httpd-6c9b8d7f4"
	oldRS.Spec.Replicas = api.Ptr(int32(1))
	oldRS.Status.Replicas = 1

	node := nodeFixtures()[0].(*api.Node)
	node.Spec.Taints = []api.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: "NoSchedule"}}
	nodePod := *pods[0].(*api.Pod)
	nodePod.Spec.Containers = []api.Container{{Name: "httpd", Image: "httpd", Resources: api.ResourceRequirements{
		Requests: api.ResourceList{"cpu": "250m", "memory": "128Mi"}, Limits: api.ResourceList{"cpu": "500m", "memory": "256Mi"}}}}
	holder := "node1"
	lease := &api.Lease{Spec: api.LeaseSpec{HolderIdentity: &holder, RenewTime: &api.MicroTime{Time: testNow.Add(-3 * time.Second)}}}

	namespace := &api.Namespace{ObjectMeta: api.ObjectMeta{Name: "default", Labels: map[string]string{"kubernetes.io/metadata.name": "default"}},
		Status: api.NamespaceStatus{Phase: "Active"}}

	noEvents := eventList(nil)
	tests := []struct {
		golden string
		text   string
	}{
		{"describe/service.txt", describeService(clusterIPService(), httpdEndpoints("10.244.1.2", "10.244.2.3", "10.244.3.4"), noEvents, testNow)},
		{"describe/service-nodeport.txt", describeService(nodePort, nodePortEndpoints, eventList(httpdEvents()), testNow)},
		{"describe/service-loadbalancer-no-endpoints.txt", describeService(served, nil, noEvents, testNow)},
		{"describe/pod.txt", describePod(pods[0].(*api.Pod), eventList(httpdEvents()), testNow)},
		{"describe/pod-crashing.txt", describePod(crashing, noEvents, testNow)},
		{"describe/pod-terminating.txt", describePod(pods[4].(*api.Pod), nil, testNow)},
		{"describe/deployment.txt", describeDeployment(httpdDeployment(), []*api.ReplicaSet{oldRS}, httpdReplicaSet(), noEvents, testNow)},
		{"describe/replicaset.txt", describeReplicaSet(httpdReplicaSet(), countPodPhases([]api.Pod{*pods[0].(*api.Pod), *pods[1].(*api.Pod)}), noEvents, testNow)},
		{"describe/node.txt", describeNode(node, []api.Pod{nodePod}, lease, noEvents, testNow)},
		{"describe/namespace.txt", describeNamespace(namespace)},
		{"describe/endpoints.txt", describeEndpoints(nodePortEndpoints, noEvents, testNow)},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) { checkGolden(t, tt.golden, tt.text) })
	}
}

func TestFindNewReplicaSet(t *testing.T) {
	d := httpdDeployment()
	current := httpdReplicaSet()
	old := httpdReplicaSet()
	old.Name = "httpd-old"
	old.Spec.Template.Spec.Containers[0].Image = "httpd:2.2"
	if got := findNewReplicaSet(d, []*api.ReplicaSet{old, current}); got != current {
		t.Errorf("findNewReplicaSet = %v, want %s", got, current.Name)
	}
	if got := findNewReplicaSet(d, []*api.ReplicaSet{old}); got != nil {
		t.Errorf("findNewReplicaSet without a matching template = %s, want none", got.Name)
	}
}
