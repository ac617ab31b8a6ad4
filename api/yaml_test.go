package api

import (
	"strings"
	"testing"
)

func TestSplitYAMLDocuments(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []string
	}{
		{"one document", "kind: Pod\nmetadata:\n  name: a\n", []string{`{"kind":"Pod","metadata":{"name":"a"}}`}},
		{"separators, empty and comment-only documents",
			"---\nkind: Pod\n---\n# just a comment\n---   # a separator with a comment\n\n---\nkind: Service\n...\n",
			[]string{`{"kind":"Pod"}`, `{"kind":"Service"}`}},
		{"a line that only starts like a separator", "kind: ConfigMap\ndata:\n  text: |\n    ---not a separator\n",
			[]string{`{"kind":"ConfigMap","data":{"text":"---not a separator\n"}}`}},
		{"key order and repeated keys are kept", "b: 1\na: 2\nb: 3\n", []string{`{"b":1,"a":2,"b":3}`}},
		{"YAML scalars become JSON ones", "s: 'x'\nnum: 1.5\nbig: 9007199254740993\nt: yes\nz: ~\nts: 2020-01-02T03:04:05Z\n1: int key\n",
			[]string{`{"s":"x","num":1.5,"big":9007199254740993,"t":true,"z":null,"ts":"2020-01-02T03:04:05Z","1":"int key"}`}},
		{"merge keys are merged", "base: &b {one: 1}\nobj:\n  <<: *b\n  two: 2\n", []string{`{"base":{"one":1},"obj":{"one":1,"two":2}}`}},
		{"YAML 1.1 booleans, as Kubernetes reads them", "y: n\non: off\n", []string{`{"true":false,"true":false}`}},
		{"JSON documents", "{\"kind\": \"Pod\"}\n---\n{\"kind\":\"Service\"}{\"kind\":\"Endpoints\"}\n",
			[]string{`{"kind": "Pod"}`, `{"kind":"Service"}`, `{"kind":"Endpoints"}`}},
		{"lists are expanded", "apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n- kind: ServiceList\n  items:\n  - kind: Service\n",
			[]string{`{"kind":"Pod"}`, `{"kind":"Service"}`}},
		{"a list kind without items is kept", "kind: PodList\n", []string{`{"kind":"PodList"}`}},
		{"nothing at all", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := SplitYAMLDocuments([]byte(tt.input))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range docs {
				got = append(got, string(d))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("\n  got  %q\n  want %q", got, tt.want)
			}
		})
	}
}

func TestSplitYAMLDocumentsErrors(t *testing.T) {
	tests := []struct{ input, want string }{
		{"kind: Pod\n---\nkind: Service\nmetadata:\n name: x\n  bad: y\n",
			"document 2: yaml: line 6: mapping values are not allowed in this context"},
		{"kind: Pod\n---\n- just\n- a list\n",
			"document 2: expected a mapping of fields (apiVersion, kind, metadata, ...), got a list"},
		{"kind: List\nitems:\n- 5\n", "document 1: items[0]: expected object, got number 5"},
		{"kind: List\nitems: {}\n", "document 1: items: expected array, got object"},
		{"? [a, b]\n: c\n", "document 1: mapping key [a b] is not a string: JSON object keys must be strings"},
		{"x: .nan\n", "document 1: the number NaN cannot be represented in JSON"},
	}
	for _, tt := range tests {
		_, err := SplitYAMLDocuments([]byte(tt.input))
		if err == nil || err.Error() != tt.want {
			t.Errorf("SplitYAMLDocuments(%q):\n  got  %v\n  want %s", tt.input, err, tt.want)
		}
	}
}

func TestPeekMeta(t *testing.T) {
	tests := []struct {
		doc                               string
		apiVersion, kind, namespace, name string
		err                               string
	}{
		{doc: "apiVersion: v1\nkind: Service\nmetadata:\n  name: httpd2-svc\n  namespace: kube-public\n",
			apiVersion: "v1", kind: "Service", namespace: "kube-public", name: "httpd2-svc"},
		{doc: `{"kind":"Pod","metadata":{"generateName":"web-"}}`, kind: "Pod"},
		{doc: "kind: Pod\nmetadata: null\n", kind: "Pod"},
		{doc: "kind: Pod\nmetadata:\n  name: 7\n", err: "metadata.name: expected string, got number 7"},
		{doc: "kind: Pod\nmetadata: [a]\n", err: "metadata: expected object, got array"},
		{doc: "", err: "the document is empty"},
	}
	for _, tt := range tests {
		apiVersion, kind, namespace, name, err := PeekMeta([]byte(tt.doc))
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("PeekMeta(%q) error = %v, want %s", tt.doc, err, tt.err)
			}
			continue
		}
		if err != nil || apiVersion != tt.apiVersion || kind != tt.kind || namespace != tt.namespace || name != tt.name {
			t.Errorf("PeekMeta(%q) = %q %q %q %q %v", tt.doc, apiVersion, kind, namespace, name, err)
		}
	}
}

func TestPeekTutorialManifests(t *testing.T) {
	docs := splitTestdata(t, "httpd2.yml")
	var got []string
	for _, doc := range docs {
		apiVersion, kind, namespace, name, err := PeekMeta(doc)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join([]string{apiVersion, kind, namespace, name}, " "))
	}
	want := []string{"apps/v1beta1 Deployment kube-public httpd2", "v1 Service kube-public httpd2-svc"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q, want %q", got, want)
	}
}
