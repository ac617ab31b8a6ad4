package podworker

import (
	"fmt"
	"sort"
	"strings"

	"kubelite/api"
)

// podFields are the values the downward API can put in a container's
// environment.
type podFields struct {
	pod    *api.Pod
	podIP  string
	hostIP string
}

// value returns the value of a downward API field path, e.g. status.podIP
// or metadata.labels['app'].
func (f podFields) value(path string) (string, error) {
	meta := f.pod.ObjectMeta
	if base, key, ok := strings.Cut(path, "['"); ok && strings.HasSuffix(key, "']") {
		key = strings.TrimSuffix(key, "']")
		switch base {
		case "metadata.labels":
			return meta.Labels[key], nil
		case "metadata.annotations":
			return meta.Annotations[key], nil
		}
	}
	switch path {
	case "metadata.name":
		return meta.Name, nil
	case "metadata.namespace":
		return meta.Namespace, nil
	case "metadata.uid":
		return meta.UID, nil
	case "metadata.labels":
		return formatMap(meta.Labels), nil
	case "metadata.annotations":
		return formatMap(meta.Annotations), nil
	case "spec.nodeName":
		return f.pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return f.pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return f.podIP, nil
	case "status.hostIP":
		return f.hostIP, nil
	}
	return "", fmt.Errorf("unsupported fieldRef %q", path)
}

// formatMap writes a map as the downward API does: key="value" lines,
// sorted by key.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = fmt.Sprintf("%s=%q", k, m[k])
	}
	return strings.Join(lines, "\n")
}

// containerEnv builds a container's environment, KEY=value, in the order
// declared. Values may refer to variables declared before them as $(NAME),
// and fieldRef values come from the Pod (the downward API).
func containerEnv(c *api.Container, fields podFields) ([]string, error) {
	defined := map[string]string{}
	lookup := func(name string) (string, bool) {
		v, ok := defined[name]
		return v, ok
	}
	env := make([]string, 0, len(c.Env))
	for _, ev := range c.Env {
		value := expandVars(ev.Value, lookup)
		if ev.ValueFrom != nil {
			if ev.ValueFrom.FieldRef == nil {
				return nil, fmt.Errorf("env %s: only fieldRef is supported in valueFrom", ev.Name)
			}
			v, err := fields.value(ev.ValueFrom.FieldRef.FieldPath)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", ev.Name, err)
			}
			value = v
		}
		defined[ev.Name] = value
		env = append(env, ev.Name+"="+value)
	}
	return env, nil
}

// expandArgs expands $(NAME) references in a container's command or args
// with its environment.
func expandArgs(args []string, env []string) []string {
	if len(args) == 0 {
		return nil
	}
	vars := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	lookup := func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = expandVars(a, lookup)
	}
	return out
}

// expandVars is Kubernetes' variable expansion: $(NAME) becomes NAME's
// value when NAME is defined and stays as written when it is not; $$ is a
// literal $, so $$(NAME) is the text $(NAME).
func expandVars(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
