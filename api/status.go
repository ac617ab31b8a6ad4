package api

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
)

// StatusReason is the machine-readable reason of a failed API call.
type StatusReason string

// Reasons as Kubernetes spells them.
const (
	ReasonNotFound         StatusReason = "NotFound"
	ReasonAlreadyExists    StatusReason = "AlreadyExists"
	ReasonConflict         StatusReason = "Conflict"
	ReasonInvalid          StatusReason = "Invalid"
	ReasonBadRequest       StatusReason = "BadRequest"
	ReasonUnauthorized     StatusReason = "Unauthorized"
	ReasonForbidden        StatusReason = "Forbidden"
	ReasonMethodNotAllowed StatusReason = "MethodNotAllowed"
	ReasonGone             StatusReason = "Expired"
	ReasonRequestTooLarge  StatusReason = "RequestEntityTooLarge"
	ReasonInternalError    StatusReason = "InternalError"
	ReasonServiceUnavail   StatusReason = "ServiceUnavailable"
	ReasonTimeout          StatusReason = "Timeout"
)

// StatusCause is one problem behind a failure, usually one field.
type StatusCause struct {
	Type    string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	Field   string `json:"field,omitempty"`
}

// StatusDetails names the object a failure is about.
type StatusDetails struct {
	Name   string        `json:"name,omitempty"`
	Group  string        `json:"group,omitempty"`
	Kind   string        `json:"kind,omitempty"`
	UID    string        `json:"uid,omitempty"`
	Causes []StatusCause `json:"causes,omitempty"`
}

// Status is the body of every API error (and of some successful deletes).
// It implements error so that server code can return it and client code can
// inspect it with errors.As.
type Status struct {
	TypeMeta `json:",inline"`
	ListMeta `json:"metadata"`
	Status   string         `json:"status,omitempty"`
	Message  string         `json:"message,omitempty"`
	Reason   StatusReason   `json:"reason,omitempty"`
	Details  *StatusDetails `json:"details,omitempty"`
	Code     int32          `json:"code,omitempty"`
}

func (s *Status) Error() string { return s.Message }

// NewStatus builds a failure Status.
func NewStatus(code int, reason StatusReason, msg string) *Status {
	return &Status{
		TypeMeta: TypeMeta{APIVersion: "v1", Kind: "Status"},
		Status:   "Failure",
		Message:  msg,
		Reason:   reason,
		Code:     int32(code),
	}
}

// qualified is "pods" or "deployments.apps": how Kubernetes names a resource in messages.
func qualified(group, resource string) string {
	if group == "" {
		return resource
	}
	return resource + "." + group
}

// NewNotFound is `pods "x" not found`.
func NewNotFound(group, resource, name string) *Status {
	s := NewStatus(http.StatusNotFound, ReasonNotFound, fmt.Sprintf("%s %q not found", qualified(group, resource), name))
	s.Details = &StatusDetails{Name: name, Group: group, Kind: resource}
	return s
}

// NewAlreadyExists is `pods "x" already exists`.
func NewAlreadyExists(group, resource, name string) *Status {
	s := NewStatus(http.StatusConflict, ReasonAlreadyExists, fmt.Sprintf("%s %q already exists", qualified(group, resource), name))
	s.Details = &StatusDetails{Name: name, Group: group, Kind: resource}
	return s
}

// NewConflict reports an update based on a stale resourceVersion.
func NewConflict(group, resource, name string, err error) *Status {
	s := NewStatus(http.StatusConflict, ReasonConflict,
		fmt.Sprintf("Operation cannot be fulfilled on %s %q: %v", qualified(group, resource), name, err))
	s.Details = &StatusDetails{Name: name, Group: group, Kind: resource}
	return s
}

// NewInvalid reports validation errors, one cause per field, in kubectl's wording:
// `Deployment.apps "x" is invalid: [spec.replicas: Invalid value: -1: must be ...]`.
func NewInvalid(group, kind, name string, errs FieldErrors) *Status {
	causes := make([]StatusCause, 0, len(errs))
	for _, e := range errs {
		causes = append(causes, StatusCause{Type: string(e.Type), Message: e.ErrorBody(), Field: e.Field})
	}
	qkind := kind
	if group != "" {
		qkind = kind + "." + group
	}
	s := NewStatus(http.StatusUnprocessableEntity, ReasonInvalid, fmt.Sprintf("%s %q is invalid: %s", qkind, name, errs.Error()))
	s.Details = &StatusDetails{Name: name, Group: group, Kind: kind, Causes: causes}
	return s
}

// NewBadRequest is a 400 with the given message.
func NewBadRequest(msg string) *Status {
	return NewStatus(http.StatusBadRequest, ReasonBadRequest, msg)
}

// NewGone reports a watch from a compacted resourceVersion.
func NewGone(msg string) *Status { return NewStatus(http.StatusGone, ReasonGone, msg) }

// NewUnauthorized is a 401.
func NewUnauthorized() *Status {
	return NewStatus(http.StatusUnauthorized, ReasonUnauthorized, "Unauthorized")
}

// NewForbidden is a 403: `pods "x" is forbidden: reason`, or without a name
// `deployments.apps is forbidden: reason`.
func NewForbidden(group, resource, name string, reason string) *Status {
	subject := qualified(group, resource)
	if name != "" {
		subject = fmt.Sprintf("%s %q", subject, name)
	}
	s := NewStatus(http.StatusForbidden, ReasonForbidden, fmt.Sprintf("%s is forbidden: %s", subject, reason))
	s.Details = &StatusDetails{Name: name, Group: group, Kind: resource}
	return s
}

// NewInternalError wraps an unexpected server-side error.
func NewInternalError(err error) *Status {
	return NewStatus(http.StatusInternalServerError, ReasonInternalError, "Internal error occurred: "+err.Error())
}

// ReasonOf returns the StatusReason of err if it is (or wraps) a *Status.
func ReasonOf(err error) StatusReason {
	var s *Status
	if errors.As(err, &s) {
		return s.Reason
	}
	return ""
}

// IsNotFound reports whether err is a NotFound Status.
func IsNotFound(err error) bool { return ReasonOf(err) == ReasonNotFound }

// IsAlreadyExists reports whether err is an AlreadyExists Status.
func IsAlreadyExists(err error) bool { return ReasonOf(err) == ReasonAlreadyExists }

// IsConflict reports whether err is a Conflict Status.
func IsConflict(err error) bool { return ReasonOf(err) == ReasonConflict }

// IsInvalid reports whether err is an Invalid Status.
func IsInvalid(err error) bool { return ReasonOf(err) == ReasonInvalid }

// IsGone reports whether err is a 410 (resourceVersion too old).
func IsGone(err error) bool { return ReasonOf(err) == ReasonGone }

// FieldErrorType is the kind of a validation problem.
type FieldErrorType string

// Field error types, in Kubernetes' words.
const (
	FieldValueRequired     FieldErrorType = "FieldValueRequired"
	FieldValueInvalid      FieldErrorType = "FieldValueInvalid"
	FieldValueDuplicate    FieldErrorType = "FieldValueDuplicate"
	FieldValueNotSupported FieldErrorType = "FieldValueNotSupported"
	FieldValueForbidden    FieldErrorType = "FieldValueForbidden"
)

// FieldError is one validation problem at one field path,
// e.g. `spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive`.
type FieldError struct {
	Type     FieldErrorType
	Field    string
	BadValue any
	Detail   string
}

// ErrorBody is the message without the field path.
func (e *FieldError) ErrorBody() string {
	var s string
	switch e.Type {
	case FieldValueRequired:
		s = "Required value"
	case FieldValueInvalid:
		s = fmt.Sprintf("Invalid value: %s", formatBadValue(e.BadValue))
	case FieldValueDuplicate:
		s = fmt.Sprintf("Duplicate value: %s", formatBadValue(e.BadValue))
	case FieldValueNotSupported:
		s = fmt.Sprintf("Unsupported value: %s", formatBadValue(e.BadValue))
	case FieldValueForbidden:
		s = "Forbidden"
	default:
		s = string(e.Type)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// formatBadValue prints a rejected value as Kubernetes does: strings quoted,
// pointers followed, Stringers by their String, composites as Go syntax
// (`map[string]string{"run":"x"}`).
func formatBadValue(v any) string {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return "null"
		}
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return "null"
	}
	v = rv.Interface()
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case fmt.Stringer:
		return v.String()
	}
	switch rv.Kind() {
	case reflect.Map, reflect.Slice, reflect.Array, reflect.Struct:
		return fmt.Sprintf("%#v", v)
	}
	return fmt.Sprintf("%v", v)
}

func (e *FieldError) Error() string { return e.Field + ": " + e.ErrorBody() }

// FieldErrors is every problem found in one object.
type FieldErrors []*FieldError

func (l FieldErrors) Error() string {
	if len(l) == 1 {
		return l[0].Error()
	}
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.Error()
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// Required is a FieldValueRequired error.
func Required(field, detail string) *FieldError {
	return &FieldError{Type: FieldValueRequired, Field: field, Detail: detail}
}

// Invalid is a FieldValueInvalid error.
func Invalid(field string, value any, detail string) *FieldError {
	return &FieldError{Type: FieldValueInvalid, Field: field, BadValue: value, Detail: detail}
}

// Duplicate is a FieldValueDuplicate error.
func Duplicate(field string, value any) *FieldError {
	return &FieldError{Type: FieldValueDuplicate, Field: field, BadValue: value}
}

// NotSupported is a FieldValueNotSupported error listing the allowed values.
func NotSupported(field string, value any, allowed []string) *FieldError {
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	return &FieldError{Type: FieldValueNotSupported, Field: field, BadValue: value,
		Detail: "supported values: " + strings.Join(quoted, ", ")}
}

// Forbidden is a FieldValueForbidden error.
func Forbidden(field, detail string) *FieldError {
	return &FieldError{Type: FieldValueForbidden, Field: field, Detail: detail}
}
