package api

import (
	"fmt"
	"strconv"
)

// fieldPath is a path to a field in Kubernetes' notation, as it appears in
// error messages: "spec.containers[0].ports", "metadata.labels[app]".
type fieldPath string

// Child descends into a named field.
func (p fieldPath) Child(names ...string) fieldPath {
	for _, name := range names {
		if p == "" {
			p = fieldPath(name)
		} else {
			p += fieldPath("." + name)
		}
	}
	return p
}

// Index descends into an element of a list.
func (p fieldPath) Index(i int) fieldPath { return p + fieldPath("["+strconv.Itoa(i)+"]") }

// Key descends into an entry of a map.
func (p fieldPath) Key(key string) fieldPath { return p + fieldPath("["+key+"]") }

// The FieldError constructors of status.go, taking a fieldPath.

func required(p fieldPath, detail string) *FieldError { return Required(string(p), detail) }

func invalid(p fieldPath, value any, detail string) *FieldError {
	return Invalid(string(p), value, detail)
}

func duplicate(p fieldPath, value any) *FieldError { return Duplicate(string(p), value) }

func notSupported(p fieldPath, value any, allowed ...string) *FieldError {
	return NotSupported(string(p), value, allowed)
}

func forbidden(p fieldPath, detail string) *FieldError { return Forbidden(string(p), detail) }

// goSyntax shows a composite bad value in Go syntax, as Kubernetes' field
// errors do (`map[string]string{"run":"x"}` rather than `map[run:x]`).
type goSyntax struct{ value any }

func (g goSyntax) String() string { return fmt.Sprintf("%#v", g.value) }
