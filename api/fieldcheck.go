package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
)

// fieldChecker walks a JSON document against the Go type it is to be decoded
// into, the way a Kubernetes API server with strict field validation does.
// It finds what encoding/json would silently drop or garble (fields the type
// does not have, keys given twice, values of the wrong type) and names each
// with its full path. It also rebuilds the document with the unknown fields
// left out, because encoding/json matches keys case-insensitively and would
// otherwise take `Replicas` or `containerport` for the real fields.
type fieldChecker struct {
	dec *json.Decoder
	// strictProblems are unknown and duplicate fields: errors, warnings or
	// nothing depending on DecodeOptions.
	strictProblems []string
	// typeProblems are values of the wrong type: always errors.
	typeProblems []string
}

// checkFields checks doc against t and returns doc without its unknown fields.
// The error is for malformed JSON only; problems are returned as lists.
func checkFields(doc []byte, t reflect.Type) (cleaned []byte, strictProblems, typeProblems []string, err error) {
	c := &fieldChecker{dec: json.NewDecoder(bytes.NewReader(doc))}
	c.dec.UseNumber()
	value, err := c.value(t, "")
	if err != nil {
		return nil, nil, nil, err
	}
	if cleaned, err = json.Marshal(value); err != nil {
		return nil, nil, nil, err
	}
	return cleaned, c.strictProblems, c.typeProblems, nil
}

// The Go types that need more than their reflect.Kind to be checked.
var (
	timeType        = reflect.TypeFor[Time]()
	microTimeType   = reflect.TypeFor[MicroTime]()
	intOrStringType = reflect.TypeFor[IntOrString]()
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
	anyType         = reflect.TypeFor[any]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// acceptsAnything reports whether any JSON value may go into t: interfaces,
// raw JSON, and types that decode themselves in ways we do not know.
func acceptsAnything(t reflect.Type) bool {
	switch t {
	case timeType, microTimeType, intOrStringType:
		return false
	case rawMessageType:
		return true
	}
	return t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(unmarshalerType)
}

// value reads the next JSON value, checks it against t and returns it in
// generic form (map[string]any, []any, string, json.Number, bool, nil).
func (c *fieldChecker) value(t reflect.Type, path fieldPath) (any, error) {
	tok, err := c.dec.Token()
	if err != nil {
		return nil, err
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch tok := tok.(type) {
	case json.Delim:
		if tok == '{' {
			return c.object(t, path)
		}
		return c.array(t, path)
	case nil:
		return nil, nil // null leaves any field unset
	default:
		return c.scalar(tok, t, path), nil
	}
}

// object reads the rest of an object whose '{' has been read.
func (c *fieldChecker) object(t reflect.Type, path fieldPath) (any, error) {
	switch {
	case acceptsAnything(t):
		return c.anyMembers(path)
	case t.Kind() == reflect.Struct && !isScalarStruct(t):
		return c.structMembers(structFieldsOf(t), path)
	case t.Kind() == reflect.Map:
		return c.mapMembers(t.Elem(), path)
	}
	c.typeProblem(path, t, "object")
	_, err := c.anyMembers(path)
	return nil, err
}

// isScalarStruct reports the struct types that JSON holds as a string or number.
func isScalarStruct(t reflect.Type) bool {
	return t == timeType || t == microTimeType || t == intOrStringType
}

// key reads the key of the next member of an object.
func (c *fieldChecker) key() (string, error) {
	tok, err := c.dec.Token()
	key, _ := tok.(string) // the decoder only returns strings in key position
	return key, err
}

// structMembers reads the members of an object decoded into a struct,
// reporting unknown fields (once each) and known fields given twice.
func (c *fieldChecker) structMembers(fields *structFields, path fieldPath) (map[string]any, error) {
	out := map[string]any{}
	seen := map[string]bool{}
	for c.dec.More() {
		key, err := c.key()
		if err != nil {
			return nil, err
		}
		fp := path.Child(key)
		ft, known := fields.types[key]
		switch {
		case !known && !seen[key]:
			c.unknownField(fp, key, fields.names)
		case known && seen[key]:
			c.strictProblems = append(c.strictProblems, fmt.Sprintf("duplicate field %q", string(fp)))
		}
		seen[key] = true
		if !known {
			ft = anyType // read and dropped
		}
		v, err := c.value(ft, fp)
		if err != nil {
			return nil, err
		}
		if known {
			out[key] = v // as in encoding/json, the last of repeated keys wins
		}
	}
	_, err := c.dec.Token() // '}'
	return out, err
}

// anyMembers reads the members of an object that may hold anything.
func (c *fieldChecker) anyMembers(path fieldPath) (map[string]any, error) {
	return c.mapMembersOf(anyType, path, false)
}

// mapMembers reads the entries of a map whose values have type elem.
func (c *fieldChecker) mapMembers(elem reflect.Type, path fieldPath) (map[string]any, error) {
	return c.mapMembersOf(elem, path, true)
}

func (c *fieldChecker) mapMembersOf(elem reflect.Type, path fieldPath, reportDuplicates bool) (map[string]any, error) {
	out := map[string]any{}
	for c.dec.More() {
		key, err := c.key()
		if err != nil {
			return nil, err
		}
		if _, repeated := out[key]; repeated && reportDuplicates {
			c.strictProblems = append(c.strictProblems, fmt.Sprintf("duplicate field %q", string(path.Key(key))))
		}
		if out[key], err = c.value(elem, path.Key(key)); err != nil {
			return nil, err
		}
	}
	_, err := c.dec.Token() // '}'
	return out, err
}

// array reads the rest of an array whose '[' has been read.
func (c *fieldChecker) array(t reflect.Type, path fieldPath) (any, error) {
	elem := anyType
	isList := (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && t.Elem().Kind() != reflect.Uint8
	switch {
	case acceptsAnything(t):
	case isList:
		elem = t.Elem()
	default:
		c.typeProblem(path, t, "array")
	}
	out := []any{}
	for i := 0; c.dec.More(); i++ {
		v, err := c.value(elem, path.Index(i))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if _, err := c.dec.Token(); err != nil { // ']'
		return nil, err
	}
	if !acceptsAnything(t) && !isList {
		return nil, nil
	}
	return out, nil
}

// scalar checks a string, number or boolean against t; a value of the wrong
// type is reported and dropped.
func (c *fieldChecker) scalar(tok json.Token, t reflect.Type, path fieldPath) any {
	if acceptsAnything(t) {
		return tok
	}
	ok := false
	switch v := tok.(type) {
	case string:
		switch t {
		case timeType:
			ok = isTime(v, time.RFC3339)
		case microTimeType:
			ok = isTime(v, time.RFC3339Nano)
		case intOrStringType:
			ok = true
		default:
			ok = t.Kind() == reflect.String || (t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8)
		}
	case json.Number:
		switch {
		case t == intOrStringType:
			_, err := strconv.ParseInt(v.String(), 10, 32)
			ok = err == nil
		case t == timeType || t == microTimeType:
		case reflect.Int <= t.Kind() && t.Kind() <= reflect.Int64:
			_, err := strconv.ParseInt(v.String(), 10, t.Bits())
			ok = err == nil
		case reflect.Uint <= t.Kind() && t.Kind() <= reflect.Uint64:
			_, err := strconv.ParseUint(v.String(), 10, t.Bits())
			ok = err == nil
		case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
			_, err := strconv.ParseFloat(v.String(), t.Bits())
			ok = err == nil
		}
	case bool:
		ok = t.Kind() == reflect.Bool
	}
	if !ok {
		c.typeProblem(path, t, describeToken(tok, t))
		return nil
	}
	return tok
}

func isTime(s, layout string) bool {
	if s == "" {
		return true
	}
	_, err := time.Parse(layout, s)
	return err == nil
}

// typeProblem records `path: expected integer, got string "three"`.
func (c *fieldChecker) typeProblem(path fieldPath, t reflect.Type, got string) {
	where := string(path)
	if where == "" {
		where = "the document"
	}
	c.typeProblems = append(c.typeProblems, fmt.Sprintf("%s: expected %s, got %s", where, expectedJSON(t), got))
}

// expectedJSON names what a Go type takes in JSON.
func expectedJSON(t reflect.Type) string {
	switch t {
	case timeType, microTimeType:
		return `a time in RFC 3339 format (e.g. "2006-01-02T15:04:05Z")`
	case intOrStringType:
		return "integer or string"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int,
		reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "string"
		}
		return "array"
	}
	return "object"
}

// describeToken shows a scalar that does not fit t: `string "three"`,
// `number 3.5`, `number 4294967296 (out of range)`.
func describeToken(tok json.Token, t reflect.Type) string {
	switch v := tok.(type) {
	case string:
		return "string " + quoteShort(v)
	case bool:
		return "boolean " + strconv.FormatBool(v)
	case json.Number:
		s := v.String()
		if expectedJSON(t) == "integer" && !strings.ContainsAny(s, ".eE") {
			return "number " + s + " (out of range)"
		}
		return "number " + s
	}
	return fmt.Sprint(tok)
}

// unknownField records `unknown field "spec.x" (did you mean "y"?)`.
func (c *fieldChecker) unknownField(path fieldPath, key string, known []string) {
	problem := fmt.Sprintf("unknown field %q", string(path))
	if suggestion := closestField(key, known); suggestion != "" {
		problem += fmt.Sprintf(" (did you mean %q?)", suggestion)
	}
	c.strictProblems = append(c.strictProblems, problem)
}

// closestField finds the known field a mistyped key most likely meant: one
// that differs only in case, else the nearest within two edits. Keys so short
// that two edits could reach anything get no suggestion.
func closestField(key string, known []string) string {
	const maxDistance = 2
	best, bestDistance := "", maxDistance+1
	lowerKey := strings.ToLower(key)
	for _, name := range known {
		d := editDistance(lowerKey, strings.ToLower(name), bestDistance)
		if d < bestDistance {
			best, bestDistance = name, d
		}
	}
	if bestDistance > 0 && bestDistance >= len(key) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, or limit if it
// is limit or more (which lets long, hopeless comparisons stop early).
func editDistance(a, b string, limit int) int {
	if abs(len(a)-len(b)) >= limit {
		return limit
	}
	previous := make([]int, len(b)+1)
	current := make([]int, len(b)+1)
	for j := range previous {
		previous[j] = j
	}
	for i := 1; i <= len(a); i++ {
		current[0] = i
		rowMin := current[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			current[j] = min(previous[j]+1, current[j-1]+1, previous[j-1]+cost)
			rowMin = min(rowMin, current[j])
		}
		if rowMin >= limit {
			return limit
		}
		previous, current = current, previous
	}
	return min(previous[len(b)], limit)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// structFields are the JSON fields of a struct type: their names in
// declaration order (for suggestions) and their types.
type structFields struct {
	names []string
	types map[string]reflect.Type
}

var structFieldCache sync.Map // reflect.Type → *structFields

// structFieldsOf lists the JSON fields of a struct as encoding/json sees
// them: tagged names, and the fields of embedded structs without a name
// (`json:",inline"`) promoted into the outer struct, which wins on a clash.
func structFieldsOf(t reflect.Type) *structFields {
	if cached, ok := structFieldCache.Load(t); ok {
		return cached.(*structFields)
	}
	fields := &structFields{types: map[string]reflect.Type{}}
	add := func(name string, ft reflect.Type) {
		if _, taken := fields.types[name]; !taken {
			fields.names = append(fields.names, name)
			fields.types[name] = ft
		}
	}
	var inlined []reflect.Type
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				inlined = append(inlined, ft)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		add(name, f.Type)
	}
	for _, inner := range inlined {
		innerFields := structFieldsOf(inner)
		for _, name := range innerFields.names {
			add(name, innerFields.types[name])
		}
	}
	structFieldCache.Store(t, fields)
	return fields
}
