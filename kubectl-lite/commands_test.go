package kubectl

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kubelite/api"
	"kubelite/api/client"
)

// tutorialCluster is the fake server with the tutorial's objects in it.
func tutorialCluster(t *testing.T) *fakeServer {
	fs := newFakeServer(t)
	for _, ns := range api.SystemNamespaces() {
		fs.add(&api.Namespace{ObjectMeta: api.ObjectMeta{Name: ns, CreationTimestamp: ago(24 * time.Hour)}, Status: api.NamespaceStatus{Phase: "Active"}})
	}
	fs.add(serviceFixtures()[0])
	fs.add(clusterIPService())
	fs.add(httpdEndpoints("10.244.1.2", "10.244.2.3", "10.244.3.4"))
	fs.add(httpdDeployment())
	fs.add(httpdReplicaSet())
	fs.add(runningPod("httpd-5d8f7c6b9-x7k2p", "10.244.1.2", "node1", 5*time.Minute))
	fs.add(runningPod("httpd-5d8f7c6b9-b4n8q", "10.244.2.3", "node2", 5*time.Minute))
	for _, n := range nodeFixtures() {
		fs.add(n)
	}
	for _, e := range httpdEvents() {
		fs.add(&e)
	}
	return fs
}

func TestGetTable(t *testing.T) {
	fs := tutorialCluster(t)
	out, errOut, code := fs.run("", "get", "svc")
	want := "NAME         TYPE        CLUSTER-IP       EXTERNAL-IP   PORT(S)    AGE\n" +
		"httpd-svc    ClusterIP   10.102.120.255   <none>        8080/TCP   45s\n" +
		"kubernetes   ClusterIP   10.96.0.1        <none>        443/TCP    3d19h\n"
	if code != 0 || out != want || errOut != "" {
		t.Errorf("get svc: code %d\nstdout:\n%s\nstderr: %q\nwant:\n%s", code, out, errOut, want)
	}
}

func TestGetSeveralTypesPrintsKindsAndBlankLines(t *testing.T) {
	fs := tutorialCluster(t)
	out, _, code := fs.run("", "get", "deploy,svc")
	want := "NAME                    READY   UP-TO-DATE   AVAILABLE   AGE\n" +
		"deployment.apps/httpd   3/3     3            3           3m12s\n" +
		"\n" +
		"NAME                 TYPE        CLUSTER-IP       EXTERNAL-IP   PORT(S)    AGE\n" +
		"service/httpd-svc    ClusterIP   10.102.120.255   <none>        8080/TCP   45s\n" +
		"service/kubernetes   ClusterIP   10.96.0.1        <none>        443/TCP    3d19h\n"
	if code != 0 || out != want {
		t.Errorf("get deploy,svc: code %d\n%s\nwant:\n%s", code, out, want)
	}
}

func TestGetOutputFormats(t *testing.T) {
	fs := tutorialCluster(t)

	out, _, code := fs.run("", "get", "po", "-o", "name")
	if code != 0 || out != "pod/httpd-5d8f7c6b9-b4n8q\npod/httpd-5d8f7c6b9-x7k2p\n" {
		t.Errorf("-o name: code %d, %q", code, out)
	}

	out, _, code = fs.run("", "get", "svc/httpd-svc", "-o", "json")
	var svc api.Service
	if err := json.Unmarshal([]byte(out), &svc); code != 0 || err != nil || svc.Kind != "Service" || svc.Spec.ClusterIP != "10.102.120.255" {
		t.Errorf("-o json of one object: code %d, err %v\n%s", code, err, out)
	}
	if !strings.HasPrefix(out, "{\n    \"apiVersion\": \"v1\",\n    \"kind\": \"Service\",\n") {
		t.Errorf("-o json is not kubectl's layout:\n%s", out)
	}

	out, _, code = fs.run("", "get", "deployments", "-o", "yaml")
	if code != 0 || !strings.HasPrefix(out, "apiVersion: v1\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n") ||
		!strings.HasSuffix(out, "kind: List\nmetadata:\n  resourceVersion: \"\"\n") {
		t.Errorf("-o yaml of a list: code %d\n%s", code, out)
	}

	out, _, code = fs.run("", "get", "pods", "-l", "run=nothing", "-o", "json")
	var list struct {
		Kind  string            `json:"kind"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || list.Kind != "List" || list.Items == nil || len(list.Items) != 0 {
		t.Errorf("-o json of nothing: code %d, %s", code, out)
	}
}

func TestGetSelectorsAndNamespaces(t *testing.T) {
	fs := tutorialCluster(t)
	fs.run("", "get", "pods", "-l", "run=httpd", "--field-selector", "spec.nodeName=node1")
	if !containsRequest(fs.requestLog(), "GET /api/v1/namespaces/default/pods?fieldSelector=spec.nodeName%3Dnode1&labelSelector=run%3Dhttpd") {
		t.Errorf("selectors not sent: %v", fs.requestLog())
	}
	out, _, _ := fs.run("", "get", "pods", "-l", "run=httpd", "--field-selector", "spec.nodeName=node1", "--no-headers")
	if !strings.HasPrefix(out, "httpd-5d8f7c6b9-x7k2p ") || strings.Count(out, "\n") != 1 {
		t.Errorf("filtered get: %q", out)
	}

	out, _, _ = fs.run("", "get", "svc", "-A")
	if !strings.HasPrefix(out, "NAMESPACE   NAME         TYPE") {
		t.Errorf("-A has no NAMESPACE column:\n%s", out)
	}
	if !containsRequest(fs.requestLog(), "GET /api/v1/services") {
		t.Errorf("-A did not list across namespaces: %v", fs.requestLog())
	}

	_, errOut, code := fs.run("", "get", "pods", "-n", "kube-public")
	if code != 0 || errOut != "No resources found in kube-public namespace.\n" {
		t.Errorf("empty namespace: code %d, stderr %q", code, errOut)
	}
	out, _, _ = fs.run("", "get", "nodes", "--show-labels")
	if !strings.Contains(out, "LABELS") || !strings.Contains(out, "kubernetes.io/hostname=node1") {
		t.Errorf("--show-labels:\n%s", out)
	}
}

func TestGetErrors(t *testing.T) {
	fs := tutorialCluster(t)
	tests := []struct {
		args    []string
		wantErr string
		wantOut string
	}{
		{[]string{"get", "pod", "nope"}, "Error from server (NotFound): pods \"nope\" not found\n", ""},
		{[]string{"get", "deploy", "nope"}, "Error from server (NotFound): deployments.apps \"nope\" not found\n", ""},
		{[]string{"get", "frobs"}, "error: the server doesn't have a resource type \"frobs\"\n", ""},
		{[]string{"get", "pods", "x", "-l", "a=b"}, "error: name cannot be provided when a selector is specified\n", ""},
		{[]string{"get", "pods", "-o", "table"}, "error: unable to match a printer suitable for the output format \"table\", allowed formats are: wide,name,json,yaml\n", ""},
		{[]string{"get"}, "error: You must specify the type of resource to get. Use \"kubectl-lite api-resources\" for a complete list of supported resources.\nSee 'kubectl-lite get -h' for help and examples\n", ""},
		{[]string{"frob"}, "error: unknown command \"frob\" for \"kubectl-lite\"\nRun 'kubectl-lite --help' for usage\n", ""},
		{[]string{"rollout", "frob"}, "error: unknown command \"frob\" for \"kubectl-lite rollout\"\nRun 'kubectl-lite rollout --help' for usage\n", ""},
		{[]string{"get", "pods", "--frob"}, "error: unknown flag: --frob\nSee 'kubectl-lite get -h' for help and examples\n", ""},
	}
	for _, tt := range tests {
		out, errOut, code := fs.run("", tt.args...)
		if code != 1 || errOut != tt.wantErr || out != tt.wantOut {
			t.Errorf("%v: code %d, stdout %q, stderr %q; want stderr %q", tt.args, code, out, errOut, tt.wantErr)
		}
	}
	// The objects that exist are printed; the missing one is an error.
	out, errOut, code := fs.run("", "get", "pods", "httpd-5d8f7c6b9-x7k2p", "nope", "-o", "name")
	if code != 1 || out != "pod/httpd-5d8f7c6b9-x7k2p\n" || errOut != "Error from server (NotFound): pods \"nope\" not found\n" {
		t.Errorf("partial get: code %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestGetWatchPrintsARowPerEvent(t *testing.T) {
	fs := tutorialCluster(t)
	next := runningPod("httpd-5d8f7c6b9-new01", "", "node3", 0)
	next.Status.Phase = api.PodPending
	next.Status.ContainerStatuses[0].Ready = false
	next.Status.ContainerStatuses[0].State = api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: "ContainerCreating"}}
	running := runningPod("httpd-5d8f7c6b9-new01", "10.244.3.9", "node3", 0)
	fs.watchEvents["pods"] = []api.WatchEvent{
		{Type: api.Added, Object: mustMarshal(t, next)},
		{Type: api.Modified, Object: mustMarshal(t, running)},
	}
	out, errOut, code := fs.run("", "get", "pods", "-w")
	want := "NAME                    READY   STATUS    RESTARTS   AGE\n" +
		"httpd-5d8f7c6b9-b4n8q   1/1     Running   0          5m\n" +
		"httpd-5d8f7c6b9-x7k2p   1/1     Running   0          5m\n" +
		"httpd-5d8f7c6b9-new01   0/1     ContainerCreating   0          0s\n" +
		"httpd-5d8f7c6b9-new01   1/1     Running             0          0s\n"
	if code != 0 || out != want {
		t.Errorf("get -w: code %d, stderr %q\n%s\nwant:\n%s", code, errOut, out, want)
	}
	for _, r := range fs.requestLog() {
		if strings.Contains(r, "watch=true") && !strings.Contains(r, "resourceVersion=") {
			t.Errorf("the watch does not continue from the list: %s", r)
		}
	}
}

func mustMarshal(t *testing.T, v any) json.RawMessage {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestDescribeServiceShowsEndpoints(t *testing.T) {
	fs := tutorialCluster(t)
	out, errOut, code := fs.run("", "describe", "service", "httpd-svc")
	if code != 0 {
		t.Fatalf("describe: code %d, stderr %q", code, errOut)
	}
	for _, line := range []string{
		"Name:                     httpd-svc\n",
		"Endpoints:                10.244.1.2:80,10.244.2.3:80,10.244.3.4:80\n",
		"Events:                   <none>\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("describe output lacks %q:\n%s", line, out)
		}
	}
	if !containsRequest(fs.requestLog(), "GET /api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dhttpd-svc%2CinvolvedObject.namespace%3Ddefault%2CinvolvedObject.uid%3Duid-svc") {
		t.Errorf("events not searched by the involved object: %v", fs.requestLog())
	}
}

func TestDescribePrefixAndEvents(t *testing.T) {
	fs := tutorialCluster(t)
	out, errOut, code := fs.run("", "describe", "pods", "httpd-5d8f7c6b9")
	if code != 0 || strings.Count(out, "Name:         httpd-5d8f7c6b9-") != 2 {
		t.Errorf("prefix describe: code %d, stderr %q\n%s", code, errOut, out)
	}
	if !strings.Contains(out, "Warning  BackOff    4m (x3 over 5m)  kubelet            Back-off pulling image \"httpd\"") {
		t.Errorf("the pod's events are missing:\n%s", out)
	}
	_, errOut, code = fs.run("", "describe", "pods", "zzz")
	if code != 1 || errOut != "Error from server (NotFound): pods \"zzz\" not found\n" {
		t.Errorf("describe of nothing: code %d, stderr %q", code, errOut)
	}
	out, _, code = fs.run("", "describe", "deploy/httpd")
	if code != 0 || !strings.Contains(out, "NewReplicaSet:   httpd-5d8f7c6b9 (3/3 replicas created)") {
		t.Errorf("describe deployment: code %d\n%s", code, out)
	}
	out, _, code = fs.run("", "describe", "rs", "httpd-5d8f7c6b9")
	if code != 0 || !strings.Contains(out, "Pods Status:    2 Running / 0 Waiting / 0 Succeeded / 0 Failed") {
		t.Errorf("describe replicaset: code %d\n%s", code, out)
	}
	out, _, code = fs.run("", "describe", "node", "node1")
	if code != 0 || !strings.Contains(out, "Non-terminated Pods:          (1 in total)") {
		t.Errorf("describe node: code %d\n%s", code, out)
	}
	out, _, code = fs.run("", "describe", "ns", "default")
	if code != 0 || !strings.HasSuffix(out, "No LimitRange resource.\n") {
		t.Errorf("describe namespace: code %d\n%s", code, out)
	}
}

func TestDelete(t *testing.T) {
	fs := tutorialCluster(t)
	out, errOut, code := fs.run("", "delete", "pod", "httpd-5d8f7c6b9-x7k2p", "--now")
	if code != 0 || out != "pod \"httpd-5d8f7c6b9-x7k2p\" deleted\n" {
		t.Errorf("delete pod: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if fs.get("pods", "default", "httpd-5d8f7c6b9-x7k2p") != nil {
		t.Error("the pod still exists")
	}

	out, errOut, code = fs.run("", "delete", "pods", "-l", "run=httpd", "--wait=false", "--cascade=orphan")
	if code != 0 || out != "pod \"httpd-5d8f7c6b9-b4n8q\" deleted\n" {
		t.Errorf("delete -l: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, _, code = fs.run("", "delete", "pods", "--all")
	if code != 0 || out != "No resources found\n" {
		t.Errorf("delete --all of nothing: code %d, stdout %q", code, out)
	}

	_, errOut, code = fs.run("", "delete", "deploy", "nope")
	if code != 1 || errOut != "Error from server (NotFound): deployments.apps \"nope\" not found\n" {
		t.Errorf("delete of a missing object: code %d, stderr %q", code, errOut)
	}
	_, errOut, code = fs.run("", "delete", "pods")
	if code != 1 || errOut != "error: resource(s) were provided, but no name was specified\n" {
		t.Errorf("delete without names: code %d, stderr %q", code, errOut)
	}

	writeFiles(t, map[string]string{"httpd-svc.yml": httpdSvcYAML})
	out, errOut, code = fs.run("", "delete", "-f", "httpd-svc.yml")
	if code != 0 || out != "service \"httpd-svc\" deleted\n" {
		t.Errorf("delete -f: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	_, errOut, code = fs.run("", "delete", "-f", "httpd-svc.yml")
	if code != 1 || errOut != "Error from server (NotFound): error when deleting \"httpd-svc.yml\": services \"httpd-svc\" not found\n" {
		t.Errorf("second delete -f: code %d, stderr %q", code, errOut)
	}
}

func TestScale(t *testing.T) {
	fs := tutorialCluster(t)
	out, errOut, code := fs.run("", "scale", "deploy/httpd", "--replicas=5")
	if code != 0 || out != "deployment.apps/httpd scaled\n" {
		t.Fatalf("scale: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got := nested(fs.get("deployments", "default", "httpd"), "spec", "replicas"); got != json.Number("5") {
		t.Errorf("replicas = %v, want 5", got)
	}
	log := fs.requestLog()
	if !containsRequest(log, "GET /apis/apps/v1/namespaces/default/deployments/httpd/scale") ||
		!containsRequest(log, "PUT /apis/apps/v1/namespaces/default/deployments/httpd/scale") {
		t.Errorf("scale did not go through the scale subresource: %v", log)
	}

	_, errOut, code = fs.run("", "scale", "deployment", "httpd", "--replicas=2", "--current-replicas=3")
	if code != 1 || errOut != "error: Expected replicas to be 3, was 5\n" {
		t.Errorf("precondition: code %d, stderr %q", code, errOut)
	}
	out, _, code = fs.run("", "scale", "deployment", "httpd", "--replicas=0")
	if code != 0 || out != "deployment.apps/httpd scaled\n" || nested(fs.get("deployments", "default", "httpd"), "spec", "replicas") != json.Number("0") {
		t.Errorf("scale to zero: code %d, %q", code, out)
	}
	_, errOut, code = fs.run("", "scale", "deploy/httpd")
	if code != 1 || errOut != "error: The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0\n" {
		t.Errorf("scale without --replicas: code %d, stderr %q", code, errOut)
	}
}

func TestRolloutStatusFollowsTheDeployment(t *testing.T) {
	fs := newFakeServer(t)
	d := httpdDeployment()
	d.Status = api.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 1}
	fs.add(d)
	step := func(available int32) json.RawMessage {
		next := httpdDeployment()
		next.Status = api.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: available}
		return mustMarshal(t, next)
	}
	fs.watchEvents["deployments"] = []api.WatchEvent{
		{Type: api.Modified, Object: step(2)},
		{Type: api.Modified, Object: step(3)},
	}
	out, errOut, code := fs.run("", "rollout", "status", "deploy/httpd")
	want := "Waiting for deployment \"httpd\" rollout to finish: 1 of 3 updated replicas are available...\n" +
		"Waiting for deployment \"httpd\" rollout to finish: 2 of 3 updated replicas are available...\n" +
		"deployment \"httpd\" successfully rolled out\n"
	if code != 0 || out != want {
		t.Errorf("rollout status: code %d, stderr %q\n%s", code, errOut, out)
	}

	_, errOut, code = fs.run("", "rollout", "status", "deployment", "nope")
	if code != 1 || errOut != "Error from server (NotFound): deployments.apps \"nope\" not found\n" {
		t.Errorf("rollout status of nothing: code %d, stderr %q", code, errOut)
	}
}

func TestDeploymentRolloutStatusMessages(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(d *api.Deployment)
		want     string
		wantDone bool
	}{
		{"spec not observed", func(d *api.Deployment) { d.Generation = 2 }, "Waiting for deployment spec update to be observed...\n", false},
		{"updating", func(d *api.Deployment) { d.Status.UpdatedReplicas = 1 },
			"Waiting for deployment \"httpd\" rollout to finish: 1 out of 3 new replicas have been updated...\n", false},
		{"old pending", func(d *api.Deployment) { d.Status.Replicas = 4 },
			"Waiting for deployment \"httpd\" rollout to finish: 1 old replicas are pending termination...\n", false},
		{"done", func(d *api.Deployment) {}, "deployment \"httpd\" successfully rolled out\n", true},
	}
	for _, tt := range tests {
		d := httpdDeployment()
		tt.mutate(d)
		got, done, err := deploymentRolloutStatus(d)
		if err != nil || got != tt.want || done != tt.wantDone {
			t.Errorf("%s: got %q %v %v, want %q %v", tt.name, got, done, err, tt.want, tt.wantDone)
		}
	}
	d := httpdDeployment()
	d.Status.Conditions = append(d.Status.Conditions, api.DeploymentCondition{Type: api.DeploymentProgressing, Reason: progressDeadlineExceeded})
	if _, _, err := deploymentRolloutStatus(d); err == nil || err.Error() != `deployment "httpd" exceeded its progress deadline` {
		t.Errorf("stuck rollout: %v", err)
	}
}

func TestCreate(t *testing.T) {
	fs := tutorialCluster(t)
	out, errOut, code := fs.run("", "create", "namespace", "demo")
	if code != 0 || out != "namespace/demo created\n" {
		t.Errorf("create namespace: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = fs.run("", "create", "deployment", "web", "--image=docker.io/library/httpd:2.4", "--replicas=2", "--port=80", "-n", "demo")
	if code != 0 || out != "deployment.apps/web created\n" {
		t.Fatalf("create deployment: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	var d api.Deployment
	data, _ := json.Marshal(fs.get("deployments", "demo", "web"))
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers
	if *d.Spec.Replicas != 2 || d.Spec.Selector.MatchLabels["app"] != "web" || d.Spec.Template.Labels["app"] != "web" ||
		len(c) != 1 || c[0].Name != "httpd" || c[0].Image != "docker.io/library/httpd:2.4" || c[0].Ports[0].ContainerPort != 80 {
		t.Errorf("created deployment: %s", data)
	}

	out, _, code = fs.run("", "create", "deployment", "dry", "--image=busybox", "--dry-run=client", "-o", "name")
	if code != 0 || out != "deployment.apps/dry\n" || fs.get("deployments", "default", "dry") != nil {
		t.Errorf("dry run: code %d, %q", code, out)
	}

	writeFiles(t, map[string]string{"httpd-svc.yml": httpdSvcYAML})
	_, errOut, code = fs.run("", "create", "-f", "httpd-svc.yml")
	if code != 1 || errOut != "Error from server (AlreadyExists): error when creating \"httpd-svc.yml\": services \"httpd-svc\" already exists\n" {
		t.Errorf("create of an existing object: code %d, stderr %q", code, errOut)
	}
}

func TestVersionAPIResourcesAndClusterInfo(t *testing.T) {
	fs := tutorialCluster(t)
	out, _, code := fs.run("", "version")
	if code != 0 || out != "Client Version: "+clientVersion+"\nServer Version: v1.32.0-kubelite\n" {
		t.Errorf("version: code %d, %q", code, out)
	}
	out, _, code = fs.run("", "api-resources")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 10 ||
		lines[0] != "NAME          SHORTNAMES   APIVERSION               NAMESPACED   KIND" ||
		lines[1] != "endpoints     ep           v1                       true         Endpoints" ||
		lines[7] != "deployments   deploy       apps/v1                  true         Deployment" ||
		lines[9] != "leases                     coordination.k8s.io/v1   true         Lease" {
		t.Errorf("api-resources: code %d\n%s", code, out)
	}
	out, _, _ = fs.run("", "api-resources", "--namespaced=false", "-o", "name")
	if out != "namespaces\nnodes\n" {
		t.Errorf("api-resources --namespaced=false -o name: %q", out)
	}

	dns := &api.Service{ObjectMeta: api.ObjectMeta{Name: "kube-dns", Namespace: "kube-system",
		Labels: map[string]string{"kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"}},
		Spec: api.ServiceSpec{ClusterIP: "10.96.0.10", Ports: []api.ServicePort{{Name: "dns", Port: 53, Protocol: "UDP"}}}}
	fs.add(dns)
	out, _, code = fs.run("", "cluster-info")
	want := "Kubernetes control plane is running at " + fs.server.URL + "\n" +
		"CoreDNS is running at " + fs.server.URL + "/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy\n"
	if code != 0 || !strings.HasPrefix(out, want) {
		t.Errorf("cluster-info: code %d\n%s\nwant prefix\n%s", code, out, want)
	}
}

func TestKubeconfigResolution(t *testing.T) {
	fs := tutorialCluster(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "admin.kubeconfig")
	if err := client.WriteKubeconfig(path, &client.Config{Server: fs.server.URL, Token: "t", Namespace: "kube-public"}, "kubelite", "admin"); err != nil {
		t.Fatal(err)
	}
	run := func(env environment, args ...string) (string, string, int) {
		var out, errOut strings.Builder
		cmd := newRootCommand(IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, env)
		cmd.SetArgs(args)
		err := cmd.Execute()
		return out.String(), errOut.String(), ExitCode(err)
	}

	// The local server's admin kubeconfig is the last resort, and its
	// context's namespace is the default namespace.
	env := testEnvironment(t)
	env.adminKubeconfig = path
	if _, errOut, code := run(env, "get", "pods"); code != 0 || errOut != "No resources found in kube-public namespace.\n" {
		t.Errorf("admin kubeconfig: code %d, stderr %q", code, errOut)
	}
	// $KUBECONFIG comes first; -n wins over the context.
	env = testEnvironment(t)
	env.getenv = func(k string) string {
		if k == "KUBECONFIG" {
			return filepath.Join(dir, "missing") + string(os.PathListSeparator) + path
		}
		return ""
	}
	if out, errOut, code := run(env, "get", "pods", "-n", "default", "-o", "name"); code != 0 || out != "pod/httpd-5d8f7c6b9-b4n8q\npod/httpd-5d8f7c6b9-x7k2p\n" {
		t.Errorf("$KUBECONFIG: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Nothing to connect to.
	if _, errOut, code := run(testEnvironment(t), "get", "pods"); code != 1 || !strings.HasPrefix(errOut, "error: no kubeconfig found") {
		t.Errorf("no kubeconfig: code %d, stderr %q", code, errOut)
	}
}
