package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
	goyaml "sigs.k8s.io/yaml/goyaml.v2"
)

// SplitYAMLDocuments splits a manifest file, as `kubectl apply -f` reads it,
// into one JSON document per object. Documents are separated by lines
// starting with "---"; empty and comment-only documents are dropped; the
// items of a List (kind: List, or any kind ending in "List") become documents
// of their own; a document may also be JSON, or a stream of JSON objects.
// Errors name the document and the line, counted from the start of data.
func SplitYAMLDocuments(data []byte) ([][]byte, error) {
	var docs [][]byte
	for i, chunk := range splitOnSeparators(data) {
		jsonDocs, err := chunkToJSON(chunk.text)
		if err != nil {
			return nil, fmt.Errorf("document %d: %s", i+1, shiftLineNumbers(err.Error(), chunk.firstLine-1))
		}
		for _, doc := range jsonDocs {
			items, err := expandList(doc)
			if err != nil {
				return nil, fmt.Errorf("document %d: %w", i+1, err)
			}
			docs = append(docs, items...)
		}
	}
	return docs, nil
}

// PeekMeta reads the identity of one document (YAML or JSON) without
// decoding it: enough to pick its resource and to name it in messages.
func PeekMeta(doc []byte) (apiVersion, kind, namespace, name string, err error) {
	data, err := documentJSON(doc)
	if err != nil {
		return "", "", "", "", err
	}
	if data == nil {
		return "", "", "", "", errors.New("the document is empty")
	}
	top, err := objectFields(data, "")
	if err != nil {
		return "", "", "", "", err
	}
	if apiVersion, err = stringField(top, "apiVersion", "apiVersion"); err != nil {
		return "", "", "", "", err
	}
	if kind, err = stringField(top, "kind", "kind"); err != nil {
		return "", "", "", "", err
	}
	rawMeta, ok := top["metadata"]
	if !ok || string(rawMeta) == "null" {
		return apiVersion, kind, "", "", nil
	}
	meta, err := objectFields(rawMeta, "metadata")
	if err != nil {
		return "", "", "", "", err
	}
	if namespace, err = stringField(meta, "namespace", "metadata.namespace"); err != nil {
		return "", "", "", "", err
	}
	if name, err = stringField(meta, "name", "metadata.name"); err != nil {
		return "", "", "", "", err
	}
	return apiVersion, kind, namespace, name, nil
}

// documentChunk is the text of one document of a stream and the line it starts on.
type documentChunk struct {
	text      []byte
	firstLine int
}

// splitOnSeparators cuts a stream at its document separators: lines that
// start with "---" followed by nothing but blanks or a comment.
func splitOnSeparators(data []byte) []documentChunk {
	var chunks []documentChunk
	var current []byte
	firstLine := 1
	for i, line := range bytes.SplitAfter(data, []byte("\n")) {
		if isDocumentSeparator(line) {
			chunks = append(chunks, documentChunk{text: current, firstLine: firstLine})
			current, firstLine = nil, i+2
			continue
		}
		current = append(current, line...)
	}
	return append(chunks, documentChunk{text: current, firstLine: firstLine})
}

func isDocumentSeparator(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("---"))
	if !ok {
		return false
	}
	rest = bytes.TrimSpace(rest)
	return len(rest) == 0 || rest[0] == '#'
}

// chunkToJSON converts one document, or a stream of JSON objects, to JSON documents.
func chunkToJSON(chunk []byte) ([][]byte, error) {
	if trimmed := bytes.TrimSpace(chunk); len(trimmed) > 0 && trimmed[0] == '{' && !json.Valid(trimmed) {
		if docs, ok := splitJSONStream(trimmed); ok {
			return docs, nil
		}
	}
	doc, err := documentJSON(chunk)
	if err != nil || doc == nil {
		return nil, err
	}
	return [][]byte{doc}, nil
}

// splitJSONStream reads concatenated JSON objects; ok is false if data is not one.
func splitJSONStream(data []byte) (docs [][]byte, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			return docs, len(docs) > 0
		} else if err != nil || raw[0] != '{' {
			return nil, false
		}
		docs = append(docs, raw)
	}
}

// expandList returns the items of a List document, each one a document, or
// the document itself when it is no List.
func expandList(doc []byte) ([][]byte, error) {
	top, err := objectFields(doc, "")
	if err != nil {
		return nil, err
	}
	kind, _ := stringField(top, "kind", "kind")
	rawItems, hasItems := top["items"]
	if !strings.HasSuffix(kind, "List") || !hasItems {
		return [][]byte{doc}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(rawItems, &items); err != nil {
		return nil, fmt.Errorf("items: expected array, got %s", describeJSON(rawItems))
	}
	var docs [][]byte
	for i, item := range items {
		if _, err := objectFields(item, fmt.Sprintf("items[%d]", i)); err != nil {
			return nil, err
		}
		expanded, err := expandList(item)
		if err != nil {
			return nil, err
		}
		docs = append(docs, expanded...)
	}
	return docs, nil
}

// documentJSON converts one YAML or JSON document to JSON, or to nil when the
// document is empty (nothing, or only comments). YAML key order and repeated
// keys are kept, so that strict decoding reports problems in the user's order
// and can see the repeats.
func documentJSON(data []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, nil
	}
	if trimmed[0] == '{' && json.Valid(trimmed) {
		return trimmed, nil
	}
	if bytes.Contains(data, []byte("<<")) {
		// Decoding into a MapSlice, yaml.v2 drops merge keys ("<<: *defaults").
		// Kubernetes' own converter merges them, at the price of sorted keys
		// and silently collapsed repeats.
		converted, err := yaml.YAMLToJSON(data)
		if err != nil {
			return nil, errors.New(strings.TrimPrefix(err.Error(), "error converting YAML to JSON: "))
		}
		if string(converted) == "null" {
			return nil, nil
		}
		if converted[0] != '{' {
			return nil, fmt.Errorf("expected a mapping of fields (apiVersion, kind, metadata, ...), got %s", describeJSON(converted))
		}
		return converted, nil
	}
	var doc goyaml.MapSlice
	if err := goyaml.Unmarshal(data, &doc); err != nil {
		return nil, notAMappingError(data, err)
	}
	if doc == nil {
		return nil, nil
	}
	var out bytes.Buffer
	if err := writeYAMLAsJSON(&out, doc); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// notAMappingError explains a document that is a list or a scalar rather
// than an object; other errors (syntax) are returned as they are.
func notAMappingError(data []byte, err error) error {
	var typeErr *goyaml.TypeError
	if !errors.As(err, &typeErr) {
		return err
	}
	var value any
	if goyaml.Unmarshal(data, &value) != nil {
		return err
	}
	got := "a scalar"
	switch value.(type) {
	case []any:
		got = "a list"
	case string:
		got = "a string"
	case bool:
		got = "a boolean"
	case int, int64, uint64, float64:
		got = "a number"
	}
	return fmt.Errorf("expected a mapping of fields (apiVersion, kind, metadata, ...), got %s", got)
}

// writeYAMLAsJSON writes a value decoded by yaml.v2 as JSON, keeping the
// order and repeats of mapping keys.
func writeYAMLAsJSON(out *bytes.Buffer, value any) error {
	switch v := value.(type) {
	case goyaml.MapSlice:
		out.WriteByte('{')
		for i, item := range v {
			if i > 0 {
				out.WriteByte(',')
			}
			key, err := yamlKeyString(item.Key)
			if err != nil {
				return err
			}
			writeJSONString(out, key)
			out.WriteByte(':')
			if err := writeYAMLAsJSON(out, item.Value); err != nil {
				return err
			}
		}
		out.WriteByte('}')
	case []any:
		out.WriteByte('[')
		for i, elem := range v {
			if i > 0 {
				out.WriteByte(',')
			}
			if err := writeYAMLAsJSON(out, elem); err != nil {
				return err
			}
		}
		out.WriteByte(']')
	case nil:
		out.WriteString("null")
	case string:
		writeJSONString(out, v)
	case bool:
		out.WriteString(strconv.FormatBool(v))
	case int:
		out.WriteString(strconv.Itoa(v))
	case int64:
		out.WriteString(strconv.FormatInt(v, 10))
	case uint64:
		out.WriteString(strconv.FormatUint(v, 10))
	case float64:
		number, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("the number %v cannot be represented in JSON", v)
		}
		out.Write(number)
	default:
		return fmt.Errorf("unsupported YAML value %v of type %T", v, v)
	}
	return nil
}

// yamlKeyString turns a YAML mapping key into a JSON object key; YAML allows
// numbers and booleans as keys, and even lists and mappings, which JSON cannot hold.
func yamlKeyString(key any) (string, error) {
	switch k := key.(type) {
	case string:
		return k, nil
	case int:
		return strconv.Itoa(k), nil
	case int64:
		return strconv.FormatInt(k, 10), nil
	case uint64:
		return strconv.FormatUint(k, 10), nil
	case float64:
		return strconv.FormatFloat(k, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(k), nil
	}
	return "", fmt.Errorf("mapping key %v is not a string: JSON object keys must be strings", key)
}

func writeJSONString(out *bytes.Buffer, s string) {
	encoded, _ := json.Marshal(s) // a string always encodes
	out.Write(encoded)
}

var yamlLineNumber = regexp.MustCompile(`\bline (\d+)`)

// shiftLineNumbers makes the "line N" of a YAML error count from the start
// of the file rather than from the start of its document.
func shiftLineNumbers(msg string, offset int) string {
	if offset == 0 {
		return msg
	}
	return yamlLineNumber.ReplaceAllStringFunc(msg, func(match string) string {
		n, err := strconv.Atoi(strings.TrimPrefix(match, "line "))
		if err != nil {
			return match
		}
		return "line " + strconv.Itoa(n+offset)
	})
}

// objectFields splits a JSON object into its fields; path names it in errors.
func objectFields(data []byte, path string) (map[string]json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		if path == "" {
			return nil, fmt.Errorf("expected a mapping of fields (apiVersion, kind, metadata, ...), got %s", describeJSON(data))
		}
		return nil, fmt.Errorf("%s: expected object, got %s", path, describeJSON(data))
	}
	return fields, nil
}

// stringField reads a string field of an object; absent and null are "".
func stringField(fields map[string]json.RawMessage, key, path string) (string, error) {
	raw, ok := fields[key]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s: expected string, got %s", path, describeJSON(raw))
	}
	return s, nil
}

// describeJSON names the type of a JSON value, and shows it when short:
// `string "three"`, `number 3.5`, `boolean true`, `object`.
func describeJSON(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case 'n':
		return "null"
	case 't', 'f':
		return "boolean " + string(raw)
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return "string " + quoteShort(s)
		}
		return "string"
	}
	return "number " + string(raw)
}

// quoteShort quotes s, shortened if long, for an error message.
func quoteShort(s string) string {
	const maxLen = 64
	if len(s) > maxLen {
		cut := maxLen
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
