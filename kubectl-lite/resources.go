package kubectl

import (
	"encoding/json"
	"fmt"
	"strings"

	"kubelite/api"
)

// resourceGroup is one resource type named on the command line with the
// object names asked for (none means all of them).
type resourceGroup struct {
	resource *api.Resource
	names    []string
}

// allCategory is what `get all` expands to, in kubectl's order.
func allCategory() []string { return []string{"pods", "services", "deployments", "replicasets"} }

// parseResourceArgs reads "TYPE[,TYPE...] [NAME...]" or "TYPE/NAME ...".
// Consecutive TYPE/NAME arguments of one type form one group, so that
// they are printed in one table.
func parseResourceArgs(scheme *api.Scheme, args []string) ([]resourceGroup, error) {
	if len(args) == 0 {
		return nil, nil
	}
	if strings.Contains(args[0], "/") {
		var groups []resourceGroup
		for _, arg := range args {
			typ, name, ok := strings.Cut(arg, "/")
			if !ok || typ == "" || name == "" {
				if !ok {
					return nil, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kubectl-lite get resource/<resource_name>' instead of 'kubectl-lite get resource resource/<resource_name>'")
				}
				return nil, fmt.Errorf("arguments in resource/name form must have a single resource and name")
			}
			r, err := lookupResource(scheme, typ)
			if err != nil {
				return nil, err
			}
			if n := len(groups); n > 0 && groups[n-1].resource == r {
				groups[n-1].names = append(groups[n-1].names, name)
				continue
			}
			groups = append(groups, resourceGroup{resource: r, names: []string{name}})
		}
		return groups, nil
	}
	names := args[1:]
	for _, n := range names {
		if strings.Contains(n, "/") {
			return nil, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kubectl-lite get resource/<resource_name>' instead of 'kubectl-lite get resource resource/<resource_name>'")
		}
	}
	var types []string
	for _, t := range strings.Split(args[0], ",") {
		if t == "all" {
			types = append(types, allCategory()...)
			continue
		}
		if t != "" {
			types = append(types, t)
		}
	}
	var groups []resourceGroup
	for _, t := range types {
		r, err := lookupResource(scheme, t)
		if err != nil {
			return nil, err
		}
		groups = append(groups, resourceGroup{resource: r, names: names})
	}
	return groups, nil
}

// lookupResource finds a resource by any name kubectl accepts.
func lookupResource(scheme *api.Scheme, name string) (*api.Resource, error) {
	if r, ok := scheme.ByName(name); ok {
		return r, nil
	}
	return nil, fmt.Errorf("the server doesn't have a resource type %q", name)
}

// kindGroup is how kubectl names a type in its messages: "pod",
// "deployment.apps".
func kindGroup(r *api.Resource) string {
	kind := strings.ToLower(r.Kind)
	if r.Group == "" {
		return kind
	}
	return kind + "." + r.Group
}

// objectName is the `-o name` form: "deployment.apps/httpd".
func objectName(r *api.Resource, name string) string { return kindGroup(r) + "/" + name }

// quotedName is the form of delete messages: `deployment.apps "httpd"`.
func quotedName(r *api.Resource, name string) string {
	return fmt.Sprintf("%s %q", kindGroup(r), name)
}

// decodeObject decodes one object of resource r.
func decodeObject(r *api.Resource, raw []byte) (api.Object, error) {
	obj := r.New()
	if err := json.Unmarshal(raw, obj); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", r.Kind, err)
	}
	return obj, nil
}

// rawList is a list body with its items kept as JSON.
type rawList struct {
	Metadata struct {
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Items []json.RawMessage `json:"items"`
}

// listedObjects is a list read from the server: each item both as the
// server sent it (for -o json/yaml) and decoded (for tables).
type listedObjects struct {
	resourceVersion string
	raw             []json.RawMessage
	objects         []api.Object
}

// decodeList decodes a list body of resource r. Items of a list carry no
// apiVersion and kind on the wire; they are filled in as kubectl does.
func decodeList(r *api.Resource, body []byte) (*listedObjects, error) {
	var list rawList
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", r.ListKind(), err)
	}
	out := &listedObjects{resourceVersion: list.Metadata.ResourceVersion}
	for _, item := range list.Items {
		item, err := withTypeMeta(r, item)
		if err != nil {
			return nil, err
		}
		obj, err := decodeObject(r, item)
		if err != nil {
			return nil, err
		}
		out.raw = append(out.raw, item)
		out.objects = append(out.objects, obj)
	}
	return out, nil
}

// withTypeMeta sets apiVersion and kind on an object's JSON when missing.
func withTypeMeta(r *api.Resource, raw json.RawMessage) (json.RawMessage, error) {
	var meta api.TypeMeta
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", r.Kind, err)
	}
	if meta.APIVersion != "" && meta.Kind != "" {
		return raw, nil
	}
	obj, err := decodeJSONObject(raw)
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", r.Kind, err)
	}
	obj["apiVersion"] = r.APIVersion()
	obj["kind"] = r.Kind
	return json.Marshal(obj)
}
