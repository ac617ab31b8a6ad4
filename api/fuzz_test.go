package api

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the manifest path of the API server
// and kubectl: split, peek, decode as each resource, default, validate. None
// may panic; every decoding error must be one of ours, in plain words; and an
// object that decodes must decode again, strictly, from its own encoding.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"httpd.yml", "httpd-svc.yml", "httpd2.yml"} {
		data := readTestdata(f, name)
		f.Add(data)
		docs, err := SplitYAMLDocuments(data)
		if err != nil {
			f.Fatal(err)
		}
		for _, doc := range docs {
			f.Add(doc)
		}
	}
	f.Add([]byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","labels":{"a":"1","a":"2"}},"spec":{"containers":[{"name":"c","image":"i","ports":[{"containerPort":"80"}]}]}}`))
	f.Add([]byte("kind: List\nitems:\n- kind: Node\n  metadata: {name: n}\n---\nkind: Namespace\n"))
	f.Add([]byte("spec:\n  strategy:\n    rollingUpdate: {maxSurge: 1, maxUnavailable: '25%'}\n  replicas: 1e3\n"))

	s := NewScheme()
	f.Fuzz(func(t *testing.T, data []byte) {
		if docs, err := SplitYAMLDocuments(data); err == nil {
			for _, doc := range docs {
				_, _, _, _, _ = PeekMeta(doc)
			}
		}
		for _, want := range append(s.All(), nil) {
			obj, _, err := s.Decode(data, want, strict)
			if err != nil {
				checkDecodeError(t, err)
				continue
			}
			encoded, err := json.Marshal(obj)
			if err != nil {
				t.Fatalf("cannot encode the decoded %T: %v", obj, err)
			}
			if _, _, err := s.Decode(encoded, want, strict); err != nil {
				t.Fatalf("%s does not decode again: %v", encoded, err)
			}
			Default(obj)
			_ = Validate(obj)
		}
	})
}

// checkDecodeError requires one of Decode's own error types, without the
// wording of encoding/json.
func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	var decodeErr *DecodeError
	var malformedErr *MalformedError
	if !errors.As(err, &decodeErr) && !errors.As(err, &malformedErr) {
		t.Fatalf("error %T: %v", err, err)
	}
	for _, jargon := range []string{"json: ", "cannot unmarshal", "Go struct", "Go value"} {
		if strings.Contains(err.Error(), jargon) {
			t.Fatalf("error in Go's words: %v", err)
		}
	}
}

// FuzzParseSelector checks that any string parses or fails cleanly as a label
// or field selector, and that what parses prints back to itself.
func FuzzParseSelector(f *testing.F) {
	for _, seed := range []string{
		"", "run=httpd", "run == httpd", "a!=b", "env in (prod, staging)", "env notin (dev)", "canary", "!canary",
		"tier=,app", "version>2,version<10", "app.kubernetes.io/name in (web,api),!legacy", "a in (,b)", "a=b=c",
		"spec.nodeName=node1,status.phase!=Running", `metadata.name=a\,b\=c\\d`, FormatLabelSelector(validDeployment().Spec.Selector),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		labels := map[string]string{input: input, "a": "b", "run": "httpd"}
		if sel, err := ParseSelector(input); err == nil {
			sel.Matches(labels)
			again, err := ParseSelector(sel.String())
			if err != nil {
				t.Fatalf("%q printed as %q, which does not parse: %v", input, sel.String(), err)
			}
			if again.String() != sel.String() || again.Matches(labels) != sel.Matches(labels) {
				t.Fatalf("%q printed as %q, which reads back as %q", input, sel.String(), again.String())
			}
		}
		if sel, err := ParseFieldSelector(input); err == nil {
			sel.Matches(labels)
			again, err := ParseFieldSelector(sel.String())
			if err != nil {
				t.Fatalf("%q printed as %q, which does not parse: %v", input, sel.String(), err)
			}
			if again.String() != sel.String() {
				t.Fatalf("%q printed as %q, which reads back as %q", input, sel.String(), again.String())
			}
			_ = ValidateFieldSelector("Pod", sel)
		}
	})
}
