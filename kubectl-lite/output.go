package kubectl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"sigs.k8s.io/yaml"

	"kubelite/api"
)

// Output formats of -o.
const (
	outputTable = ""
	outputWide  = "wide"
	outputName  = "name"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

// printedObject is an object as the server sent it, with its resource.
type printedObject struct {
	resource *api.Resource
	raw      json.RawMessage
	name     string
}

// printObjects writes objects as -o json, yaml or name does: one
// "kind/name" line each, or for json and yaml the object alone when single
// is set, else a `kind: List` of them.
func printObjects(out io.Writer, format string, objs []printedObject, single bool) error {
	switch format {
	case outputName:
		for _, o := range objs {
			fmt.Fprintln(out, objectName(o.resource, o.name))
		}
		return nil
	case outputJSON, outputYAML:
		var doc any
		if single && len(objs) == 1 {
			doc = objs[0].raw
		} else {
			items := make([]json.RawMessage, len(objs))
			for i, o := range objs {
				items[i] = o.raw
			}
			doc = map[string]any{
				"apiVersion": "v1",
				"kind":       "List",
				"items":      items,
				"metadata":   map[string]any{"resourceVersion": ""},
			}
		}
		return writeDocument(out, format, doc)
	default:
		return fmt.Errorf("unable to match a printer suitable for the output format %q, allowed formats are: json,name,wide,yaml", format)
	}
}

// writeDocument writes one value as kubectl's JSON (sorted keys, four
// spaces) or YAML printer does.
func writeDocument(out io.Writer, format string, doc any) error {
	data, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encoding output: %w", err)
	}
	// Re-decode so that keys come out sorted whatever the server's order.
	normalized, err := decodeJSONObject(data)
	if err != nil {
		return fmt.Errorf("encoding output: %w", err)
	}
	if format == outputYAML {
		data, err = json.Marshal(normalized)
		if err != nil {
			return fmt.Errorf("encoding output: %w", err)
		}
		y, err := yaml.JSONToYAML(data)
		if err != nil {
			return fmt.Errorf("encoding output: %w", err)
		}
		_, err = out.Write(y)
		return err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "    ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(normalized); err != nil {
		return fmt.Errorf("encoding output: %w", err)
	}
	_, err = out.Write(buf.Bytes())
	return err
}

// validateOutput checks an -o value against the formats a command allows.
func validateOutput(format string, allowed ...string) error {
	for _, a := range allowed {
		if format == a {
			return nil
		}
	}
	return fmt.Errorf("unable to match a printer suitable for the output format %q, allowed formats are: %s", format, joinFormats(allowed))
}

func joinFormats(formats []string) string {
	var b bytes.Buffer
	for _, f := range formats {
		if f == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(",")
		}
		b.WriteString(f)
	}
	return b.String()
}
