package api

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Selector selects objects by their labels, as `kubectl get -l` and the
// selectors of Services, Deployments and ReplicaSets do.
type Selector interface {
	// Matches reports whether labels satisfy every requirement.
	Matches(labels map[string]string) bool
	// Empty reports whether the selector has no requirements (and so matches everything).
	Empty() bool
	// String is the selector in the syntax ParseSelector reads, requirements sorted by key.
	String() string
}

// selectionOp is the operator of one label requirement.
type selectionOp string

const (
	opEquals       selectionOp = "="
	opDoubleEquals selectionOp = "=="
	opNotEquals    selectionOp = "!="
	opIn           selectionOp = "in"
	opNotIn        selectionOp = "notin"
	opExists       selectionOp = "exists"
	opDoesNotExist selectionOp = "!"
	opGreaterThan  selectionOp = "gt"
	opLessThan     selectionOp = "lt"
)

// labelRequirement is one condition on one label key: `app=web`, `tier in (a,b)`, `!canary`.
type labelRequirement struct {
	key    string
	op     selectionOp
	values []string // sorted; exactly one for =, ==, !=, gt, lt; none for exists and !
}

// newLabelRequirement checks the key, the values and their number for op.
func newLabelRequirement(key string, op selectionOp, values []string) (labelRequirement, error) {
	if msgs := IsQualifiedName(key); len(msgs) > 0 {
		return labelRequirement{}, fmt.Errorf("invalid label key %q: %s", key, strings.Join(msgs, "; "))
	}
	switch op {
	case opIn, opNotIn:
		if len(values) == 0 {
			return labelRequirement{}, fmt.Errorf("for 'in', 'notin' operators, values set can't be empty")
		}
	case opEquals, opDoubleEquals, opNotEquals:
		if len(values) != 1 {
			return labelRequirement{}, fmt.Errorf("exact-match compatibility requires one single value")
		}
	case opExists, opDoesNotExist:
		if len(values) != 0 {
			return labelRequirement{}, fmt.Errorf("values set must be empty for exists and does not exist")
		}
	case opGreaterThan, opLessThan:
		if len(values) != 1 {
			return labelRequirement{}, fmt.Errorf("for 'Gt', 'Lt' operators, exactly one value is required")
		}
		if _, err := strconv.ParseInt(values[0], 10, 64); err != nil {
			return labelRequirement{}, fmt.Errorf("for 'Gt', 'Lt' operators, the value must be an integer")
		}
	default:
		return labelRequirement{}, fmt.Errorf("operator %q is not recognized", string(op))
	}
	for _, v := range values {
		if msgs := IsValidLabelValue(v); len(msgs) > 0 {
			return labelRequirement{}, fmt.Errorf("invalid label value %q at key %q: %s", v, key, strings.Join(msgs, "; "))
		}
	}
	sorted := append([]string(nil), values...)
	sort.Strings(sorted)
	return labelRequirement{key: key, op: op, values: sorted}, nil
}

func (r labelRequirement) hasValue(v string) bool {
	for _, value := range r.values {
		if value == v {
			return true
		}
	}
	return false
}

func (r labelRequirement) matches(labels map[string]string) bool {
	value, has := labels[r.key]
	switch r.op {
	case opEquals, opDoubleEquals, opIn:
		return has && r.hasValue(value)
	case opNotEquals, opNotIn:
		return !has || !r.hasValue(value)
	case opExists:
		return has
	case opDoesNotExist:
		return !has
	case opGreaterThan, opLessThan:
		if !has {
			return false
		}
		actual, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return false
		}
		limit, _ := strconv.ParseInt(r.values[0], 10, 64) // checked by newLabelRequirement
		if r.op == opGreaterThan {
			return actual > limit
		}
		return actual < limit
	}
	return false
}

func (r labelRequirement) String() string {
	switch r.op {
	case opExists:
		return r.key
	case opDoesNotExist:
		return "!" + r.key
	case opIn, opNotIn:
		return r.key + " " + string(r.op) + " (" + strings.Join(r.values, ",") + ")"
	case opGreaterThan:
		return r.key + ">" + r.values[0]
	case opLessThan:
		return r.key + "<" + r.values[0]
	}
	return r.key + string(r.op) + r.values[0]
}

// labelSelector is a conjunction of requirements, kept sorted by key.
type labelSelector []labelRequirement

func newLabelSelector(reqs []labelRequirement) labelSelector {
	sort.SliceStable(reqs, func(i, j int) bool { return reqs[i].key < reqs[j].key })
	return labelSelector(reqs)
}

func (s labelSelector) Matches(labels map[string]string) bool {
	for _, r := range s {
		if !r.matches(labels) {
			return false
		}
	}
	return true
}

func (s labelSelector) Empty() bool { return len(s) == 0 }

func (s labelSelector) String() string {
	parts := make([]string, len(s))
	for i, r := range s {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// nothingSelector matches no object: what a missing selector means.
type nothingSelector struct{}

func (nothingSelector) Matches(map[string]string) bool { return false }
func (nothingSelector) Empty() bool                    { return false }
func (nothingSelector) String() string                 { return "" }

// Everything returns a selector that matches every object.
func Everything() Selector { return labelSelector(nil) }

// Nothing returns a selector that matches no object.
func Nothing() Selector { return nothingSelector{} }

// SelectorFromSet returns the selector that requires each label of set
// (as a Service's spec.selector does); an empty set selects everything.
func SelectorFromSet(set map[string]string) Selector {
	reqs := make([]labelRequirement, 0, len(set))
	for k, v := range set {
		reqs = append(reqs, labelRequirement{key: k, op: opEquals, values: []string{v}})
	}
	return newLabelSelector(reqs)
}

// LabelSelectorAsSelector converts the structured selector of a Deployment or
// ReplicaSet. A nil selector selects nothing; an empty one selects everything.
func LabelSelectorAsSelector(ls *LabelSelector) (Selector, error) {
	if ls == nil {
		return Nothing(), nil
	}
	reqs := make([]labelRequirement, 0, len(ls.MatchLabels)+len(ls.MatchExpressions))
	for _, k := range sortedKeys(ls.MatchLabels) {
		r, err := newLabelRequirement(k, opEquals, []string{ls.MatchLabels[k]})
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, r)
	}
	for _, expr := range ls.MatchExpressions {
		var op selectionOp
		switch expr.Operator {
		case SelectorOpIn:
			op = opIn
		case SelectorOpNotIn:
			op = opNotIn
		case SelectorOpExists:
			op = opExists
		case SelectorOpDoesNotExist:
			op = opDoesNotExist
		default:
			return nil, fmt.Errorf("%q is not a valid label selector operator", expr.Operator)
		}
		r, err := newLabelRequirement(expr.Key, op, expr.Values)
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, r)
	}
	return newLabelSelector(reqs), nil
}

// FormatLabelSelector shows a structured selector as kubectl does:
// "run=httpd", "<none>" when empty, "<error>" when invalid.
func FormatLabelSelector(ls *LabelSelector) string {
	selector, err := LabelSelectorAsSelector(ls)
	if err != nil {
		return "<error>"
	}
	if s := selector.String(); s != "" {
		return s
	}
	return "<none>"
}

// ParseSelector reads a selector in kubectl's syntax: comma-joined
// requirements, each `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a)`,
// `k` (exists), `!k` (does not exist), `k>1` or `k<1`. An empty string selects
// everything.
func ParseSelector(s string) (Selector, error) {
	p := &selectorParser{lexer: selectorLexer{input: s}}
	reqs, err := p.parse()
	if err != nil {
		return nil, fmt.Errorf("couldn't parse the selector string %q: %w", s, err)
	}
	return newLabelSelector(reqs), nil
}

// ---- selector lexer ----

type selectorToken int

const (
	tokenError selectorToken = iota
	tokenEnd
	tokenIdentifier
	tokenComma
	tokenOpenParen
	tokenCloseParen
	tokenNot          // !
	tokenEquals       // =
	tokenDoubleEquals // ==
	tokenNotEquals    // !=
	tokenGreaterThan  // >
	tokenLessThan     // <
	tokenIn           // in
	tokenNotIn        // notin
)

// selectorLexer splits a selector string into tokens; identifiers are runs
// of anything but blanks and the selector's own punctuation.
type selectorLexer struct {
	input string
	pos   int
}

func isSelectorSpecial(c byte) bool {
	switch c {
	case '!', '=', '>', '<', '(', ')', ',':
		return true
	}
	return false
}

func isSelectorBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func (l *selectorLexer) next() (selectorToken, string) {
	for l.pos < len(l.input) && isSelectorBlank(l.input[l.pos]) {
		l.pos++
	}
	if l.pos >= len(l.input) {
		return tokenEnd, ""
	}
	start := l.pos
	c := l.input[l.pos]
	if isSelectorSpecial(c) {
		l.pos++
		if l.pos < len(l.input) && l.input[l.pos] == '=' && (c == '=' || c == '!') {
			l.pos++
		}
		lit := l.input[start:l.pos]
		switch lit {
		case "!":
			return tokenNot, lit
		case "=":
			return tokenEquals, lit
		case "==":
			return tokenDoubleEquals, lit
		case "!=":
			return tokenNotEquals, lit
		case ">":
			return tokenGreaterThan, lit
		case "<":
			return tokenLessThan, lit
		case "(":
			return tokenOpenParen, lit
		case ")":
			return tokenCloseParen, lit
		case ",":
			return tokenComma, lit
		}
		return tokenError, lit
	}
	for l.pos < len(l.input) && !isSelectorSpecial(l.input[l.pos]) && !isSelectorBlank(l.input[l.pos]) {
		l.pos++
	}
	lit := l.input[start:l.pos]
	switch lit {
	case "in":
		return tokenIn, lit
	case "notin":
		return tokenNotIn, lit
	}
	return tokenIdentifier, lit
}

// ---- selector parser ----

// selectorParser is a recursive-descent parser with one token of lookahead:
//
//	selector    = requirement { "," requirement }
//	requirement = [ "!" ] KEY [ ( "in" | "notin" ) "(" VALUES ")" | ( "=" | "==" | "!=" | ">" | "<" ) VALUE ]
type selectorParser struct {
	lexer    selectorLexer
	peeked   bool
	peekTok  selectorToken
	peekText string
}

// valueContext says whether "in" and "notin" are values here, not keywords.
type valueContext bool

func (p *selectorParser) lookahead(values valueContext) (selectorToken, string) {
	if !p.peeked {
		p.peekTok, p.peekText = p.lexer.next()
		p.peeked = true
	}
	if values && (p.peekTok == tokenIn || p.peekTok == tokenNotIn) {
		return tokenIdentifier, p.peekText
	}
	return p.peekTok, p.peekText
}

func (p *selectorParser) consume(values valueContext) (selectorToken, string) {
	tok, text := p.lookahead(values)
	p.peeked = false
	return tok, text
}

func (p *selectorParser) parse() ([]labelRequirement, error) {
	var reqs []labelRequirement
	for {
		tok, text := p.lookahead(false)
		switch tok {
		case tokenEnd:
			return reqs, nil
		case tokenIdentifier, tokenNot:
			r, err := p.parseRequirement()
			if err != nil {
				return nil, err
			}
			reqs = append(reqs, r)
			switch tok, text := p.consume(false); tok {
			case tokenEnd:
				return reqs, nil
			case tokenComma:
				if next, text := p.lookahead(false); next != tokenIdentifier && next != tokenNot {
					return nil, fmt.Errorf("found '%s', expected: identifier after ','", text)
				}
			default:
				return nil, fmt.Errorf("found '%s', expected: ',' or 'end of string'", text)
			}
		default:
			return nil, fmt.Errorf("found '%s', expected: !, identifier, or 'end of string'", text)
		}
	}
}

func (p *selectorParser) parseRequirement() (labelRequirement, error) {
	if tok, _ := p.lookahead(false); tok == tokenNot {
		p.consume(false)
		tok, key := p.consume(false)
		if tok != tokenIdentifier {
			return labelRequirement{}, fmt.Errorf("found '%s', expected: identifier after '!'", key)
		}
		return newLabelRequirement(key, opDoesNotExist, nil)
	}
	_, key := p.consume(false)
	var op selectionOp
	switch tok, text := p.consume(false); tok {
	case tokenEnd, tokenComma:
		// A bare key asks only that the label exists; give the token back.
		p.peeked, p.peekTok, p.peekText = true, tok, text
		return newLabelRequirement(key, opExists, nil)
	case tokenEquals:
		op = opEquals
	case tokenDoubleEquals:
		op = opDoubleEquals
	case tokenNotEquals:
		op = opNotEquals
	case tokenGreaterThan:
		op = opGreaterThan
	case tokenLessThan:
		op = opLessThan
	case tokenIn:
		op = opIn
	case tokenNotIn:
		op = opNotIn
	default:
		return labelRequirement{}, fmt.Errorf("found '%s', expected: '=', '!=', '==', 'in', 'notin', '>' or '<'", text)
	}
	var values []string
	var err error
	if op == opIn || op == opNotIn {
		values, err = p.parseValueSet()
	} else {
		values, err = p.parseExactValue()
	}
	if err != nil {
		return labelRequirement{}, err
	}
	return newLabelRequirement(key, op, values)
}

// parseExactValue reads the one value after =, ==, !=, > or <; it may be empty.
func (p *selectorParser) parseExactValue() ([]string, error) {
	if tok, _ := p.lookahead(true); tok == tokenEnd || tok == tokenComma {
		return []string{""}, nil
	}
	tok, text := p.consume(true)
	if tok != tokenIdentifier {
		return nil, fmt.Errorf("found '%s', expected: identifier", text)
	}
	return []string{text}, nil
}

// parseValueSet reads "(a,b,c)"; an element left empty is the empty value.
func (p *selectorParser) parseValueSet() ([]string, error) {
	if tok, text := p.consume(false); tok != tokenOpenParen {
		return nil, fmt.Errorf("found '%s', expected: '('", text)
	}
	if tok, _ := p.lookahead(true); tok == tokenCloseParen {
		p.consume(true)
		return nil, nil
	}
	var values []string
	expectValue := true
	for {
		tok, text := p.consume(true)
		switch {
		case tok == tokenIdentifier && expectValue:
			values = append(values, text)
			expectValue = false
		case tok == tokenComma:
			if expectValue {
				values = append(values, "")
			}
			expectValue = true
		case tok == tokenCloseParen:
			if expectValue {
				values = append(values, "")
			}
			return values, nil
		default:
			return nil, fmt.Errorf("found '%s', expected: ',', ')' or identifier", text)
		}
	}
}

// IsEmpty reports whether sel is missing or has no requirements. Validation
// refuses both for workloads, and controllers must not act on either: an
// empty selector would claim every object of the namespace.
func (sel *LabelSelector) IsEmpty() bool {
	return sel == nil || len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0
}
