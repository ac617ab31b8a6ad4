package kubectl

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kubelite/api"
)

// The tutorial's manifests, as users type them.
const (
	httpdYAML = `apiVersion: apps/v1beta1
kind: Deployment
metadata:
  name: httpd
spec:
  replicas: 3
  template:
    metadata:
      labels:
        run: httpd
    spec:
      containers:
      - name: httpd
        image: httpd
        ports:
        - containerPort: 80
`
	httpdSvcYAML = `apiVersion: v1
kind: Service
metadata:
  name: httpd-svc
spec:
  selector:
    run: httpd
  ports:
  - protocol: TCP
    port: 8080
    targetPort: 80
`
	// httpd2YAML has the tutorial's typo: `port:` where `ports:` is meant.
	httpd2YAML = `apiVersion: apps/v1beta1
kind: Deployment
metadata:
  name: httpd2
  namespace: kube-public
spec:
  replicas: 3
  template:
    metadata:
      labels:
        run: httpd2
    spec:
      containers:
      - name: httpd2
        image: httpd
        port:
        - containerPort: 80
        
---
apiVersion: v1
kind: Service
metadata:
  name: httpd2-svc
  namespace: kube-public
spec:
  selector:
    run: httpd2
  ports:
  - protocol: TCP
    port: 8080
    targetPort: 80
        
`
)

// writeFiles writes name → content into a new directory and makes it the
// working directory, so that file names print as users type them.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	return dir
}

func nested(obj map[string]any, path ...string) any {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func TestApplyCreatesConfiguresAndLeavesUnchanged(t *testing.T) {
	fs := newFakeServer(t)
	writeFiles(t, map[string]string{"httpd.yml": httpdYAML, "httpd-svc.yml": httpdSvcYAML})

	out, errOut, code := fs.run("", "apply", "-f", "httpd.yml")
	if code != 0 || out != "deployment.apps/httpd created\n" {
		t.Fatalf("first apply: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "Warning: apps/v1beta1 Deployment is deprecated") {
		t.Errorf("the server's deprecation warning is not shown: stderr %q", errOut)
	}
	if !containsRequest(fs.requestLog(), "POST /apis/apps/v1beta1/namespaces/default/deployments?fieldValidation=Strict") {
		t.Errorf("the legacy manifest was not posted to its own version path: %v", fs.requestLog())
	}
	live := fs.get("deployments", "default", "httpd")
	lastApplied, _ := nested(live, "metadata", "annotations").(map[string]any)[lastAppliedAnnotation].(string)
	if !strings.Contains(lastApplied, `"replicas":3`) || !strings.HasSuffix(lastApplied, "\n") {
		t.Errorf("last-applied annotation = %q", lastApplied)
	}

	// The server fills in what the manifest leaves out.
	live["spec"].(map[string]any)["selector"] = map[string]any{"matchLabels": map[string]any{"run": "httpd"}}
	live["status"] = map[string]any{"replicas": 3}

	out, errOut, code = fs.run("", "apply", "-f", "httpd.yml")
	if code != 0 || out != "deployment.apps/httpd unchanged\n" {
		t.Fatalf("second apply: code %d, stdout %q, stderr %q", code, out, errOut)
	}

	writeFiles(t, map[string]string{"httpd.yml": strings.Replace(httpdYAML, "replicas: 3", "replicas: 5", 1)})
	out, errOut, code = fs.run("", "apply", "-f", "httpd.yml")
	if code != 0 || out != "deployment.apps/httpd configured\n" {
		t.Fatalf("apply of a change: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	live = fs.get("deployments", "default", "httpd")
	if got := fmt.Sprint(nested(live, "spec", "replicas")); got != "5" {
		t.Errorf("replicas after apply = %v, want 5", got)
	}
	if nested(live, "spec", "selector") == nil || nested(live, "status") == nil {
		t.Errorf("apply dropped fields the server set: %v", live)
	}

	// A field the server drops makes every apply send a PUT; the server
	// keeps the resourceVersion of a no-op update, and that reads unchanged.
	fs.reject = func(r *api.Resource, obj map[string]any) *api.Status {
		delete(obj["spec"].(map[string]any), "dropped")
		return nil
	}
	writeFiles(t, map[string]string{"httpd.yml": strings.Replace(httpdYAML, "replicas: 3", "replicas: 5\n  dropped: true", 1)})
	for _, want := range []string{"configured", "unchanged"} { // the annotation changes once
		out, errOut, code = fs.run("", "apply", "-f", "httpd.yml")
		if code != 0 || out != "deployment.apps/httpd "+want+"\n" {
			t.Errorf("apply with a dropped field: code %d, stdout %q, stderr %q; want %s", code, out, errOut, want)
		}
	}
	if n := countRequests(fs.requestLog(), "PUT /apis/apps/v1beta1/namespaces/default/deployments/httpd"); n != 3 {
		t.Errorf("%d PUTs, want 3", n)
	}
}

func countRequests(log []string, prefix string) int {
	n := 0
	for _, r := range log {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func TestApplyRemovesFieldsDroppedFromTheManifest(t *testing.T) {
	fs := newFakeServer(t)
	withType := strings.Replace(httpdSvcYAML, "spec:\n", "spec:\n  type: NodePort\n  externalIPs:\n  - 192.168.56.50\n", 1)
	writeFiles(t, map[string]string{"httpd-svc.yml": withType})
	if out, errOut, code := fs.run("", "apply", "-f", "httpd-svc.yml"); code != 0 {
		t.Fatalf("apply: %q %q", out, errOut)
	}
	// The server allocates a cluster IP.
	fs.get("services", "default", "httpd-svc")["spec"].(map[string]any)["clusterIP"] = "10.102.120.255"

	writeFiles(t, map[string]string{"httpd-svc.yml": httpdSvcYAML})
	out, errOut, code := fs.run("", "apply", "-f", "httpd-svc.yml")
	if code != 0 || out != "service/httpd-svc configured\n" {
		t.Fatalf("apply: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	spec := fs.get("services", "default", "httpd-svc")["spec"].(map[string]any)
	if _, ok := spec["externalIPs"]; ok {
		t.Errorf("externalIPs were removed from the manifest but are still live: %v", spec)
	}
	if _, ok := spec["type"]; ok {
		t.Errorf("type was removed from the manifest but is still live: %v", spec)
	}
	if spec["clusterIP"] != "10.102.120.255" {
		t.Errorf("the server-allocated clusterIP was lost: %v", spec)
	}
}

// The tutorial's httpd2.yml: the server refuses the Deployment (unknown
// field), the Service in the same file is still created, and the command fails.
func TestApplyTutorialHttpd2ReportsTheBadDocumentAndCreatesTheRest(t *testing.T) {
	fs := newFakeServer(t)
	const strictMessage = `Deployment in version "v1beta1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.template.spec.containers[0].port"`
	fs.reject = func(r *api.Resource, obj map[string]any) *api.Status {
		containers, _ := nested(obj, "spec", "template", "spec", "containers").([]any)
		for _, c := range containers {
			if _, typo := c.(map[string]any)["port"]; typo {
				return api.NewBadRequest(strictMessage)
			}
		}
		return nil
	}
	writeFiles(t, map[string]string{"httpd2.yml": httpd2YAML})

	out, errOut, code := fs.run("", "apply", "-f", "httpd2.yml")
	if code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
	if out != "service/httpd2-svc created\n" {
		t.Errorf("stdout = %q, want the service created", out)
	}
	wantErr := `Error from server (BadRequest): error when creating "httpd2.yml": ` + strictMessage + "\n"
	if !strings.HasSuffix(errOut, wantErr) {
		t.Errorf("stderr = %q, want it to end with %q", errOut, wantErr)
	}
	if fs.get("services", "kube-public", "httpd2-svc") == nil {
		t.Error("the service was not created in kube-public")
	}
	if fs.get("deployments", "kube-public", "httpd2") != nil {
		t.Error("the refused deployment exists")
	}
}

func TestApplyReportsInvalidObjectsInKubectlWords(t *testing.T) {
	fs := newFakeServer(t)
	fs.reject = func(r *api.Resource, obj map[string]any) *api.Status {
		return api.NewInvalid("", "Service", "httpd-svc", api.FieldErrors{
			api.Invalid("spec.ports[0].port", 0, "must be between 1 and 65535, inclusive"),
		})
	}
	writeFiles(t, map[string]string{"httpd-svc.yml": strings.Replace(httpdSvcYAML, "port: 8080", "port: 0", 1)})
	out, errOut, code := fs.run("", "apply", "-f", "httpd-svc.yml")
	want := "The Service \"httpd-svc\" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive\n"
	if code != 1 || out != "" || errOut != want {
		t.Errorf("code %d, stdout %q, stderr %q; want stderr %q", code, out, errOut, want)
	}
}

func TestApplyMultipleInvalidCauses(t *testing.T) {
	fs := newFakeServer(t)
	fs.reject = func(r *api.Resource, obj map[string]any) *api.Status {
		return api.NewInvalid("", "Service", "httpd-svc", api.FieldErrors{
			api.Invalid("spec.ports[0].port", 0, "must be between 1 and 65535, inclusive"),
			api.Required("spec.ports[0].targetPort", ""),
		})
	}
	writeFiles(t, map[string]string{"httpd-svc.yml": httpdSvcYAML})
	_, errOut, _ := fs.run("", "apply", "-f", "httpd-svc.yml")
	want := "The Service \"httpd-svc\" is invalid: \n" +
		"* spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive\n" +
		"* spec.ports[0].targetPort: Required value\n"
	if errOut != want {
		t.Errorf("stderr = %q, want %q", errOut, want)
	}
}

func TestApplyNamespaceConflictWithExplicitFlag(t *testing.T) {
	fs := newFakeServer(t)
	writeFiles(t, map[string]string{"both.yml": httpd2YAML + "---\n" + httpdSvcYAML})
	out, errOut, code := fs.run("", "apply", "-n", "default", "-f", "both.yml", "--validate=false")
	if code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
	if out != "service/httpd-svc created\n" {
		t.Errorf("stdout = %q", out)
	}
	want := `error: the namespace from the provided object "kube-public" does not match the namespace "default". You must pass '--namespace=kube-public' to perform this operation.`
	if !strings.Contains(errOut, want) {
		t.Errorf("stderr = %q, want %q", errOut, want)
	}
	if !containsRequest(fs.requestLog(), "POST /api/v1/namespaces/default/services?fieldValidation=Ignore") {
		t.Errorf("--validate=false did not send fieldValidation=Ignore: %v", fs.requestLog())
	}
}

func TestApplyDirectoryAndStdin(t *testing.T) {
	fs := newFakeServer(t)
	writeFiles(t, map[string]string{
		"manifests/httpd.yml":         httpdYAML,
		"manifests/notes.txt":         "not a manifest",
		"manifests/nested/svc.yaml":   httpdSvcYAML,
		"manifests/nested/empty.yaml": "# nothing\n---\n",
	})
	out, errOut, code := fs.run("", "apply", "-f", "manifests")
	if code != 0 || out != "deployment.apps/httpd created\n" {
		t.Errorf("apply of a directory: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = fs.run("", "apply", "-R", "-f", "manifests")
	if code != 0 || out != "deployment.apps/httpd unchanged\nservice/httpd-svc created\n" {
		t.Errorf("recursive apply: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = fs.run(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"demo"}}`, "apply", "-f", "-")
	if code != 0 || out != "namespace/demo created\n" {
		t.Errorf("apply from stdin: code %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestApplyUnknownKind(t *testing.T) {
	fs := newFakeServer(t)
	writeFiles(t, map[string]string{"x.yml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"})
	_, errOut, code := fs.run("", "apply", "-f", "x.yml")
	want := "error: resource mapping not found for name: \"x\" namespace: \"\" from \"x.yml\": no matches for kind \"ConfigMap\" in version \"v1\"\nensure CRDs are installed first\n"
	if code != 1 || errOut != want {
		t.Errorf("code %d, stderr %q, want %q", code, errOut, want)
	}
}

func TestApplyRetriesOnConflict(t *testing.T) {
	fs := newFakeServer(t)
	writeFiles(t, map[string]string{"httpd-svc.yml": httpdSvcYAML})
	if _, errOut, code := fs.run("", "apply", "-f", "httpd-svc.yml"); code != 0 {
		t.Fatal(errOut)
	}
	conflicts := 1
	fs.reject = func(r *api.Resource, obj map[string]any) *api.Status {
		if conflicts > 0 {
			conflicts--
			return api.NewConflict("", "services", "httpd-svc", errFake("the object has been modified"))
		}
		return nil
	}
	writeFiles(t, map[string]string{"httpd-svc.yml": strings.Replace(httpdSvcYAML, "8080", "8081", 1)})
	out, errOut, code := fs.run("", "apply", "-f", "httpd-svc.yml")
	if code != 0 || out != "service/httpd-svc configured\n" {
		t.Errorf("code %d, stdout %q, stderr %q", code, out, errOut)
	}
}

type errFake string

func (e errFake) Error() string { return string(e) }

func containsRequest(log []string, want string) bool {
	for _, r := range log {
		if r == want {
			return true
		}
	}
	return false
}
