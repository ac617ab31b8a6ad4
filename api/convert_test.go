package api

import (
	"reflect"
	"strings"
	"testing"
)

// legacyDoc is a Deployment or ReplicaSet in apiVersion, without a selector
// unless one is given, plus extra spec fields.
func legacyDoc(apiVersion, kind, selector, extra string) string {
	return "apiVersion: " + apiVersion + "\nkind: " + kind + "\nmetadata:\n  name: web\nspec:\n" + selector + extra +
		"  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: httpd\n"
}

func TestConvertLegacyVersions(t *testing.T) {
	const ownSelector = "  selector:\n    matchLabels:\n      app: web\n    matchExpressions:\n    - {key: tier, operator: DoesNotExist}\n"
	tests := []struct {
		name         string
		doc          string
		wantSelector string
		wantLabels   map[string]string
		wantWarning  string
	}{
		{"apps/v1beta1 Deployment", legacyDoc("apps/v1beta1", "Deployment", "", ""), "app=web", map[string]string{"app": "web"},
			"apps/v1beta1 Deployment is deprecated in v1.9+, unavailable in v1.16+; use apps/v1 Deployment"},
		{"apps/v1beta1 rollbackTo is dropped", legacyDoc("apps/v1beta1", "Deployment", "", "  rollbackTo:\n    revision: 2\n"), "app=web", map[string]string{"app": "web"},
			"apps/v1beta1 Deployment is deprecated in v1.9+, unavailable in v1.16+; use apps/v1 Deployment"},
		{"apps/v1beta2 Deployment", legacyDoc("apps/v1beta2", "Deployment", "", ""), "app=web", nil,
			"apps/v1beta2 Deployment is deprecated in v1.9+, unavailable in v1.16+; use apps/v1 Deployment"},
		{"extensions/v1beta1 Deployment", legacyDoc("extensions/v1beta1", "Deployment", "", "  rollbackTo: {}\n"), "app=web", map[string]string{"app": "web"},
			"extensions/v1beta1 Deployment is deprecated in v1.8+, unavailable in v1.16+; use apps/v1 Deployment"},
		{"a given selector is kept", legacyDoc("apps/v1beta1", "Deployment", ownSelector, ""), "app=web,!tier", map[string]string{"app": "web"},
			"apps/v1beta1 Deployment is deprecated in v1.9+, unavailable in v1.16+; use apps/v1 Deployment"},
		{"apps/v1beta2 ReplicaSet", legacyDoc("apps/v1beta2", "ReplicaSet", "", ""), "app=web", nil,
			"apps/v1beta2 ReplicaSet is deprecated in v1.9+, unavailable in v1.16+; use apps/v1 ReplicaSet"},
		{"extensions/v1beta1 ReplicaSet", legacyDoc("extensions/v1beta1", "ReplicaSet", "", ""), "app=web", map[string]string{"app": "web"},
			"extensions/v1beta1 ReplicaSet is deprecated in v1.8+, unavailable in v1.16+; use apps/v1 ReplicaSet"},
		{"apps/v1 needs no conversion", legacyDoc("apps/v1", "Deployment", ownSelector, ""), "app=web,!tier", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, warnings, err := NewScheme().Decode([]byte(tt.doc), nil, strict)
			if err != nil {
				t.Fatal(err)
			}
			var selector *LabelSelector
			switch o := obj.(type) {
			case *Deployment:
				selector = o.Spec.Selector
			case *ReplicaSet:
				selector = o.Spec.Selector
			}
			wantKind := "Deployment"
			if strings.Contains(tt.doc, "kind: ReplicaSet") {
				wantKind = "ReplicaSet"
			}
			if tm := obj.GetTypeMeta(); tm.APIVersion != "apps/v1" || tm.Kind != wantKind {
				t.Errorf("TypeMeta = %+v", tm)
			}
			if got := FormatLabelSelector(selector); got != tt.wantSelector {
				t.Errorf("selector = %s, want %s", got, tt.wantSelector)
			}
			if got := obj.GetObjectMeta().Labels; !reflect.DeepEqual(got, tt.wantLabels) {
				t.Errorf("labels = %v, want %v", got, tt.wantLabels)
			}
			var wantWarnings []string
			if tt.wantWarning != "" {
				wantWarnings = []string{tt.wantWarning}
			}
			if !reflect.DeepEqual(warnings, wantWarnings) {
				t.Errorf("warnings = %q, want %q", warnings, wantWarnings)
			}
			Default(obj)
			obj.GetObjectMeta().Namespace = NamespaceDefault
			if errs := Validate(obj); len(errs) > 0 {
				t.Errorf("converted object is invalid: %v", errs)
			}
		})
	}
}

func TestRollbackToOnlyInV1beta1(t *testing.T) {
	for _, apiVersion := range []string{"apps/v1beta2", "apps/v1"} {
		_, _, err := NewScheme().Decode([]byte(legacyDoc(apiVersion, "Deployment", "", "  rollbackTo: {}\n")), nil, strict)
		if err == nil || err.Error() != `strict decoding error: unknown field "spec.rollbackTo"` {
			t.Errorf("%s: err = %v", apiVersion, err)
		}
	}
}

func TestEveryLegacyVersionConverts(t *testing.T) {
	for _, r := range NewScheme().All() {
		for _, version := range LegacyVersions(r.Kind) {
			if legacyFormOf(version, r.Kind) == nil {
				t.Errorf("%s %s is accepted by the scheme but has no conversion", version, r.Kind)
			}
		}
	}
	for _, form := range legacyForms {
		if _, legacy, ok := NewScheme().ByKind(form.apiVersion, form.kind); !ok || !legacy {
			t.Errorf("%s %s converts but is not accepted by the scheme", form.apiVersion, form.kind)
		}
	}
}
