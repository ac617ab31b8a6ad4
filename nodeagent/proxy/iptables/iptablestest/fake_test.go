package iptablestest

import (
	"context"
	"slices"
	"strings"
	"testing"

	"kubelite/nodeagent/proxy/iptables"
)

func TestFakeRestoreIsStrictLikeTheKernel(t *testing.T) {
	ctx := context.Background()
	f := New()
	good := "*nat\n:KUBE-A - [0:0]\n:KUBE-B - [0:0]\n-A KUBE-A -j KUBE-B\n-A KUBE-B -j ACCEPT\nCOMMIT\n"
	if err := f.Restore(ctx, []byte(good)); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{
		"jump to a missing chain":     "*nat\n:KUBE-A - [0:0]\n-A KUBE-A -j KUBE-NONE\nCOMMIT\n",
		"rule in an undeclared chain": "*nat\n-A KUBE-NONE -j ACCEPT\nCOMMIT\n",
		"delete a referenced chain":   "*nat\n:KUBE-B - [0:0]\n-X KUBE-B\nCOMMIT\n",
		"no COMMIT":                   "*nat\n:KUBE-A - [0:0]\n",
	} {
		if err := f.Restore(ctx, []byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// None of the failed inputs changed anything.
	if got := f.Rules(iptables.TableNAT, "KUBE-A"); !slices.Equal(got, []string{"-A KUBE-A -j KUBE-B"}) {
		t.Errorf("KUBE-A = %q after failed restores", got)
	}

	// --noflush: declaring a chain flushes it; -X deletes it.
	if err := f.Restore(ctx, []byte("*nat\n:KUBE-A - [0:0]\n:KUBE-B - [0:0]\n-X KUBE-B\nCOMMIT\n")); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(f.Chains(iptables.TableNAT), "KUBE-B") || len(f.Rules(iptables.TableNAT, "KUBE-A")) != 0 {
		t.Errorf("after flush and delete: chains %v, KUBE-A %q", f.Chains(iptables.TableNAT), f.Rules(iptables.TableNAT, "KUBE-A"))
	}

	saved, err := f.Save(ctx, iptables.TableNAT)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(saved), "*nat\n:PREROUTING ACCEPT [0:0]\n") || !strings.Contains(string(saved), ":KUBE-A - [0:0]\n") {
		t.Errorf("save output:\n%s", saved)
	}
}

func TestFakeEnsureRuleIsIdempotent(t *testing.T) {
	ctx := context.Background()
	f := New()
	if err := f.EnsureRule(ctx, iptables.TableNAT, "PREROUTING", "-j", "KUBE-SERVICES"); err == nil {
		t.Error("a jump to a missing chain was accepted")
	}
	if err := f.EnsureChain(ctx, iptables.TableNAT, "KUBE-SERVICES"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := f.EnsureRule(ctx, iptables.TableNAT, "PREROUTING", "-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{`-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`}
	if got := f.Rules(iptables.TableNAT, "PREROUTING"); !slices.Equal(got, want) {
		t.Errorf("PREROUTING = %q, want %q", got, want)
	}
}
