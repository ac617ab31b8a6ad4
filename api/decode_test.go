package api

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

var strict = DecodeOptions{Strict: true}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// splitTestdata reads a manifest of the tutorial and splits it into documents.
func splitTestdata(t *testing.T, name string) [][]byte {
	t.Helper()
	docs, err := SplitYAMLDocuments(readTestdata(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return docs
}

// admit runs a document through what the API server does on create: decode
// strictly, put it in the request's namespace, default, validate.
func admit(t *testing.T, doc []byte, namespace string) (Object, []string) {
	t.Helper()
	obj, warnings, err := NewScheme().Decode(doc, nil, strict)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if meta := obj.GetObjectMeta(); meta.Namespace == "" {
		meta.Namespace = namespace
	}
	Default(obj)
	if errs := Validate(obj); len(errs) > 0 {
		t.Fatalf("validate: %v", errs)
	}
	return obj, warnings
}

func TestTutorialDeployment(t *testing.T) {
	docs := splitTestdata(t, "httpd.yml")
	if len(docs) != 1 {
		t.Fatalf("httpd.yml has %d documents, want 1", len(docs))
	}
	obj, warnings := admit(t, docs[0], NamespaceDefault)

	d, ok := obj.(*Deployment)
	if !ok {
		t.Fatalf("decoded a %T, want *Deployment", obj)
	}
	if d.APIVersion != "apps/v1" || d.Kind != "Deployment" {
		t.Errorf("TypeMeta = %+v, want the stored apps/v1 Deployment", d.TypeMeta)
	}
	if got := FormatLabelSelector(d.Spec.Selector); got != "run=httpd" {
		t.Errorf("selector = %s, want run=httpd (from the template's labels)", got)
	}
	if !reflect.DeepEqual(d.Labels, map[string]string{"run": "httpd"}) {
		t.Errorf("labels = %v, want the template's (apps/v1beta1 defaulting)", d.Labels)
	}
	if *d.Spec.Replicas != 3 || d.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort != 80 {
		t.Errorf("spec lost in conversion: %+v", d.Spec)
	}
	wantWarnings := []string{"apps/v1beta1 Deployment is deprecated in v1.9+, unavailable in v1.16+; use apps/v1 Deployment"}
	if !reflect.DeepEqual(warnings, wantWarnings) {
		t.Errorf("warnings = %q, want %q", warnings, wantWarnings)
	}
}

func TestTutorialService(t *testing.T) {
	docs := splitTestdata(t, "httpd-svc.yml")
	obj, warnings := admit(t, docs[0], NamespaceDefault)
	svc := obj.(*Service)
	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	checkJSON(t, svc.Spec.Ports, `[{"protocol": "TCP", "port": 8080, "targetPort": 80}]`)
	if svc.Spec.Type != ServiceTypeClusterIP || svc.Spec.Selector["run"] != "httpd" {
		t.Errorf("spec = %+v", svc.Spec)
	}
}

func TestTutorialMisspelledPorts(t *testing.T) {
	docs := splitTestdata(t, "httpd2.yml")
	if len(docs) != 2 {
		t.Fatalf("httpd2.yml has %d documents, want 2", len(docs))
	}

	_, _, err := NewScheme().Decode(docs[0], nil, strict)
	var decodeErr *DecodeError
	if !errors.As(err, &decodeErr) {
		t.Fatalf("strict decoding returned %v, want a *DecodeError", err)
	}
	const want = `unknown field "spec.template.spec.containers[0].port" (did you mean "ports"?)`
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if err.Error() != "strict decoding error: "+want {
		t.Errorf("error = %q", err)
	}

	// The Service beside it is fine.
	obj, _ := admit(t, docs[1], "")
	if obj.GetObjectMeta().Namespace != NamespacePublic {
		t.Errorf("namespace = %q, want kube-public", obj.GetObjectMeta().Namespace)
	}

	// Without strictness the misspelt field is dropped; with Warn it is reported.
	for _, opts := range []DecodeOptions{{}, {Warn: true}} {
		obj, warnings, err := NewScheme().Decode(docs[0], nil, opts)
		if err != nil {
			t.Fatalf("%+v: %v", opts, err)
		}
		if ports := obj.(*Deployment).Spec.Template.Spec.Containers[0].Ports; len(ports) != 0 {
			t.Errorf("%+v: ports = %v, want none", opts, ports)
		}
		if opts.Warn != contains(warnings, want) {
			t.Errorf("%+v: warnings = %q", opts, warnings)
		}
	}
}

func contains(list []string, s string) bool {
	for _, item := range list {
		if item == s {
			return true
		}
	}
	return false
}

func TestDecodeProblems(t *testing.T) {
	deploymentResource, _ := NewScheme().ByName("deployments")
	tests := []struct {
		name     string
		doc      string
		wantType string // "DecodeError" or "MalformedError"
		want     string // the whole message
	}{
		{"type error names the path", "kind: Deployment\napiVersion: apps/v1\nspec:\n  replicas: three\n",
			"MalformedError", `spec.replicas: expected integer, got string "three"`},
		{"fractions are not integers", `{"apiVersion":"apps/v1","kind":"Deployment","spec":{"replicas":2.5}}`,
			"MalformedError", `spec.replicas: expected integer, got number 2.5`},
		{"out of range", `{"apiVersion":"apps/v1","kind":"Deployment","spec":{"replicas":4294967296}}`,
			"MalformedError", `spec.replicas: expected integer, got number 4294967296 (out of range)`},
		{"a string where a list goes", "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers: httpd\n",
			"MalformedError", `spec.template.spec.containers: expected array, got string "httpd"`},
		{"an object where a string goes", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name:\n    first: x\n",
			"MalformedError", `metadata.name: expected string, got object`},
		{"label values are strings", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  labels:\n    version: 2\n",
			"MalformedError", `metadata.labels[version]: expected string, got number 2`},
		{"IntOrString", "apiVersion: apps/v1\nkind: Deployment\nspec:\n  strategy:\n    rollingUpdate:\n      maxSurge: true\n",
			"MalformedError", `spec.strategy.rollingUpdate.maxSurge: expected integer or string, got boolean true`},
		{"times", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  creationTimestamp: yesterday\n",
			"MalformedError", `metadata.creationTimestamp: expected a time in RFC 3339 format (e.g. "2006-01-02T15:04:05Z"), got string "yesterday"`},
		{"type errors come with the unknown fields", "apiVersion: apps/v1\nkind: Deployment\nspec:\n  replica: 3\n  paused: maybe\n",
			"MalformedError", `spec.paused: expected boolean, got string "maybe", unknown field "spec.replica" (did you mean "replicas"?)`},
		{"unknown fields, in document order", "apiVersion: apps/v1\nkind: Deployment\nmetdata: {}\nspec:\n  selectr: {}\n  template:\n    spec:\n      containers:\n      - name: c\n        imagePolicy: Always\n        ports:\n        - containerport: 80\n",
			"DecodeError", `strict decoding error: unknown field "metdata" (did you mean "metadata"?), unknown field "spec.selectr" (did you mean "selector"?), unknown field "spec.template.spec.containers[0].imagePolicy", unknown field "spec.template.spec.containers[0].ports[0].containerport" (did you mean "containerPort"?)`},
		{"case-insensitive suggestion", `{"apiVersion":"apps/v1","kind":"Deployment","spec":{"Replicas":3}}`,
			"DecodeError", `strict decoding error: unknown field "spec.Replicas" (did you mean "replicas"?)`},
		{"duplicate YAML keys", "apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: 1\n  replicas: 2\n",
			"DecodeError", `strict decoding error: duplicate field "spec.replicas"`},
		{"duplicate JSON keys", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"labels":{"a":"1","a":"2"}}}`,
			"DecodeError", `strict decoding error: duplicate field "metadata.labels[a]"`},
		{"a repeated unknown field is reported once", "apiVersion: apps/v1\nkind: Deployment\nfoo: 1\nfoo: 2\n",
			"DecodeError", `strict decoding error: unknown field "foo"`},
		{"kind mismatch", "apiVersion: v1\nkind: Service\n",
			"MalformedError", `expected kind "Deployment", got "Service"`},
		{"version mismatch", "apiVersion: apps/v2\nkind: Deployment\n",
			"MalformedError", `expected apiVersion "apps/v1" for kind "Deployment", got "apps/v2"; Deployment is served as "apps/v1" (deprecated versions accepted: apps/v1beta1, apps/v1beta2, extensions/v1beta1)`},
		{"kind must be a string", "apiVersion: apps/v1\nkind: [Deployment]\n",
			"MalformedError", `kind: expected string, got array`},
		{"not a mapping", "- a\n- b\n",
			"MalformedError", `expected a mapping of fields (apiVersion, kind, metadata, ...), got a list`},
		{"not YAML", "apiVersion: apps/v1\nkind: Deployment\n spec: [\n",
			"MalformedError", `yaml: line 3: mapping values are not allowed in this context`},
		{"empty", "# nothing here\n",
			"MalformedError", `the document is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, _, err := NewScheme().Decode([]byte(tt.doc), deploymentResource, strict)
			if err == nil {
				t.Fatalf("decoded %+v, want an error", obj)
			}
			var decodeErr *DecodeError
			var malformedErr *MalformedError
			switch {
			case tt.wantType == "DecodeError" && !errors.As(err, &decodeErr),
				tt.wantType == "MalformedError" && !errors.As(err, &malformedErr):
				t.Errorf("error %T, want %s", err, tt.wantType)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n  got  %s\n  want %s", err, tt.want)
			}
		})
	}
}

func TestDecodeWithoutWant(t *testing.T) {
	s := NewScheme()
	tests := []struct{ doc, want string }{
		{"kind: Pod\n", "apiVersion is missing: every document must say its API version (e.g. apiVersion: v1)"},
		{"apiVersion: v1\n", "kind is missing: every document must say what it is (e.g. kind: Deployment)"},
		{"apiVersion: v1\nkind: Deployment\n", `no matches for kind "Deployment" in version "v1"; Deployment is served as "apps/v1" (deprecated versions accepted: apps/v1beta1, apps/v1beta2, extensions/v1beta1)`},
		{"apiVersion: v1\nkind: Widget\n", `no matches for kind "Widget" in version "v1"`},
	}
	for _, tt := range tests {
		_, _, err := s.Decode([]byte(tt.doc), nil, strict)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Decode(%q) = %v, want %s", tt.doc, err, tt.want)
		}
	}
}

func TestDecodeFillsTypeFromWant(t *testing.T) {
	s := NewScheme()
	podResource, _ := s.ByName("po")
	obj, _, err := s.Decode([]byte(`{"metadata":{"name":"web"},"spec":{"containers":[{"name":"web","image":"httpd"}]}}`), podResource, strict)
	if err != nil {
		t.Fatal(err)
	}
	if tm := obj.GetTypeMeta(); tm.APIVersion != "v1" || tm.Kind != "Pod" {
		t.Errorf("TypeMeta = %+v", tm)
	}
}

func TestDecodeIgnoresCaseOnlyInSuggestions(t *testing.T) {
	// encoding/json alone would take "Replicas" for "replicas"; Kubernetes does not.
	obj, warnings, err := NewScheme().Decode([]byte(`{"apiVersion":"apps/v1","kind":"Deployment","spec":{"Replicas":3}}`), nil, DecodeOptions{Warn: true})
	if err != nil {
		t.Fatal(err)
	}
	if obj.(*Deployment).Spec.Replicas != nil {
		t.Errorf("replicas = %d, want unset", *obj.(*Deployment).Spec.Replicas)
	}
	if len(warnings) != 1 {
		t.Errorf("warnings = %q", warnings)
	}
}

func TestDecodeInto(t *testing.T) {
	var binding Binding
	if _, err := DecodeInto([]byte(`{"apiVersion":"v1","kind":"Binding","metadata":{"name":"web"},"target":{"kind":"Node","name":"node1"}}`), &binding, strict); err != nil {
		t.Fatal(err)
	}
	if binding.Target.Name != "node1" {
		t.Errorf("binding = %+v", binding)
	}
	var scale Scale
	_, err := DecodeInto([]byte("spec:\n  replica: 3\n"), &scale, strict)
	if err == nil || err.Error() != `strict decoding error: unknown field "spec.replica" (did you mean "replicas"?)` {
		t.Errorf("err = %v", err)
	}
}

func TestClosestField(t *testing.T) {
	known := []string{"name", "image", "ports", "containerPort", "env", "args", "command"}
	tests := []struct{ key, want string }{
		{"port", "ports"},
		{"containerport", "containerPort"},
		{"imag", "image"},
		{"commnad", "command"},
		{"Image", "image"},
		{"xyz", ""},
		{"a", ""},
		{"volumes", ""},
		{strings.Repeat("x", 1000), ""},
	}
	for _, tt := range tests {
		if got := closestField(tt.key, known); got != tt.want {
			t.Errorf("closestField(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}
