package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// DecodeOptions say what decoding does with fields the kind does not have
// (misspelt, misplaced, or from another version) and with keys given twice,
// like kubectl's --validate=strict|warn|ignore.
type DecodeOptions struct {
	Strict bool // they are errors: a *DecodeError
	Warn   bool // they are returned as warnings
	// With neither, they are dropped silently.
}

// DecodeError reports the unknown and duplicate fields of a document decoded
// strictly, each with its full path, in Kubernetes' words:
// `strict decoding error: unknown field "spec.template.spec.containers[0].port" (did you mean "ports"?)`.
type DecodeError struct {
	Problems []string
}

func (e *DecodeError) Error() string {
	return "strict decoding error: " + strings.Join(e.Problems, ", ")
}

// MalformedError reports a document that cannot be decoded at all: not YAML
// or JSON, not an object, of another kind than expected, or with values of
// the wrong type (`spec.replicas: expected integer, got string "three"`).
type MalformedError struct {
	Problems []string
}

func (e *MalformedError) Error() string { return strings.Join(e.Problems, ", ") }

func malformed(format string, args ...any) *MalformedError {
	return &MalformedError{Problems: []string{fmt.Sprintf(format, args...)}}
}

// Decode reads one document, YAML or JSON, into a new object of the kind it
// declares; use SplitYAMLDocuments first for a stream of them.
//
// When want is given, the document must be of want's kind; apiVersion and
// kind may then be left out. Without want, the document must name a kind
// kubelite serves. A document in a deprecated version is converted to the
// stored version, with Kubernetes' deprecation warning. The object returned
// has TypeMeta set to the stored apiVersion and kind. Warnings are returned
// even with an error.
func (s *Scheme) Decode(data []byte, want *Resource, opts DecodeOptions) (obj Object, warnings []string, err error) {
	doc, err := documentJSON(data)
	if err != nil {
		return nil, nil, malformed("%s", err)
	}
	if doc == nil {
		return nil, nil, malformed("the document is empty")
	}
	top, err := objectFields(doc, "")
	if err != nil {
		return nil, nil, malformed("%s", err)
	}
	apiVersion, errVersion := stringField(top, "apiVersion", "apiVersion")
	kind, errKind := stringField(top, "kind", "kind")
	if err := errors.Join(errVersion, errKind); err != nil {
		return nil, nil, malformed("%s", strings.ReplaceAll(err.Error(), "\n", ", "))
	}
	resource, apiVersion, err := s.resolve(apiVersion, kind, want)
	if err != nil {
		return nil, nil, malformed("%s", err)
	}

	target := resource.New()
	legacy := legacyFormOf(apiVersion, resource.Kind)
	if legacy != nil {
		target = legacy.newObject(resource)
		warnings = append(warnings, legacy.deprecationWarning(resource))
	}
	fieldWarnings, err := decodeChecked(doc, target, opts)
	warnings = append(warnings, fieldWarnings...)
	if err != nil {
		return nil, warnings, err
	}
	if legacy != nil {
		target = legacy.toStored(target)
	}
	*target.GetTypeMeta() = TypeMeta{APIVersion: resource.APIVersion(), Kind: resource.Kind}
	return target, warnings, nil
}

// DecodeInto reads one document into obj with the same checks as Decode,
// for bodies that are not resources of their own (Binding, Scale). Its
// apiVersion and kind are not checked.
func DecodeInto(data []byte, obj Object, opts DecodeOptions) (warnings []string, err error) {
	doc, err := documentJSON(data)
	if err != nil {
		return nil, malformed("%s", err)
	}
	if doc == nil {
		return nil, malformed("the document is empty")
	}
	if _, err := objectFields(doc, ""); err != nil {
		return nil, malformed("%s", err)
	}
	return decodeChecked(doc, obj, opts)
}

// decodeChecked decodes a JSON document into target after checking its
// fields against target's type.
func decodeChecked(doc []byte, target Object, opts DecodeOptions) (warnings []string, err error) {
	cleaned, strictProblems, typeProblems, err := checkFields(doc, reflect.TypeOf(target).Elem())
	if err != nil {
		return nil, malformed("invalid JSON: %s", err)
	}
	if len(typeProblems) > 0 {
		// The document cannot be decoded; list what strict decoding would also refuse.
		if opts.Strict {
			typeProblems = append(typeProblems, strictProblems...)
		}
		return nil, &MalformedError{Problems: typeProblems}
	}
	if len(strictProblems) > 0 {
		switch {
		case opts.Strict:
			return nil, &DecodeError{Problems: strictProblems}
		case opts.Warn:
			warnings = strictProblems
		}
	}
	if err := json.Unmarshal(cleaned, target); err != nil {
		// checkFields vets every value, so this is not expected; still, no Go jargon.
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return warnings, malformed("%s: expected %s, got %s", typeErr.Field, typeErr.Type, typeErr.Value)
		}
		return warnings, malformed("cannot decode the document: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return warnings, nil
}

// resolve finds the resource a document of apiVersion and kind belongs to,
// checked against want when given, and returns the apiVersion to decode
// (want's own when the document leaves it out).
func (s *Scheme) resolve(apiVersion, kind string, want *Resource) (*Resource, string, error) {
	if want == nil {
		switch {
		case kind == "":
			return nil, "", errors.New("kind is missing: every document must say what it is (e.g. kind: Deployment)")
		case apiVersion == "":
			return nil, "", fmt.Errorf("apiVersion is missing: every document must say its API version (e.g. apiVersion: %s)", s.suggestVersion(kind))
		}
		r, _, ok := s.ByKind(apiVersion, kind)
		if !ok {
			return nil, "", fmt.Errorf("no matches for kind %q in version %q%s", kind, apiVersion, s.versionHint(kind))
		}
		return r, apiVersion, nil
	}
	if kind != "" && kind != want.Kind {
		return nil, "", fmt.Errorf("expected kind %q, got %q", want.Kind, kind)
	}
	if apiVersion == "" {
		return want, want.APIVersion(), nil
	}
	if apiVersion != want.APIVersion() && legacyFormOf(apiVersion, want.Kind) == nil {
		return nil, "", fmt.Errorf("expected apiVersion %q for kind %q, got %q%s", want.APIVersion(), want.Kind, apiVersion, s.versionHint(want.Kind))
	}
	return want, apiVersion, nil
}

// suggestVersion is the apiVersion that serves kind, or "v1".
func (s *Scheme) suggestVersion(kind string) string {
	for _, r := range s.all {
		if r.Kind == kind {
			return r.APIVersion()
		}
	}
	return "v1"
}

// versionHint lists the versions accepted for kind, for an error message.
func (s *Scheme) versionHint(kind string) string {
	for _, r := range s.all {
		if r.Kind != kind {
			continue
		}
		hint := fmt.Sprintf("; %s is served as %q", kind, r.APIVersion())
		if legacy := LegacyVersions(kind); len(legacy) > 0 {
			hint += fmt.Sprintf(" (deprecated versions accepted: %s)", strings.Join(legacy, ", "))
		}
		return hint
	}
	return ""
}
