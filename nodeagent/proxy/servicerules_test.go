package proxy

import (
	"bytes"
	"context"
	"os"
	"testing"

	"kubelite/nodeagent/proxy/iptables"
	"kubelite/nodeagent/proxy/iptables/iptablestest"
)

// TestServiceRulesGolden writes the rules of the nodeport-31000 case into
// the fake iptables, reads them back as iptables-save prints them, and
// extracts each Service's view.
func TestServiceRulesGolden(t *testing.T) {
	services, endpoints := loadObjects(t, "testdata/rules/nodeport-31000.yaml")
	fake := iptablestest.New()
	ctx := context.Background()
	if err := fake.Restore(ctx, BuildRules(goldenInput(services, endpoints)).Bytes()); err != nil {
		t.Fatal(err)
	}
	var saved []byte
	for _, table := range []iptables.Table{iptables.TableFilter, iptables.TableNAT} {
		out, err := fake.Save(ctx, table)
		if err != nil {
			t.Fatal(err)
		}
		saved = append(saved, out...)
	}

	for _, name := range []string{"httpd-svc", "empty-svc"} {
		t.Run(name, func(t *testing.T) {
			got := []byte(ServiceRules(saved, "default", name))
			golden := "testdata/servicerules/" + name + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("ServiceRules differs from %s:\n%s", golden, lineDiff(string(want), string(got)))
			}
		})
	}

	if got := ServiceRules(saved, "default", "httpd"); got != "" {
		t.Errorf("a name that is a prefix of another Service's matched:\n%s", got)
	}
	if got := ServiceRules(saved, "kube-public", "httpd-svc"); got != "" {
		t.Errorf("another namespace matched:\n%s", got)
	}
}
