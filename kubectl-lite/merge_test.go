package kubectl

import (
	"encoding/json"
	"testing"
)

func mustJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	if s == "" {
		return map[string]any{}
	}
	obj, err := decodeJSONObject([]byte(s))
	if err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	return obj
}

func TestThreeWayMerge(t *testing.T) {
	tests := []struct {
		name                        string
		original, modified, current string
		wantPatch, wantResult       string
	}{
		{
			name:       "nothing changed",
			original:   `{"spec":{"replicas":3}}`,
			modified:   `{"spec":{"replicas":3}}`,
			current:    `{"spec":{"replicas":3,"selector":{"run":"httpd"}},"status":{"replicas":3}}`,
			wantPatch:  `{}`,
			wantResult: `{"spec":{"replicas":3,"selector":{"run":"httpd"}},"status":{"replicas":3}}`,
		},
		{
			name:       "changed field is set, server fields kept",
			original:   `{"spec":{"replicas":3}}`,
			modified:   `{"spec":{"replicas":5}}`,
			current:    `{"spec":{"replicas":3,"clusterIP":"10.96.0.9"}}`,
			wantPatch:  `{"spec":{"replicas":5}}`,
			wantResult: `{"spec":{"replicas":5,"clusterIP":"10.96.0.9"}}`,
		},
		{
			name:       "field removed from the manifest is deleted",
			original:   `{"metadata":{"labels":{"app":"a","tier":"web"}}}`,
			modified:   `{"metadata":{"labels":{"app":"a"}}}`,
			current:    `{"metadata":{"labels":{"app":"a","tier":"web","added-by":"someone"}}}`,
			wantPatch:  `{"metadata":{"labels":{"tier":null}}}`,
			wantResult: `{"metadata":{"labels":{"app":"a","added-by":"someone"}}}`,
		},
		{
			name:       "field never applied is not deleted",
			original:   `{"spec":{"type":"ClusterIP"}}`,
			modified:   `{"spec":{"type":"NodePort"}}`,
			current:    `{"spec":{"type":"ClusterIP","sessionAffinity":"None"}}`,
			wantPatch:  `{"spec":{"type":"NodePort"}}`,
			wantResult: `{"spec":{"type":"NodePort","sessionAffinity":"None"}}`,
		},
		{
			name:       "lists are replaced whole",
			original:   `{"spec":{"ports":[{"port":8080,"targetPort":80}]}}`,
			modified:   `{"spec":{"ports":[{"port":8080,"targetPort":80,"nodePort":31000}]}}`,
			current:    `{"spec":{"ports":[{"port":8080,"targetPort":80,"nodePort":32312,"protocol":"TCP"}]}}`,
			wantPatch:  `{"spec":{"ports":[{"port":8080,"targetPort":80,"nodePort":31000}]}}`,
			wantResult: `{"spec":{"ports":[{"port":8080,"targetPort":80,"nodePort":31000}]}}`,
		},
		{
			name:       "a change made behind the manifest's back is reverted",
			original:   `{"spec":{"replicas":3}}`,
			modified:   `{"spec":{"replicas":3}}`,
			current:    `{"spec":{"replicas":7}}`,
			wantPatch:  `{"spec":{"replicas":3}}`,
			wantResult: `{"spec":{"replicas":3}}`,
		},
		{
			name:       "no last-applied: only additions and changes",
			original:   ``,
			modified:   `{"metadata":{"name":"x"},"spec":{"selector":{"run":"httpd"}}}`,
			current:    `{"metadata":{"name":"x","uid":"u1"},"spec":{"selector":{"app":"old"}}}`,
			wantPatch:  `{"spec":{"selector":{"run":"httpd"}}}`,
			wantResult: `{"metadata":{"name":"x","uid":"u1"},"spec":{"selector":{"app":"old","run":"httpd"}}}`,
		},
		{
			name:       "a whole removed section is deleted",
			original:   `{"spec":{"externalIPs":["192.168.56.50"],"type":"ClusterIP"}}`,
			modified:   `{"spec":{"type":"ClusterIP"}}`,
			current:    `{"spec":{"externalIPs":["192.168.56.50"],"type":"ClusterIP","clusterIP":"10.96.0.9"}}`,
			wantPatch:  `{"spec":{"externalIPs":null}}`,
			wantResult: `{"spec":{"type":"ClusterIP","clusterIP":"10.96.0.9"}}`,
		},
		{
			name:       "an explicitly empty map is a value",
			original:   `{"spec":{"strategy":{"type":"Recreate"}}}`,
			modified:   `{"spec":{"strategy":{}}}`,
			current:    `{"spec":{"strategy":{"type":"Recreate"}}}`,
			wantPatch:  `{"spec":{"strategy":{"type":null}}}`,
			wantResult: `{"spec":{"strategy":{}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			original, modified, current := mustJSON(t, tt.original), mustJSON(t, tt.modified), mustJSON(t, tt.current)
			currentBefore, _ := json.Marshal(current)

			patch := threeWayMergePatch(original, modified, current)
			assertSameJSON(t, "patch", patch, mustJSON(t, tt.wantPatch))
			result := applyMergePatch(current, patch)
			assertSameJSON(t, "result", result, mustJSON(t, tt.wantResult))

			if currentAfter, _ := json.Marshal(current); string(currentAfter) != string(currentBefore) {
				t.Errorf("the live object was modified: %s", currentAfter)
			}
		})
	}
}

func assertSameJSON(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("%s = %s, want %s", what, g, w)
	}
}

func TestWithLastApplied(t *testing.T) {
	manifest := mustJSON(t, `{"apiVersion":"v1","kind":"Service","metadata":{"name":"httpd-svc","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"stale"}},"spec":{"ports":[{"port":8080}]}}`)
	got, err := withLastApplied(manifest)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"apiVersion":"v1","kind":"Service","metadata":{"name":"httpd-svc"},"spec":{"ports":[{"port":8080}]}}` + "\n"
	if ann := annotations(got, false)[lastAppliedAnnotation]; ann != want {
		t.Errorf("annotation = %q, want %q", ann, want)
	}
	back, err := lastApplied(got)
	if err != nil {
		t.Fatal(err)
	}
	assertSameJSON(t, "decoded", back, mustJSON(t, want))
}
