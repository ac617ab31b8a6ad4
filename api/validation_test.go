package api

import (
	"strings"
	"testing"
)

// The valid, defaulted objects each validation case breaks in one way.

func validPod() *Pod {
	pod := &Pod{
		ObjectMeta: ObjectMeta{Name: "web", Namespace: "default", Labels: map[string]string{"run": "web"}},
		Spec: PodSpec{
			Containers: []Container{{
				Name:         "web",
				Image:        "httpd:2.4",
				Ports:        []ContainerPort{{Name: "http", ContainerPort: 80}},
				VolumeMounts: []VolumeMount{{Name: "data", MountPath: "/data"}},
			}},
			Volumes: []Volume{{Name: "data", EmptyDir: &EmptyDirVolumeSource{}}},
		},
	}
	Default(pod)
	return pod
}

func validService() *Service {
	svc := &Service{
		ObjectMeta: ObjectMeta{Name: "httpd-svc", Namespace: "default"},
		Spec: ServiceSpec{
			Selector: map[string]string{"run": "httpd"},
			Ports:    []ServicePort{{Port: 8080, TargetPort: FromInt(80)}},
		},
	}
	Default(svc)
	return svc
}

func validDeployment() *Deployment {
	d := &Deployment{
		ObjectMeta: ObjectMeta{Name: "httpd", Namespace: "default"},
		Spec: DeploymentSpec{
			Replicas: Ptr[int32](3),
			Selector: &LabelSelector{MatchLabels: map[string]string{"run": "httpd"}},
			Template: PodTemplateSpec{
				ObjectMeta: ObjectMeta{Labels: map[string]string{"run": "httpd"}},
				Spec:       PodSpec{Containers: []Container{{Name: "httpd", Image: "httpd"}}},
			},
		},
	}
	Default(d)
	return d
}

func validReplicaSet() *ReplicaSet {
	d := validDeployment()
	rs := &ReplicaSet{ObjectMeta: d.ObjectMeta, Spec: ReplicaSetSpec{Replicas: d.Spec.Replicas, Selector: d.Spec.Selector, Template: d.Spec.Template}}
	Default(rs)
	return rs
}

// Mutators: a valid object of each kind, changed by f.

func pod(f func(*Pod)) Object               { o := validPod(); f(o); return o }
func service(f func(*Service)) Object       { o := validService(); f(o); return o }
func deployment(f func(*Deployment)) Object { o := validDeployment(); f(o); return o }
func replicaSet(f func(*ReplicaSet)) Object { o := validReplicaSet(); f(o); return o }

// errorStrings renders FieldErrors as the user sees them, one per problem.
func errorStrings(errs FieldErrors) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

func checkErrors(t *testing.T, got FieldErrors, want []string) {
	t.Helper()
	gotStrings := errorStrings(got)
	if strings.Join(gotStrings, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n  got  %q\n  want %q", gotStrings, want)
	}
}

const (
	subdomainMsg = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
	labelMsg     = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
	dns1035Msg   = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
	portRangeMsg = "must be between 1 and 65535, inclusive"
)

func TestValidateMetadata(t *testing.T) {
	tests := []struct {
		name string
		obj  Object
		want []string
	}{
		{"valid pod", validPod(), nil},
		{"name required", pod(func(p *Pod) { p.Name = "" }),
			[]string{"metadata.name: Required value: name or generateName is required"}},
		{"generateName instead of name", pod(func(p *Pod) { p.Name, p.GenerateName = "", "web-" }), nil},
		{"generateName checked as a prefix", pod(func(p *Pod) { p.Name, p.GenerateName = "", "Web-" }),
			[]string{`metadata.generateName: Invalid value: "Web-": ` + subdomainMsg}},
		{"pod name is a DNS subdomain", pod(func(p *Pod) { p.Name = "Web_1" }),
			[]string{`metadata.name: Invalid value: "Web_1": ` + subdomainMsg}},
		{"pod name may have dots", pod(func(p *Pod) { p.Name = "web.v1" }), nil},
		{"subdomain at most 253 characters", pod(func(p *Pod) { p.Name = strings.Repeat("a", 254) }),
			[]string{`metadata.name: Invalid value: "` + strings.Repeat("a", 254) + `": must be no more than 253 characters`}},
		{"namespace required", pod(func(p *Pod) { p.Namespace = "" }),
			[]string{"metadata.namespace: Required value"}},
		{"namespace is a DNS label", pod(func(p *Pod) { p.Namespace = "kube.public" }),
			[]string{`metadata.namespace: Invalid value: "kube.public": must not contain dots`}},
		{"cluster-scoped kinds have no namespace",
			&Node{ObjectMeta: ObjectMeta{Name: "node1", Namespace: "default"}},
			[]string{"metadata.namespace: Forbidden: not allowed on this type"}},
		{"service name is a DNS-1035 label", service(func(s *Service) { s.Name = "1-svc" }),
			[]string{`metadata.name: Invalid value: "1-svc": ` + dns1035Msg}},
		{"namespace name is a DNS label", &Namespace{ObjectMeta: ObjectMeta{Name: "team.a"}},
			[]string{`metadata.name: Invalid value: "team.a": must not contain dots`}},
		{"label key", pod(func(p *Pod) { p.Labels["bad key"] = "x" }),
			[]string{`metadata.labels: Invalid value: "bad key": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`}},
		{"label key prefix", pod(func(p *Pod) { p.Labels["Example.com/app"] = "x" }),
			[]string{`metadata.labels: Invalid value: "Example.com/app": prefix part ` + subdomainMsg}},
		{"label key with a valid prefix", pod(func(p *Pod) { p.Labels["app.kubernetes.io/name"] = "web" }), nil},
		{"label value at most 63 characters", pod(func(p *Pod) { p.Labels["run"] = strings.Repeat("x", 64) }),
			[]string{`metadata.labels: Invalid value: "` + strings.Repeat("x", 64) + `": must be no more than 63 characters`}},
		{"annotations at most 256 KiB", pod(func(p *Pod) { p.Annotations = map[string]string{"note": strings.Repeat("x", 300000)} }),
			[]string{"metadata.annotations: Invalid value: 300004 bytes: must have at most 262144 bytes"}},
		{"owner references need their identity", pod(func(p *Pod) { p.OwnerReferences = []OwnerReference{{Kind: "ReplicaSet", Name: "web-1"}} }),
			[]string{"metadata.ownerReferences[0].apiVersion: Required value", "metadata.ownerReferences[0].uid: Required value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkErrors(t, Validate(tt.obj), tt.want) })
	}
}

func TestValidatePod(t *testing.T) {
	tests := []struct {
		name string
		obj  Object
		want []string
	}{
		{"containers required", pod(func(p *Pod) { p.Spec.Containers = nil }),
			[]string{"spec.containers: Required value"}},
		{"container name required", pod(func(p *Pod) { p.Spec.Containers[0].Name = "" }),
			[]string{"spec.containers[0].name: Required value"}},
		{"container name is a DNS label", pod(func(p *Pod) { p.Spec.Containers[0].Name = "Web" }),
			[]string{`spec.containers[0].name: Invalid value: "Web": ` + labelMsg}},
		{"container names unique", pod(func(p *Pod) {
			p.Spec.Containers = append(p.Spec.Containers, Container{Name: "web", Image: "busybox"})
			Default(p)
		}), []string{`spec.containers[1].name: Duplicate value: "web"`}},
		{"init container names unique too", pod(func(p *Pod) {
			p.Spec.InitContainers = []Container{{Name: "web", Image: "busybox"}}
			Default(p)
		}), []string{`spec.initContainers[0].name: Duplicate value: "web"`}},
		{"image required", pod(func(p *Pod) { p.Spec.Containers[0].Image = "" }),
			[]string{"spec.containers[0].image: Required value"}},
		{"containerPort required", pod(func(p *Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 0 }),
			[]string{"spec.containers[0].ports[0].containerPort: Required value"}},
		{"containerPort in range", pod(func(p *Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 70000 }),
			[]string{"spec.containers[0].ports[0].containerPort: Invalid value: 70000: " + portRangeMsg}},
		{"hostPort in range", pod(func(p *Pod) { p.Spec.Containers[0].Ports[0].HostPort = -1 }),
			[]string{"spec.containers[0].ports[0].hostPort: Invalid value: -1: " + portRangeMsg}},
		{"port name is an IANA_SVC_NAME", pod(func(p *Pod) { p.Spec.Containers[0].Ports[0].Name = "HTTP--web-port-1" }),
			[]string{
				`spec.containers[0].ports[0].name: Invalid value: "HTTP--web-port-1": must be no more than 15 characters`,
				`spec.containers[0].ports[0].name: Invalid value: "HTTP--web-port-1": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)`,
				`spec.containers[0].ports[0].name: Invalid value: "HTTP--web-port-1": must not contain consecutive hyphens`,
			}},
		{"port name needs a letter", pod(func(p *Pod) { p.Spec.Containers[0].Ports[0].Name = "8080" }),
			[]string{`spec.containers[0].ports[0].name: Invalid value: "8080": must contain at least one letter (a-z)`}},
		{"port names unique", pod(func(p *Pod) {
			p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, ContainerPort{Name: "http", ContainerPort: 8080, Protocol: "TCP"})
		}), []string{`spec.containers[0].ports[1].name: Duplicate value: "http"`}},
		{"port protocol", pod(func(p *Pod) { p.Spec.Containers[0].Ports[0].Protocol = "HTTP" }),
			[]string{`spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"`}},
		{"host ports claimed once", pod(func(p *Pod) {
			p.Spec.Containers[0].Ports[0].HostPort = 8080
			p.Spec.Containers = append(p.Spec.Containers, Container{Name: "side", Image: "busybox", Ports: []ContainerPort{{ContainerPort: 81, HostPort: 8080}}})
			Default(p)
		}), []string{`spec.containers[1].ports[0].hostPort: Duplicate value: "8080/TCP"`}},
		{"restartPolicy", pod(func(p *Pod) { p.Spec.RestartPolicy = "Sometimes" }),
			[]string{`spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"`}},
		{"restartPolicy required (after defaulting)", pod(func(p *Pod) { p.Spec.RestartPolicy = "" }),
			[]string{"spec.restartPolicy: Required value"}},
		{"dnsPolicy", pod(func(p *Pod) { p.Spec.DNSPolicy = "Google" }),
			[]string{`spec.dnsPolicy: Unsupported value: "Google": supported values: "ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"`}},
		{"dnsPolicy None needs dnsConfig", pod(func(p *Pod) { p.Spec.DNSPolicy = DNSNone }),
			[]string{"spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"}},
		{"env name", pod(func(p *Pod) { p.Spec.Containers[0].Env = []EnvVar{{Name: "1ST"}, {Name: ""}} }),
			[]string{
				`spec.containers[0].env[0].name: Invalid value: "1ST": a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')`,
				"spec.containers[0].env[1].name: Required value",
			}},
		{"env from the downward API", pod(func(p *Pod) {
			p.Spec.Containers[0].Env = []EnvVar{
				{Name: "POD_IP", ValueFrom: &EnvVarSource{FieldRef: &ObjectFieldSelector{FieldPath: "status.podIP"}}},
				{Name: "APP", ValueFrom: &EnvVarSource{FieldRef: &ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
				{Name: "BAD", ValueFrom: &EnvVarSource{FieldRef: &ObjectFieldSelector{FieldPath: "spec.bogus"}}},
			}
		}), []string{`spec.containers[0].env[2].valueFrom.fieldRef.fieldPath: Unsupported value: "spec.bogus": supported values: "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.podIP", "status.podIPs"`}},
		{"probe needs a handler", pod(func(p *Pod) { p.Spec.Containers[0].LivenessProbe = &Probe{}; Default(p) }),
			[]string{"spec.containers[0].livenessProbe: Required value: must specify a handler type"}},
		{"probe has one handler", pod(func(p *Pod) {
			p.Spec.Containers[0].ReadinessProbe = &Probe{ProbeHandler: ProbeHandler{
				HTTPGet:   &HTTPGetAction{Port: FromString("http")},
				TCPSocket: &TCPSocketAction{Port: FromInt(80)},
			}}
			Default(p)
		}), []string{"spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type"}},
		{"probe ports", pod(func(p *Pod) {
			p.Spec.Containers[0].LivenessProbe = &Probe{ProbeHandler: ProbeHandler{TCPSocket: &TCPSocketAction{Port: FromInt(0)}}}
			p.Spec.Containers[0].ReadinessProbe = &Probe{ProbeHandler: ProbeHandler{HTTPGet: &HTTPGetAction{Port: FromString("Web")}}}
			Default(p)
		}), []string{
			"spec.containers[0].livenessProbe.tcpSocket.port: Invalid value: 0: " + portRangeMsg,
			`spec.containers[0].readinessProbe.httpGet.port: Invalid value: "Web": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)`,
		}},
		{"liveness probe succeeds once", pod(func(p *Pod) {
			p.Spec.Containers[0].LivenessProbe = &Probe{ProbeHandler: ProbeHandler{Exec: &ExecAction{Command: []string{"true"}}}, SuccessThreshold: 2}
			Default(p)
		}), []string{"spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"}},
		{"volume names unique", pod(func(p *Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, Volume{Name: "data", EmptyDir: &EmptyDirVolumeSource{}})
		}),
			[]string{`spec.volumes[1].name: Duplicate value: "data"`}},
		{"volume has a source", pod(func(p *Pod) { p.Spec.Volumes[0].EmptyDir = nil }),
			[]string{"spec.volumes[0]: Required value: must specify a volume type"}},
		{"mounts refer to volumes", pod(func(p *Pod) { p.Spec.Containers[0].VolumeMounts[0].Name = "cache" }),
			[]string{`spec.containers[0].volumeMounts[0].name: Invalid value: "cache": must match the name of a volume`}},
		{"every problem is listed", pod(func(p *Pod) {
			p.Name = ""
			p.Spec.RestartPolicy = "Sometimes"
			p.Spec.Containers[0].Image = ""
			p.Spec.Containers[0].Ports[0].ContainerPort = 70000
		}), []string{
			"metadata.name: Required value: name or generateName is required",
			"spec.containers[0].image: Required value",
			"spec.containers[0].ports[0].containerPort: Invalid value: 70000: " + portRangeMsg,
			`spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkErrors(t, Validate(tt.obj), tt.want) })
	}
}

func TestValidateService(t *testing.T) {
	tests := []struct {
		name string
		obj  Object
		want []string
	}{
		{"valid", validService(), nil},
		{"ports required", service(func(s *Service) { s.Spec.Ports = nil }),
			[]string{"spec.ports: Required value"}},
		{"headless needs no ports", service(func(s *Service) { s.Spec.Ports, s.Spec.ClusterIP = nil, ClusterIPNone; s.Spec.ClusterIPs = nil }), nil},
		{"port in range", service(func(s *Service) { s.Spec.Ports[0].Port = 0 }),
			[]string{"spec.ports[0].port: Invalid value: 0: " + portRangeMsg}},
		{"port names required when several", service(func(s *Service) {
			s.Spec.Ports = append(s.Spec.Ports, ServicePort{Name: "https", Port: 8443, Protocol: "TCP", TargetPort: FromInt(443)})
		}), []string{"spec.ports[0].name: Required value"}},
		{"port names unique", service(func(s *Service) {
			s.Spec.Ports[0].Name = "web"
			s.Spec.Ports = append(s.Spec.Ports, ServicePort{Name: "web", Port: 8443, Protocol: "TCP", TargetPort: FromInt(443)})
		}), []string{`spec.ports[1].name: Duplicate value: "web"`}},
		{"port and protocol unique", service(func(s *Service) {
			s.Spec.Ports[0].Name = "a"
			s.Spec.Ports = append(s.Spec.Ports, ServicePort{Name: "b", Port: 8080, Protocol: "TCP", TargetPort: FromInt(81)})
		}), []string{`spec.ports[1]: Duplicate value: "8080/TCP"`}},
		{"targetPort number", service(func(s *Service) { s.Spec.Ports[0].TargetPort = FromInt(70000) }),
			[]string{"spec.ports[0].targetPort: Invalid value: 70000: " + portRangeMsg}},
		{"targetPort name", service(func(s *Service) { s.Spec.Ports[0].TargetPort = FromString("80") }),
			[]string{`spec.ports[0].targetPort: Invalid value: "80": must contain at least one letter (a-z)`}},
		{"nodePort in range", service(func(s *Service) {
			s.Spec.Type = ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 70000
			Default(s)
		}), []string{"spec.ports[0].nodePort: Invalid value: 70000: " + portRangeMsg}},
		{"nodePort forbidden for ClusterIP", service(func(s *Service) { s.Spec.Ports[0].NodePort = 31000 }),
			[]string{"spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"}},
		{"type", service(func(s *Service) { s.Spec.Type = "Internal" }),
			[]string{`spec.type: Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"`}},
		{"clusterIP is an IP", service(func(s *Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.300", []string{"10.96.0.300"} }),
			[]string{
				`spec.clusterIP: Invalid value: "10.96.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`,
				`spec.clusterIPs[0]: Invalid value: "10.96.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`,
			}},
		{"clusterIP is IPv4", service(func(s *Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "fd00::1", nil }),
			[]string{"spec.clusterIP: Invalid value: \"fd00::1\": expected an IPv4 value as indicated by `ipFamilies[0]`"}},
		{"clusterIPs follow clusterIP", service(func(s *Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.5", []string{"10.96.0.6"} }),
			[]string{`spec.clusterIPs[0]: Invalid value: "10.96.0.6": must match spec.clusterIP`}},
		{"ExternalName needs externalName", service(func(s *Service) {
			s.Spec.Type = ServiceTypeExternalName
			s.Spec.Ports, s.Spec.InternalTrafficPolicy = nil, nil
		}), []string{"spec.externalName: Required value"}},
		{"ExternalName has no cluster IP", service(func(s *Service) {
			s.Spec.Type, s.Spec.ExternalName = ServiceTypeExternalName, "example.com"
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.5", []string{"10.96.0.5"}
		}), []string{`spec.clusterIP: Invalid value: "10.96.0.5": may not be set for ExternalName services`}},
		{"sessionAffinity", service(func(s *Service) { s.Spec.SessionAffinity = "Cookie" }),
			[]string{`spec.sessionAffinity: Unsupported value: "Cookie": supported values: "ClientIP", "None"`}},
		{"affinity timeout in range", service(func(s *Service) {
			s.Spec.SessionAffinity = SessionAffinityClientIP
			s.Spec.SessionAffinityConfig = &SessionAffinityConfig{ClientIP: &ClientIPConfig{TimeoutSeconds: Ptr[int32](86401)}}
		}), []string{"spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 86401: must be greater than 0 and less than 86400"}},
		{"selector labels", service(func(s *Service) { s.Spec.Selector = map[string]string{"run": "-x"} }),
			[]string{`spec.selector: Invalid value: "-x": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkErrors(t, Validate(tt.obj), tt.want) })
	}
}

func TestValidateDeploymentAndReplicaSet(t *testing.T) {
	tests := []struct {
		name string
		obj  Object
		want []string
	}{
		{"valid deployment", validDeployment(), nil},
		{"valid replicaset", validReplicaSet(), nil},
		{"selector required", deployment(func(d *Deployment) { d.Spec.Selector = nil }),
			[]string{
				"spec.selector: Required value",
				`spec.template.metadata.labels: Invalid value: map[string]string{"run":"httpd"}: ` + "`selector` does not match template `labels`",
			}},
		{"selector not empty", deployment(func(d *Deployment) { d.Spec.Selector = &LabelSelector{} }),
			[]string{"spec.selector: Invalid value: api.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]api.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"}},
		{"selector matches the template", deployment(func(d *Deployment) { d.Spec.Template.Labels = map[string]string{"run": "x"} }),
			[]string{`spec.template.metadata.labels: Invalid value: map[string]string{"run":"x"}: ` + "`selector` does not match template `labels`"}},
		{"selector expressions", deployment(func(d *Deployment) {
			d.Spec.Selector.MatchExpressions = []LabelSelectorRequirement{{Key: "tier", Operator: "Within"}, {Key: "env", Operator: SelectorOpIn}}
		}), []string{
			`spec.selector.matchExpressions[0].operator: Invalid value: "Within": not a valid selector operator`,
			"spec.selector.matchExpressions[1].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
			"spec.selector: Invalid value: api.LabelSelector{MatchLabels:map[string]string{\"run\":\"httpd\"}, MatchExpressions:[]api.LabelSelectorRequirement{api.LabelSelectorRequirement{Key:\"tier\", Operator:\"Within\", Values:[]string(nil)}, api.LabelSelectorRequirement{Key:\"env\", Operator:\"In\", Values:[]string(nil)}}}: invalid label selector",
		}},
		{"replicas not negative", deployment(func(d *Deployment) { d.Spec.Replicas = Ptr[int32](-1) }),
			[]string{"spec.replicas: Invalid value: -1: must be greater than or equal to 0"}},
		{"template restarts always", deployment(func(d *Deployment) { d.Spec.Template.Spec.RestartPolicy = RestartNever }),
			[]string{`spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"`}},
		{"template pod spec validated", deployment(func(d *Deployment) { d.Spec.Template.Spec.Containers[0].Image = "" }),
			[]string{"spec.template.spec.containers[0].image: Required value"}},
		{"Recreate has no rollingUpdate", deployment(func(d *Deployment) { d.Spec.Strategy.Type = RecreateStrategy }),
			[]string{"spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"}},
		{"strategy type", deployment(func(d *Deployment) { d.Spec.Strategy.Type = "BlueGreen" }),
			[]string{`spec.strategy.type: Unsupported value: "BlueGreen": supported values: "Recreate", "RollingUpdate"`}},
		{"maxSurge is a percentage", deployment(func(d *Deployment) { d.Spec.Strategy.RollingUpdate.MaxSurge = Ptr(FromString("half")) }),
			[]string{"spec.strategy.rollingUpdate.maxSurge: Invalid value: half: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"}},
		{"maxUnavailable at most 100%", deployment(func(d *Deployment) { d.Spec.Strategy.RollingUpdate.MaxUnavailable = Ptr(FromString("150%")) }),
			[]string{`spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "150%": must not be greater than 100%`}},
		{"maxSurge may exceed 100%", deployment(func(d *Deployment) { d.Spec.Strategy.RollingUpdate.MaxSurge = Ptr(FromString("200%")) }), nil},
		{"maxUnavailable not negative", deployment(func(d *Deployment) { d.Spec.Strategy.RollingUpdate.MaxUnavailable = Ptr(FromInt(-1)) }),
			[]string{"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: -1: must be greater than or equal to 0"}},
		{"not both zero", deployment(func(d *Deployment) {
			d.Spec.Strategy.RollingUpdate.MaxUnavailable = Ptr(FromString("0%"))
			d.Spec.Strategy.RollingUpdate.MaxSurge = Ptr(FromInt(0))
		}), []string{"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0%: may not be 0 when `maxSurge` is 0"}},
		{"revisionHistoryLimit not negative", deployment(func(d *Deployment) { d.Spec.RevisionHistoryLimit = Ptr[int32](-2) }),
			[]string{"spec.revisionHistoryLimit: Invalid value: -2: must be greater than or equal to 0"}},
		{"progress deadline after minReadySeconds", deployment(func(d *Deployment) { d.Spec.MinReadySeconds = 600 }),
			[]string{"spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"}},
		{"replicaset selector required", replicaSet(func(rs *ReplicaSet) { rs.Spec.Selector = nil }),
			[]string{
				"spec.selector: Required value",
				`spec.template.metadata.labels: Invalid value: map[string]string{"run":"httpd"}: ` + "`selector` does not match template `labels`",
			}},
		{"replicaset replicas not negative", replicaSet(func(rs *ReplicaSet) { rs.Spec.Replicas = Ptr[int32](-1) }),
			[]string{"spec.replicas: Invalid value: -1: must be greater than or equal to 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkErrors(t, Validate(tt.obj), tt.want) })
	}
}

func TestValidateOtherKinds(t *testing.T) {
	tests := []struct {
		name string
		obj  Object
		want []string
	}{
		{"valid node", &Node{ObjectMeta: ObjectMeta{Name: "node1"}, Spec: NodeSpec{PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24"}}}, nil},
		{"node podCIDR", &Node{ObjectMeta: ObjectMeta{Name: "node1"}, Spec: NodeSpec{PodCIDR: "10.244.1.0"}},
			[]string{`spec.podCIDR: Invalid value: "10.244.1.0": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)`}},
		{"node taint effect", &Node{ObjectMeta: ObjectMeta{Name: "node1"}, Spec: NodeSpec{Taints: []Taint{{Key: "dedicated", Effect: "Never"}}}},
			[]string{`spec.taints[0].effect: Unsupported value: "Never": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"`}},
		{"valid endpoints", &Endpoints{ObjectMeta: ObjectMeta{Name: "httpd-svc", Namespace: "default"}, Subsets: []EndpointSubset{{
			Addresses: []EndpointAddress{{IP: "10.244.1.5"}}, Ports: []EndpointPort{{Port: 80, Protocol: "TCP"}}}}}, nil},
		{"endpoints addresses and ports", &Endpoints{ObjectMeta: ObjectMeta{Name: "httpd-svc", Namespace: "default"}, Subsets: []EndpointSubset{{
			Addresses: []EndpointAddress{{IP: "10.244.1"}}, Ports: []EndpointPort{{Port: 0, Protocol: "TCP"}}}}},
			[]string{
				`subsets[0].addresses[0].ip: Invalid value: "10.244.1": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`,
				"subsets[0].ports[0].port: Invalid value: 0: " + portRangeMsg,
			}},
		{"event names its object", &Event{ObjectMeta: ObjectMeta{Name: "web.1", Namespace: "default"}, Type: EventNormal},
			[]string{"involvedObject.kind: Required value", "involvedObject.name: Required value"}},
		{"event type", &Event{ObjectMeta: ObjectMeta{Name: "web.1", Namespace: "default"}, InvolvedObject: ObjectReference{Kind: "Pod", Name: "web", Namespace: "default"}, Type: "Info"},
			[]string{`type: Unsupported value: "Info": supported values: "Normal", "Warning"`}},
		{"event in its object's namespace", &Event{ObjectMeta: ObjectMeta{Name: "web.1", Namespace: "default"}, InvolvedObject: ObjectReference{Kind: "Pod", Name: "web", Namespace: "kube-system"}, Type: EventNormal},
			[]string{`involvedObject.namespace: Invalid value: "kube-system": does not match event.namespace`}},
		{"lease duration", &Lease{ObjectMeta: ObjectMeta{Name: "node1", Namespace: "kube-node-lease"}, Spec: LeaseSpec{LeaseDurationSeconds: Ptr[int32](0)}},
			[]string{"spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"}},
		{"valid namespace", &Namespace{ObjectMeta: ObjectMeta{Name: "kube-public"}}, nil},
		{"binding target", &Binding{ObjectMeta: ObjectMeta{Name: "web", Namespace: "default"}},
			[]string{"target.name: Required value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			Default(tt.obj)
			checkErrors(t, Validate(tt.obj), tt.want)
		})
	}
}

func TestValidateUpdate(t *testing.T) {
	tests := []struct {
		name     string
		old, new Object
		want     []string
	}{
		{"unchanged pod", validPod(), validPod(), nil},
		{"pod image may change", validPod(), pod(func(p *Pod) { p.Spec.Containers[0].Image = "httpd:2.5" }), nil},
		{"pod activeDeadlineSeconds may change", validPod(), pod(func(p *Pod) { p.Spec.ActiveDeadlineSeconds = Ptr[int64](60) }), nil},
		{"pod tolerations may be added",
			pod(func(p *Pod) { p.Spec.Tolerations = []Toleration{{Key: "a", Operator: "Exists"}} }),
			pod(func(p *Pod) {
				p.Spec.Tolerations = []Toleration{{Key: "a", Operator: "Exists"}, {Key: "b", Operator: "Exists"}}
			}), nil},
		{"pod tolerations may not be removed",
			pod(func(p *Pod) { p.Spec.Tolerations = []Toleration{{Key: "a", Operator: "Exists"}} }), validPod(),
			[]string{"spec: Forbidden: " + podUpdateForbiddenMsg}},
		{"pod ports may not change", validPod(), pod(func(p *Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 8080 }),
			[]string{"spec: Forbidden: " + podUpdateForbiddenMsg}},
		{"pod nodeName may be set once", validPod(), pod(func(p *Pod) { p.Spec.NodeName = "node1" }), nil},
		{"pod nodeName then stays", pod(func(p *Pod) { p.Spec.NodeName = "node1" }), pod(func(p *Pod) { p.Spec.NodeName = "node2" }),
			[]string{`spec.nodeName: Invalid value: "node2": field is immutable`}},
		{"name is immutable", validPod(), pod(func(p *Pod) { p.Name = "web2" }),
			[]string{`metadata.name: Invalid value: "web2": field is immutable`}},
		{"deployment selector is immutable", validDeployment(), deployment(func(d *Deployment) {
			d.Spec.Selector = &LabelSelector{MatchLabels: map[string]string{"run": "httpd", "tier": "web"}}
			d.Spec.Template.Labels["tier"] = "web"
		}), []string{`spec.selector: Invalid value: api.LabelSelector{MatchLabels:map[string]string{"run":"httpd", "tier":"web"}, MatchExpressions:[]api.LabelSelectorRequirement(nil)}: field is immutable`}},
		{"deployment replicas may change", validDeployment(), deployment(func(d *Deployment) { d.Spec.Replicas = Ptr[int32](5) }), nil},
		{"replicaset selector is immutable", validReplicaSet(), replicaSet(func(rs *ReplicaSet) {
			rs.Spec.Selector = &LabelSelector{MatchLabels: map[string]string{"run": "httpd", "tier": "web"}}
			rs.Spec.Template.Labels["tier"] = "web"
		}), []string{`spec.selector: Invalid value: api.LabelSelector{MatchLabels:map[string]string{"run":"httpd", "tier":"web"}, MatchExpressions:[]api.LabelSelectorRequirement(nil)}: field is immutable`}},
		{"service clusterIP may be allocated", validService(), service(func(s *Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.5", []string{"10.96.0.5"} }), nil},
		{"service clusterIP then stays",
			service(func(s *Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.5", []string{"10.96.0.5"} }),
			service(func(s *Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.6", []string{"10.96.0.6"} }),
			[]string{`spec.clusterIP: Invalid value: "10.96.0.6": field is immutable`}},
		{"service clusterIP released by ExternalName",
			service(func(s *Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.5", []string{"10.96.0.5"} }),
			&Service{ObjectMeta: ObjectMeta{Name: "httpd-svc", Namespace: "default"}, Spec: ServiceSpec{Type: ServiceTypeExternalName, ExternalName: "example.com", SessionAffinity: SessionAffinityNone}},
			nil},
		{"node podCIDR stays",
			&Node{ObjectMeta: ObjectMeta{Name: "node1"}, Spec: NodeSpec{PodCIDR: "10.244.1.0/24"}},
			&Node{ObjectMeta: ObjectMeta{Name: "node1"}, Spec: NodeSpec{PodCIDR: "10.244.2.0/24"}},
			[]string{`spec.podCIDR: Forbidden: node updates may not change podCIDR except from "" to valid`}},
		{"kind may not change", validPod(), validService(),
			[]string{`kind: Invalid value: "Service": may not change from "Pod"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkErrors(t, ValidateUpdate(tt.new, tt.old), tt.want) })
	}
}

func TestNameCheckers(t *testing.T) {
	tests := []struct {
		check func(string) []string
		value string
		valid bool
	}{
		{IsDNS1123Label, "my-name", true},
		{IsDNS1123Label, "123-abc", true},
		{IsDNS1123Label, "-abc", false},
		{IsDNS1123Label, "a.b", false},
		{IsDNS1123Label, strings.Repeat("a", 64), false},
		{IsDNS1123Subdomain, "example.com", true},
		{IsDNS1123Subdomain, "Example.com", false},
		{IsDNS1035Label, "abc-123", true},
		{IsDNS1035Label, "1abc", false},
		{IsValidPortName, "http", true},
		{IsValidPortName, "h2c-8080", true},
		{IsValidPortName, "-http", false},
		{IsValidPortName, "", false},
		{IsQualifiedName, "app", true},
		{IsQualifiedName, "app.kubernetes.io/name", true},
		{IsQualifiedName, "a/b/c", false},
		{IsQualifiedName, "/name", false},
		{IsQualifiedName, "", false},
		{IsValidLabelValue, "", true},
		{IsValidLabelValue, "my_value.1", true},
		{IsValidLabelValue, "has space", false},
	}
	for _, tt := range tests {
		if got := len(tt.check(tt.value)) == 0; got != tt.valid {
			t.Errorf("check(%q) valid = %v, want %v (%q)", tt.value, got, tt.valid, tt.check(tt.value))
		}
	}
}
