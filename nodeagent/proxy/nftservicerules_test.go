package proxy

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestNFTServiceRulesGolden extracts single Services' views from tables of
// the golden cases, both as BuildNFTRules renders them and as the kernel
// lists them after applying them; both must equal the golden view.
func TestNFTServiceRulesGolden(t *testing.T) {
	nft := newNFTNamespace(t)
	ctx := context.Background()
	for _, tc := range []struct{ input, service string }{
		{"nodeport-31000", "httpd-svc"},
		{"nodeport-31000", "empty-svc"},
		{"session-affinity", "sticky"},
		{"traffic-policy-local", "elsewhere"},
	} {
		t.Run(tc.service, func(t *testing.T) {
			services, endpoints := loadObjects(t, filepath.Join("testdata", "rules", tc.input+".yaml"))
			rules := BuildNFTRules(goldenInput(services, endpoints))
			got := []byte(NFTServiceRules(rules.Bytes(), "default", tc.service))
			golden := filepath.Join("testdata", "nftservicerules", tc.service+".golden")
			compareGolden(t, golden, got)
			want := got

			if err := nft.Apply(ctx, rules.fullScript()); err != nil {
				t.Fatal(err)
			}
			if fromKernel := NFTServiceRules(listNFTTable(t, nft), "default", tc.service); fromKernel != string(want) {
				t.Errorf("view of the kernel's listing differs from %s:\n%s", golden, lineDiff(string(want), fromKernel))
			}
		})
	}

	services, endpoints := loadObjects(t, "testdata/rules/nodeport-31000.yaml")
	table := BuildNFTRules(goldenInput(services, endpoints)).Bytes()
	if got := NFTServiceRules(table, "default", "httpd"); got != "" {
		t.Errorf("a name that is a prefix of another Service's matched:\n%s", got)
	}
	if got := NFTServiceRules(table, "kube-public", "httpd-svc"); got != "" {
		t.Errorf("another namespace matched:\n%s", got)
	}
	if view := NFTServiceRules(table, "default", "httpd-svc"); strings.Contains(view, "empty-svc") {
		t.Errorf("view shows another Service:\n%s", view)
	}
}

func TestSplitNFTElements(t *testing.T) {
	got := splitNFTElements(`{ 10.96.0.1 . tcp . 443 comment "a, b" : goto x, tcp . 80 comment "c" : drop, 1.2.3.4 expires 2h59m }`)
	want := []string{`10.96.0.1 . tcp . 443 comment "a, b" : goto x`, `tcp . 80 comment "c" : drop`, `1.2.3.4 expires 2h59m`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("splitNFTElements = %q, want %q", got, want)
	}
}
