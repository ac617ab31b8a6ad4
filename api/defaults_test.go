package api

import (
	"encoding/json"
	"testing"
)

// checkJSON compares an object with the JSON it should encode to, ignoring
// key order and layout.
func checkJSON(t *testing.T, got any, want string) {
	t.Helper()
	encoded, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if canonicalJSON(t, encoded) != canonicalJSON(t, []byte(want)) {
		t.Errorf("\n  got  %s\n  want %s", canonicalJSON(t, encoded), canonicalJSON(t, []byte(want)))
	}
}

// canonicalJSON re-encodes JSON with sorted keys and no spaces.
func canonicalJSON(t *testing.T, data []byte) string {
	t.Helper()
	var value any
	if err := json.Unmarshal(data, &value); err != nil {
		t.Fatalf("bad JSON %s: %v", data, err)
	}
	canonical, _ := json.Marshal(value)
	return string(canonical)
}

func TestDefaultPod(t *testing.T) {
	pod := &Pod{
		ObjectMeta: ObjectMeta{Name: "web", Namespace: "default"},
		Spec: PodSpec{Containers: []Container{{
			Name:           "web",
			Image:          "httpd",
			Ports:          []ContainerPort{{ContainerPort: 80}},
			LivenessProbe:  &Probe{ProbeHandler: ProbeHandler{HTTPGet: &HTTPGetAction{Port: FromInt(80)}}},
			ReadinessProbe: &Probe{ProbeHandler: ProbeHandler{TCPSocket: &TCPSocketAction{Port: FromString("http")}}, PeriodSeconds: 5},
			Env:            []EnvVar{{Name: "POD_IP", ValueFrom: &EnvVarSource{FieldRef: &ObjectFieldSelector{FieldPath: "status.podIP"}}}},
			Resources:      ResourceRequirements{Limits: ResourceList{"cpu": "500m", "memory": "128Mi"}, Requests: ResourceList{"cpu": "100m"}},
		}}},
	}
	Default(pod)
	checkJSON(t, pod.Spec, `{
		"containers": [{
			"name": "web", "image": "httpd",
			"ports": [{"containerPort": 80, "protocol": "TCP"}],
			"env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}],
			"resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
			"livenessProbe": {"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"},
				"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
			"readinessProbe": {"tcpSocket": {"port": "http"},
				"timeoutSeconds": 1, "periodSeconds": 5, "successThreshold": 1, "failureThreshold": 3},
			"imagePullPolicy": "Always",
			"terminationMessagePath": "/dev/termination-log",
			"terminationMessagePolicy": "File"
		}],
		"restartPolicy": "Always",
		"terminationGracePeriodSeconds": 30,
		"dnsPolicy": "ClusterFirst",
		"schedulerName": "default-scheduler",
		"enableServiceLinks": true,
		"securityContext": {}
	}`)
}

func TestDefaultPodKeepsWhatIsSet(t *testing.T) {
	spec := PodSpec{
		RestartPolicy:                 RestartNever,
		DNSPolicy:                     DNSDefault,
		TerminationGracePeriodSeconds: Ptr[int64](5),
		SchedulerName:                 "other",
		EnableServiceLinks:            Ptr(false),
		Containers: []Container{{Name: "c", Image: "busybox", ImagePullPolicy: PullNever,
			TerminationMessagePolicy: TerminationMessageFallbackToLogsOnError, Ports: []ContainerPort{{ContainerPort: 53, Protocol: ProtocolUDP}}}},
	}
	DefaultPodSpec(&spec)
	checkJSON(t, spec, `{
		"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 53, "protocol": "UDP"}], "resources": {},
			"imagePullPolicy": "Never", "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "FallbackToLogsOnError"}],
		"restartPolicy": "Never", "terminationGracePeriodSeconds": 5, "dnsPolicy": "Default",
		"schedulerName": "other", "enableServiceLinks": false, "securityContext": {}
	}`)
}

func TestDefaultImagePullPolicy(t *testing.T) {
	tests := []struct{ image, want string }{
		{"httpd", PullAlways},
		{"httpd:latest", PullAlways},
		{"httpd:2.4", PullIfNotPresent},
		{"docker.io/library/httpd", PullAlways},
		{"localhost:5000/httpd", PullAlways},
		{"localhost:5000/httpd:2.4", PullIfNotPresent},
		{"httpd@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", PullIfNotPresent},
		{"httpd:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", PullAlways},
	}
	for _, tt := range tests {
		spec := PodSpec{Containers: []Container{{Name: "c", Image: tt.image}}}
		DefaultPodSpec(&spec)
		if got := spec.Containers[0].ImagePullPolicy; got != tt.want {
			t.Errorf("image %q: imagePullPolicy %q, want %q", tt.image, got, tt.want)
		}
	}
}

func TestDefaultHostNetworkPorts(t *testing.T) {
	spec := PodSpec{HostNetwork: true, InitContainers: []Container{{Name: "init", Image: "busybox", Ports: []ContainerPort{{ContainerPort: 9000}}}},
		Containers: []Container{{Name: "c", Image: "busybox", Ports: []ContainerPort{{ContainerPort: 8080}}}}}
	DefaultPodSpec(&spec)
	if spec.Containers[0].Ports[0].HostPort != 8080 || spec.InitContainers[0].Ports[0].HostPort != 9000 {
		t.Errorf("host network ports: %+v %+v", spec.Containers[0].Ports, spec.InitContainers[0].Ports)
	}
}

func TestDefaultService(t *testing.T) {
	tests := []struct {
		name string
		spec ServiceSpec
		want string
	}{
		{"the tutorial's Service",
			ServiceSpec{Selector: map[string]string{"run": "httpd"}, Ports: []ServicePort{{Protocol: "TCP", Port: 8080, TargetPort: FromInt(80)}}},
			`{"ports": [{"protocol": "TCP", "port": 8080, "targetPort": 80}], "selector": {"run": "httpd"},
			  "type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
			  "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}`},
		{"targetPort defaults to port",
			ServiceSpec{Ports: []ServicePort{{Port: 80}, {Name: "b", Port: 443, TargetPort: FromString("")}}},
			`{"ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}, {"name": "b", "protocol": "TCP", "port": 443, "targetPort": 443}],
			  "type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
			  "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}`},
		{"NodePort",
			ServiceSpec{Type: ServiceTypeNodePort, Ports: []ServicePort{{Port: 8080, TargetPort: FromInt(80), NodePort: 31000}}},
			`{"ports": [{"protocol": "TCP", "port": 8080, "targetPort": 80, "nodePort": 31000}],
			  "type": "NodePort", "sessionAffinity": "None", "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
			  "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}`},
		{"LoadBalancer",
			ServiceSpec{Type: ServiceTypeLoadBalancer, Ports: []ServicePort{{Port: 80}}},
			`{"ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}],
			  "type": "LoadBalancer", "sessionAffinity": "None", "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
			  "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "allocateLoadBalancerNodePorts": true}`},
		{"ClientIP affinity",
			ServiceSpec{SessionAffinity: SessionAffinityClientIP, Ports: []ServicePort{{Port: 80}}},
			`{"ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}],
			  "type": "ClusterIP", "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
			  "internalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}`},
		{"clusterIPs mirror clusterIP",
			ServiceSpec{ClusterIP: "10.96.0.10", Ports: []ServicePort{{Port: 53, Protocol: ProtocolUDP}}},
			`{"ports": [{"protocol": "UDP", "port": 53, "targetPort": 53}], "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
			  "type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
			  "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}`},
		{"headless with a selector",
			ServiceSpec{ClusterIP: ClusterIPNone, Selector: map[string]string{"app": "db"}},
			`{"selector": {"app": "db"}, "clusterIP": "None", "clusterIPs": ["None"],
			  "type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
			  "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}`},
		{"headless without a selector",
			ServiceSpec{ClusterIP: ClusterIPNone},
			`{"clusterIP": "None", "clusterIPs": ["None"],
			  "type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
			  "ipFamilies": ["IPv4"], "ipFamilyPolicy": "PreferDualStack"}`},
		{"ExternalName",
			ServiceSpec{Type: ServiceTypeExternalName, ExternalName: "example.com"},
			`{"type": "ExternalName", "externalName": "example.com", "sessionAffinity": "None"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &Service{ObjectMeta: ObjectMeta{Name: "s", Namespace: "default"}, Spec: tt.spec}
			Default(svc)
			checkJSON(t, svc.Spec, tt.want)
		})
	}
}

func TestDefaultDeployment(t *testing.T) {
	d := &Deployment{Spec: DeploymentSpec{Template: PodTemplateSpec{Spec: PodSpec{Containers: []Container{{Name: "c", Image: "httpd:2.4"}}}}}}
	Default(d)
	checkJSON(t, d.Spec, `{
		"replicas": 1,
		"template": {"metadata": {"creationTimestamp": null}, "spec": {
			"containers": [{"name": "c", "image": "httpd:2.4", "imagePullPolicy": "IfNotPresent",
				"terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "resources": {}}],
			"restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
			"schedulerName": "default-scheduler", "enableServiceLinks": true, "securityContext": {}}},
		"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
		"revisionHistoryLimit": 10,
		"progressDeadlineSeconds": 600
	}`)

	recreate := &Deployment{Spec: DeploymentSpec{Replicas: Ptr[int32](0), Strategy: DeploymentStrategy{Type: RecreateStrategy}}}
	Default(recreate)
	if *recreate.Spec.Replicas != 0 || recreate.Spec.Strategy.RollingUpdate != nil {
		t.Errorf("Recreate deployment defaulted to %+v", recreate.Spec)
	}
	partial := &Deployment{Spec: DeploymentSpec{Strategy: DeploymentStrategy{RollingUpdate: &RollingUpdateDeployment{MaxSurge: Ptr(FromInt(1))}}}}
	Default(partial)
	checkJSON(t, partial.Spec.Strategy, `{"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}}`)
}

func TestDefaultOtherKinds(t *testing.T) {
	rs := &ReplicaSet{Spec: ReplicaSetSpec{Template: PodTemplateSpec{Spec: PodSpec{Containers: []Container{{Name: "c", Image: "busybox"}}}}}}
	Default(rs)
	if *rs.Spec.Replicas != 1 || rs.Spec.Template.Spec.RestartPolicy != RestartAlways {
		t.Errorf("ReplicaSet defaulted to %+v", rs.Spec)
	}

	ns := &Namespace{ObjectMeta: ObjectMeta{Name: "kube-public", Namespace: "default"}}
	Default(ns)
	checkJSON(t, ns, `{"metadata": {"name": "kube-public", "creationTimestamp": null, "labels": {"kubernetes.io/metadata.name": "kube-public"}},
		"spec": {}, "status": {"phase": "Active"}}`)

	ep := &Endpoints{Subsets: []EndpointSubset{{Ports: []EndpointPort{{Port: 80}, {Port: 53, Protocol: ProtocolUDP}}}}}
	Default(ep)
	checkJSON(t, ep.Subsets, `[{"ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}]`)

	ev := &Event{}
	Default(ev)
	if ev.Count != 1 || ev.Type != EventNormal {
		t.Errorf("Event defaulted to count %d type %q", ev.Count, ev.Type)
	}
	warning := &Event{Count: 4, Type: EventWarning}
	Default(warning)
	if warning.Count != 4 || warning.Type != EventWarning {
		t.Errorf("Event defaulting changed count %d type %q", warning.Count, warning.Type)
	}

	node := &Node{ObjectMeta: ObjectMeta{Name: "node1", Namespace: "default"}, Status: NodeStatus{Capacity: ResourceList{"cpu": "4", "pods": "110"}}}
	Default(node)
	if node.Namespace != "" || node.Status.Allocatable["pods"] != "110" {
		t.Errorf("Node defaulted to namespace %q allocatable %v", node.Namespace, node.Status.Allocatable)
	}
}

func TestDefaultIsIdempotent(t *testing.T) {
	for _, obj := range []Object{validPod(), validService(), validDeployment(), validReplicaSet()} {
		once, _ := json.Marshal(obj)
		Default(obj)
		twice, _ := json.Marshal(obj)
		if string(once) != string(twice) {
			t.Errorf("%s changed on a second Default:\n  %s\n  %s", KindOf(obj), once, twice)
		}
	}
}

func TestKeepServiceAllocations(t *testing.T) {
	stored := func(typ string, nodePort int32) *Service {
		svc := validService()
		svc.Spec.Type, svc.Spec.ClusterIP, svc.Spec.ClusterIPs = typ, "10.96.0.5", []string{"10.96.0.5"}
		svc.Spec.Ports[0].NodePort = nodePort
		Default(svc)
		return svc
	}
	applied := func(typ string) *Service {
		svc := &Service{ObjectMeta: ObjectMeta{Name: "httpd-svc", Namespace: "default"}, Spec: ServiceSpec{
			Type: typ, Selector: map[string]string{"run": "httpd"}, Ports: []ServicePort{{Port: 8080, TargetPort: FromInt(80)}}}}
		return svc
	}
	tests := []struct {
		name          string
		old, new      *Service
		wantClusterIP string
		wantNodePort  int32
	}{
		{"the tutorial re-applies httpd-svc as a NodePort", stored(ServiceTypeClusterIP, 0), applied(ServiceTypeNodePort), "10.96.0.5", 0},
		{"re-applying a NodePort Service keeps its node port", stored(ServiceTypeNodePort, 31000), applied(ServiceTypeNodePort), "10.96.0.5", 31000},
		{"back to ClusterIP drops it", stored(ServiceTypeNodePort, 31000), applied(ServiceTypeClusterIP), "10.96.0.5", 0},
		{"ExternalName releases the IP", stored(ServiceTypeClusterIP, 0), applied(ServiceTypeExternalName), "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			KeepServiceAllocations(tt.new, tt.old)
			if tt.new.Spec.ClusterIP != tt.wantClusterIP || tt.new.Spec.Ports[0].NodePort != tt.wantNodePort {
				t.Errorf("clusterIP %q nodePort %d, want %q %d", tt.new.Spec.ClusterIP, tt.new.Spec.Ports[0].NodePort, tt.wantClusterIP, tt.wantNodePort)
			}
			if tt.new.Spec.Type == ServiceTypeExternalName {
				return
			}
			Default(tt.new)
			if errs := ValidateUpdate(tt.new, tt.old); len(errs) > 0 {
				t.Errorf("update refused: %v", errs)
			}
		})
	}
}
