package api

import (
	"reflect"
	"testing"
)

func TestParseFieldSelector(t *testing.T) {
	tests := []struct {
		input     string
		want      []FieldRequirement
		canonical string
	}{
		{"", nil, ""},
		{"spec.nodeName=node1", []FieldRequirement{{"spec.nodeName", "=", "node1"}}, "spec.nodeName=node1"},
		{"status.phase==Running,metadata.namespace!=kube-system", []FieldRequirement{
			{"status.phase", "=", "Running"}, {"metadata.namespace", "!=", "kube-system"}}, "status.phase=Running,metadata.namespace!=kube-system"},
		{"spec.nodeName=", []FieldRequirement{{"spec.nodeName", "=", ""}}, "spec.nodeName="},
		{`metadata.name=a\,b\=c\\d`, []FieldRequirement{{"metadata.name", "=", `a,b=c\d`}}, `metadata.name=a\,b\=c\\d`},
		{"a=b,,c=d", []FieldRequirement{{"a", "=", "b"}, {"c", "=", "d"}}, "a=b,c=d"},
	}
	for _, tt := range tests {
		sel, err := ParseFieldSelector(tt.input)
		if err != nil {
			t.Errorf("ParseFieldSelector(%q): %v", tt.input, err)
			continue
		}
		if !reflect.DeepEqual(sel.Requirements, tt.want) {
			t.Errorf("ParseFieldSelector(%q) = %+v, want %+v", tt.input, sel.Requirements, tt.want)
		}
		if sel.String() != tt.canonical || sel.Empty() != (len(tt.want) == 0) {
			t.Errorf("ParseFieldSelector(%q): String() %q Empty() %v", tt.input, sel.String(), sel.Empty())
		}
	}
}

func TestParseFieldSelectorErrors(t *testing.T) {
	tests := []struct{ input, want string }{
		{"spec.nodeName", "invalid selector: 'spec.nodeName'; can't understand 'spec.nodeName'"},
		{"=x", "invalid selector: '=x'; can't understand '=x'"},
		{`a=b\`, `invalid selector: 'a=b\': invalid escape sequence at end of "b\\"`},
		{`a=b\x`, `invalid selector: 'a=b\x': invalid escape sequence "\\x" in "b\\x"`},
		{"a=b=c", `invalid selector: 'a=b=c': invalid unescaped '=' in "b=c"`},
	}
	for _, tt := range tests {
		if _, err := ParseFieldSelector(tt.input); err == nil || err.Error() != tt.want {
			t.Errorf("ParseFieldSelector(%q):\n  got  %v\n  want %s", tt.input, err, tt.want)
		}
	}
}

func TestFieldSelectorMatches(t *testing.T) {
	pod := validPod()
	pod.Spec.NodeName = "node1"
	pod.Status.Phase = PodRunning
	pod.Status.PodIP = "10.244.1.5"
	fields := FieldsOf(pod)
	tests := []struct {
		selector string
		want     bool
	}{
		{"", true},
		{"spec.nodeName=node1", true},
		{"spec.nodeName=node2", false},
		{"spec.nodeName!=node2,status.phase=Running", true},
		{"metadata.name=web,metadata.namespace=default", true},
		{"status.podIP=10.244.1.5,spec.restartPolicy=Always,spec.schedulerName=default-scheduler", true},
		{"spec.hostNetwork=false", true},
		{"status.phase!=Running", false},
	}
	for _, tt := range tests {
		sel, err := ParseFieldSelector(tt.selector)
		if err != nil {
			t.Fatal(err)
		}
		if got := sel.Matches(fields); got != tt.want {
			t.Errorf("%q matches %v = %v, want %v", tt.selector, fields, got, tt.want)
		}
	}
}

func TestFieldsOf(t *testing.T) {
	event := &Event{ObjectMeta: ObjectMeta{Name: "web.1", Namespace: "default"}, Reason: "Scheduled", Type: EventNormal,
		InvolvedObject: ObjectReference{Kind: "Pod", Name: "web", Namespace: "default", UID: "u1"}, Source: EventSource{Component: "default-scheduler"}}
	node := &Node{ObjectMeta: ObjectMeta{Name: "node1"}, Spec: NodeSpec{Unschedulable: true}}
	tests := []struct {
		obj  Object
		want map[string]string
	}{
		{event, map[string]string{"involvedObject.kind": "Pod", "involvedObject.name": "web", "involvedObject.namespace": "default",
			"involvedObject.uid": "u1", "reason": "Scheduled", "type": "Normal", "source": "default-scheduler", "metadata.name": "web.1"}},
		{node, map[string]string{"spec.unschedulable": "true", "metadata.name": "node1", "metadata.namespace": ""}},
		{&Namespace{ObjectMeta: ObjectMeta{Name: "default"}, Status: NamespaceStatus{Phase: NamespaceActive}}, map[string]string{"status.phase": "Active"}},
		{validService(), map[string]string{"spec.type": "ClusterIP", "metadata.name": "httpd-svc"}},
	}
	for _, tt := range tests {
		fields := FieldsOf(tt.obj)
		for k, v := range tt.want {
			if got, ok := fields[k]; !ok || got != v {
				t.Errorf("%s: FieldsOf[%q] = %q, want %q", KindOf(tt.obj), k, got, v)
			}
		}
	}
}

func TestValidateFieldSelector(t *testing.T) {
	tests := []struct {
		kind, selector, want string
	}{
		{"Pod", "spec.nodeName=node1,status.phase!=Failed", ""},
		{"Pod", "spec.foo=bar", "field label not supported: spec.foo"},
		{"Event", "involvedObject.name=web,reason=Killing", ""},
		{"Node", "spec.unschedulable=false", ""},
		{"Deployment", "metadata.name=httpd", ""},
		{"Deployment", "spec.replicas=3", "field label not supported: spec.replicas"},
		{"Service", "spec.type=NodePort", ""},
		{"Widget", "metadata.name=x", `no kind "Widget" is served`},
	}
	for _, tt := range tests {
		sel, err := ParseFieldSelector(tt.selector)
		if err != nil {
			t.Fatal(err)
		}
		err = ValidateFieldSelector(tt.kind, sel)
		if (err == nil && tt.want != "") || (err != nil && err.Error() != tt.want) {
			t.Errorf("ValidateFieldSelector(%s, %q) = %v, want %q", tt.kind, tt.selector, err, tt.want)
		}
	}
	if got := SelectableFields("Node"); !reflect.DeepEqual(got, []string{"metadata.name", "metadata.namespace", "spec.unschedulable"}) {
		t.Errorf("SelectableFields(Node) = %q", got)
	}
}
