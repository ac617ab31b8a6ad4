package api

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// FieldSelector selects objects by a few of their fields, as
// `kubectl get --field-selector spec.nodeName=node1` does. Only the fields
// FieldsOf lists for a kind can be selected on.
type FieldSelector struct {
	Requirements []FieldRequirement
}

// FieldRequirement is one term: Field = Value or Field != Value.
type FieldRequirement struct {
	Field    string
	Operator string // "=" (also written "==") or "!="
	Value    string
}

// Matches reports whether the fields satisfy every requirement; a field
// missing from fields counts as empty.
func (s FieldSelector) Matches(fields map[string]string) bool {
	for _, r := range s.Requirements {
		if (fields[r.Field] == r.Value) != (r.Operator == "=") {
			return false
		}
	}
	return true
}

// Empty reports whether the selector has no requirements.
func (s FieldSelector) Empty() bool { return len(s.Requirements) == 0 }

// String is the selector in the syntax ParseFieldSelector reads.
func (s FieldSelector) String() string {
	terms := make([]string, len(s.Requirements))
	for i, r := range s.Requirements {
		terms[i] = r.Field + r.Operator + escapeFieldValue(r.Value)
	}
	return strings.Join(terms, ",")
}

// ParseFieldSelector reads comma-joined terms `field=value`, `field==value`
// and `field!=value`. In values, `\,`, `\=` and `\\` stand for ',', '=' and '\'.
func ParseFieldSelector(selector string) (FieldSelector, error) {
	var sel FieldSelector
	for _, term := range splitUnescaped(selector, ',') {
		if term == "" {
			continue
		}
		field, op, rawValue, ok := splitFieldTerm(term)
		if !ok {
			return FieldSelector{}, fmt.Errorf("invalid selector: '%s'; can't understand '%s'", selector, term)
		}
		value, err := unescapeFieldValue(rawValue)
		if err != nil {
			return FieldSelector{}, fmt.Errorf("invalid selector: '%s': %w", selector, err)
		}
		if op == "==" {
			op = "="
		}
		sel.Requirements = append(sel.Requirements, FieldRequirement{Field: field, Operator: op, Value: value})
	}
	return sel, nil
}

// splitUnescaped splits s at each sep not preceded by a backslash escape.
func splitUnescaped(s string, sep byte) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++ // skip the escaped character
		case sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// splitFieldTerm finds the first operator of a term outside escapes.
func splitFieldTerm(term string) (field, op, value string, ok bool) {
	for i := 0; i < len(term); i++ {
		if term[i] == '\\' {
			i++
			continue
		}
		for _, candidate := range []string{"!=", "==", "="} {
			if strings.HasPrefix(term[i:], candidate) {
				return term[:i], candidate, term[i+len(candidate):], i > 0
			}
		}
	}
	return "", "", "", false
}

func unescapeFieldValue(s string) (string, error) {
	if !strings.ContainsAny(s, `\,=`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 == len(s) {
				return "", fmt.Errorf("invalid escape sequence at end of %q", s)
			}
			i++
			switch s[i] {
			case '\\', ',', '=':
				b.WriteByte(s[i])
			default:
				return "", fmt.Errorf("invalid escape sequence %q in %q", s[i-1:i+1], s)
			}
		case ',', '=':
			return "", fmt.Errorf("invalid unescaped %q in %q", c, s)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func escapeFieldValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `,`, `\,`, `=`, `\=`).Replace(s)
}

// FieldsOf returns the selectable fields of obj with their values: metadata.name
// and metadata.namespace for every kind, plus the few each kind adds (the same
// as Kubernetes'). Every selectable field is present, empty when unset.
func FieldsOf(obj Object) map[string]string {
	meta := obj.GetObjectMeta()
	fields := map[string]string{
		"metadata.name":      meta.Name,
		"metadata.namespace": meta.Namespace,
	}
	switch o := obj.(type) {
	case *Pod:
		fields["spec.nodeName"] = o.Spec.NodeName
		fields["spec.restartPolicy"] = o.Spec.RestartPolicy
		fields["spec.schedulerName"] = o.Spec.SchedulerName
		fields["spec.serviceAccountName"] = o.Spec.ServiceAccountName
		fields["spec.hostNetwork"] = strconv.FormatBool(o.Spec.HostNetwork)
		fields["status.phase"] = o.Status.Phase
		fields["status.podIP"] = o.Status.PodIP
	case *Event:
		fields["involvedObject.kind"] = o.InvolvedObject.Kind
		fields["involvedObject.namespace"] = o.InvolvedObject.Namespace
		fields["involvedObject.name"] = o.InvolvedObject.Name
		fields["involvedObject.uid"] = o.InvolvedObject.UID
		fields["involvedObject.apiVersion"] = o.InvolvedObject.APIVersion
		fields["involvedObject.resourceVersion"] = o.InvolvedObject.ResourceVersion
		fields["involvedObject.fieldPath"] = o.InvolvedObject.FieldPath
		fields["reason"] = o.Reason
		fields["reportingComponent"] = o.ReportingComponent
		fields["source"] = o.Source.Component
		fields["type"] = o.Type
	case *Node:
		fields["spec.unschedulable"] = strconv.FormatBool(o.Spec.Unschedulable)
	case *Service:
		fields["spec.clusterIP"] = o.Spec.ClusterIP
		fields["spec.type"] = o.Spec.Type
	case *Namespace:
		fields["status.phase"] = o.Status.Phase
	case *ReplicaSet:
		fields["status.replicas"] = strconv.Itoa(int(o.Status.Replicas))
	}
	return fields
}

// selectableFields maps each kind to the sorted names of its selectable fields.
var selectableFields = sync.OnceValue(func() map[string][]string {
	byKind := map[string][]string{}
	for _, r := range Resources() {
		byKind[r.Kind] = make([]string, 0)
		for field := range FieldsOf(r.New()) {
			byKind[r.Kind] = append(byKind[r.Kind], field)
		}
		sort.Strings(byKind[r.Kind])
	}
	return byKind
})

// SelectableFields returns the fields of kind that a field selector may use.
func SelectableFields(kind string) []string { return selectableFields()[kind] }

// ValidateFieldSelector checks that sel uses only fields selectable on kind,
// naming the first other one as Kubernetes does: "field label not supported: spec.foo".
func ValidateFieldSelector(kind string, sel FieldSelector) error {
	supported, ok := selectableFields()[kind]
	if !ok {
		return fmt.Errorf("no kind %q is served", kind)
	}
	for _, r := range sel.Requirements {
		if i := sort.SearchStrings(supported, r.Field); i == len(supported) || supported[i] != r.Field {
			return fmt.Errorf("field label not supported: %s", r.Field)
		}
	}
	return nil
}
