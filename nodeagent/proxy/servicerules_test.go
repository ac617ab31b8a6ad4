package proxy

import (
	"context"
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
			compareGolden(t, "testdata/servicerules/"+name+".golden", []byte(ServiceRules(saved, "default", name)))
		})
	}

	if got := ServiceRules(saved, "default", "httpd"); got != "" {
		t.Errorf("a name that is a prefix of another Service's matched:\n%s", got)
	}
	if got := ServiceRules(saved, "kube-public", "httpd-svc"); got != "" {
		t.Errorf("another namespace matched:\n%s", got)
	}
}
