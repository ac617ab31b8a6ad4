package api

import "testing"

func TestParseSelector(t *testing.T) {
	tests := []struct {
		input      string
		canonical  string
		matches    []map[string]string
		mismatches []map[string]string
	}{
		{"", "", []map[string]string{nil, {"a": "b"}}, nil},
		{"run=httpd", "run=httpd", []map[string]string{{"run": "httpd", "x": "y"}}, []map[string]string{{"run": "nginx"}, nil}},
		{"run == httpd", "run==httpd", []map[string]string{{"run": "httpd"}}, []map[string]string{{}}},
		{"run!=httpd", "run!=httpd", []map[string]string{{"run": "nginx"}, {}}, []map[string]string{{"run": "httpd"}}},
		{"env in (prod, staging)", "env in (prod,staging)", []map[string]string{{"env": "prod"}, {"env": "staging"}}, []map[string]string{{"env": "dev"}, {}}},
		{"env notin (dev)", "env notin (dev)", []map[string]string{{"env": "prod"}, {}}, []map[string]string{{"env": "dev"}}},
		{"canary", "canary", []map[string]string{{"canary": ""}}, []map[string]string{{}}},
		{"!canary", "!canary", []map[string]string{{}}, []map[string]string{{"canary": "true"}}},
		{"tier=,app", "app,tier=", []map[string]string{{"tier": "", "app": "x"}}, []map[string]string{{"tier": "a", "app": "x"}}},
		{"version>2,version<10", "version>2,version<10", []map[string]string{{"version": "5"}}, []map[string]string{{"version": "2"}, {"version": "x"}, {}}},
		{"z=1, app.kubernetes.io/name in (web,api) ,!legacy", "app.kubernetes.io/name in (api,web),!legacy,z=1",
			[]map[string]string{{"z": "1", "app.kubernetes.io/name": "api"}}, []map[string]string{{"z": "1", "app.kubernetes.io/name": "api", "legacy": "y"}}},
		{"name in (in, notin)", "name in (in,notin)", []map[string]string{{"name": "notin"}}, nil},
	}
	for _, tt := range tests {
		sel, err := ParseSelector(tt.input)
		if err != nil {
			t.Errorf("ParseSelector(%q): %v", tt.input, err)
			continue
		}
		if sel.String() != tt.canonical {
			t.Errorf("ParseSelector(%q).String() = %q, want %q", tt.input, sel.String(), tt.canonical)
		}
		if sel.Empty() != (tt.input == "") {
			t.Errorf("ParseSelector(%q).Empty() = %v", tt.input, sel.Empty())
		}
		for _, labels := range tt.matches {
			if !sel.Matches(labels) {
				t.Errorf("%q does not match %v", tt.input, labels)
			}
		}
		for _, labels := range tt.mismatches {
			if sel.Matches(labels) {
				t.Errorf("%q matches %v", tt.input, labels)
			}
		}
	}
}

func TestParseSelectorErrors(t *testing.T) {
	tests := []struct{ input, want string }{
		{"a=b=c", `couldn't parse the selector string "a=b=c": found '=', expected: ',' or 'end of string'`},
		{"a=b,", `couldn't parse the selector string "a=b,": found '', expected: identifier after ','`},
		{",a", `couldn't parse the selector string ",a": found ',', expected: !, identifier, or 'end of string'`},
		{"a in b", `couldn't parse the selector string "a in b": found 'b', expected: '('`},
		{"a in ()", `couldn't parse the selector string "a in ()": for 'in', 'notin' operators, values set can't be empty`},
		{"a in (b c)", `couldn't parse the selector string "a in (b c)": found 'c', expected: ',', ')' or identifier`},
		{"a (b)", `couldn't parse the selector string "a (b)": found '(', expected: '=', '!=', '==', 'in', 'notin', '>' or '<'`},
		{"!", `couldn't parse the selector string "!": found '', expected: identifier after '!'`},
		{"a>b", `couldn't parse the selector string "a>b": for 'Gt', 'Lt' operators, the value must be an integer`},
		{"bad key=x", `couldn't parse the selector string "bad key=x": found 'key', expected: '=', '!=', '==', 'in', 'notin', '>' or '<'`},
		{"-a=x", `couldn't parse the selector string "-a=x": invalid label key "-a": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`},
		{"a=-x", `couldn't parse the selector string "a=-x": invalid label value "-x" at key "a": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`},
	}
	for _, tt := range tests {
		if _, err := ParseSelector(tt.input); err == nil || err.Error() != tt.want {
			t.Errorf("ParseSelector(%q):\n  got  %v\n  want %s", tt.input, err, tt.want)
		}
	}
}

func TestLabelSelectorAsSelector(t *testing.T) {
	tests := []struct {
		name      string
		selector  *LabelSelector
		formatted string
		matches   map[string]string
		err       string
	}{
		{"nil selects nothing", nil, "<none>", map[string]string{"run": "httpd"}, ""},
		{"empty selects everything", &LabelSelector{}, "<none>", map[string]string{"run": "httpd"}, ""},
		{"matchLabels", &LabelSelector{MatchLabels: map[string]string{"run": "httpd"}}, "run=httpd", map[string]string{"run": "httpd"}, ""},
		{"matchExpressions", &LabelSelector{
			MatchLabels: map[string]string{"run": "httpd"},
			MatchExpressions: []LabelSelectorRequirement{
				{Key: "env", Operator: SelectorOpIn, Values: []string{"prod", "dev"}},
				{Key: "legacy", Operator: SelectorOpDoesNotExist},
				{Key: "tier", Operator: SelectorOpNotIn, Values: []string{"db"}},
				{Key: "app", Operator: SelectorOpExists},
			}}, "app,env in (dev,prod),!legacy,run=httpd,tier notin (db)",
			map[string]string{"run": "httpd", "env": "dev", "app": ""}, ""},
		{"bad operator", &LabelSelector{MatchExpressions: []LabelSelectorRequirement{{Key: "a", Operator: "Near"}}}, "<error>", nil,
			`"Near" is not a valid label selector operator`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatLabelSelector(tt.selector); got != tt.formatted {
				t.Errorf("FormatLabelSelector = %q, want %q", got, tt.formatted)
			}
			sel, err := LabelSelectorAsSelector(tt.selector)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Errorf("err = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.selector != nil; sel.Matches(tt.matches) != want {
				t.Errorf("Matches(%v) = %v, want %v", tt.matches, !want, want)
			}
		})
	}
}

func TestSelectorFromSet(t *testing.T) {
	sel := SelectorFromSet(map[string]string{"run": "httpd", "app": "web"})
	if sel.String() != "app=web,run=httpd" {
		t.Errorf("String() = %q", sel.String())
	}
	if !sel.Matches(map[string]string{"run": "httpd", "app": "web", "pod-template-hash": "abc"}) || sel.Matches(map[string]string{"run": "httpd"}) {
		t.Error("SelectorFromSet matches wrongly")
	}
	if empty := SelectorFromSet(nil); !empty.Empty() || !empty.Matches(map[string]string{"a": "b"}) {
		t.Error("an empty set should select everything")
	}
	if Nothing().Matches(nil) || Nothing().Empty() || !Everything().Matches(nil) {
		t.Error("Nothing and Everything")
	}
}
