package e2e

import (
	"reflect"
	"testing"
)

func TestParseTable(t *testing.T) {
	out := `NAME                     READY   STATUS    RESTARTS      AGE   IP           NODE    NOMINATED NODE   READINESS GATES
httpd-5c8d8bc9d4-2x7kq   1/1     Running   0             12s   10.244.1.2   node1   <none>           <none>
httpd-5c8d8bc9d4-9lm4p   1/1     Running   1 (3s ago)    12s   10.244.2.2   node2   <none>           <none>
`
	tb, err := parseTable(out)
	if err != nil {
		t.Fatal(err)
	}
	wantColumns := []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"}
	if !reflect.DeepEqual(tb.columns, wantColumns) {
		t.Errorf("columns %q, want %q", tb.columns, wantColumns)
	}
	row, ok := tb.row("httpd-5c8d8bc9d4-9lm4p")
	if !ok {
		t.Fatalf("row not found in %v", tb.rows)
	}
	want := map[string]string{
		"NAME": "httpd-5c8d8bc9d4-9lm4p", "READY": "1/1", "STATUS": "Running", "RESTARTS": "1 (3s ago)",
		"AGE": "12s", "IP": "10.244.2.2", "NODE": "node2", "NOMINATED NODE": "<none>", "READINESS GATES": "<none>",
	}
	if !reflect.DeepEqual(row, want) {
		t.Errorf("row %q, want %q", row, want)
	}
}

func TestServiceRulesProblems(t *testing.T) {
	save := `*nat
-A KUBE-SERVICES ! -s 10.244.0.0/16 -d 10.102.120.255/32 -p tcp -m comment --comment "default/httpd-svc: cluster IP" -m tcp --dport 8080 -j KUBE-MARK-MASQ
-A KUBE-SERVICES -d 10.102.120.255/32 -p tcp -m comment --comment "default/httpd-svc: cluster IP" -m tcp --dport 8080 -j KUBE-SVC-RL3JAE4GN7VOGDGP
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-SVC-RL3JAE4GN7VOGDGP -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-7SDFQQ3CPAUK3SXM
-A KUBE-SVC-RL3JAE4GN7VOGDGP -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-72A5OH6IP5DVGPP6
-A KUBE-SVC-RL3JAE4GN7VOGDGP -j KUBE-SEP-7EVMKAMKHH6ZHP32
-A KUBE-SEP-7SDFQQ3CPAUK3SXM -s 10.244.1.2/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-7SDFQQ3CPAUK3SXM -p tcp -m tcp -j DNAT --to-destination 10.244.1.2:80
-A KUBE-SEP-72A5OH6IP5DVGPP6 -s 10.244.2.5/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-72A5OH6IP5DVGPP6 -p tcp -m tcp -j DNAT --to-destination 10.244.2.5:80
-A KUBE-SEP-7EVMKAMKHH6ZHP32 -s 10.244.3.4/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-7EVMKAMKHH6ZHP32 -p tcp -m tcp -j DNAT --to-destination 10.244.3.4:80
COMMIT
`
	rules := httpdSvcRules(save, "10.102.120.255")
	if problems := rules.problems([]string{"10.244.1.2", "10.244.2.5", "10.244.3.4"}); len(problems) != 0 {
		t.Errorf("the tutorial's rules have problems: %q", problems)
	}
	if problems := rules.problems([]string{"10.244.1.2", "10.244.2.5", "10.244.3.9"}); len(problems) != 1 {
		t.Errorf("rules for other pods: problems %q, want one", problems)
	}
	if problems := httpdSvcRules(save, "10.96.0.99").problems([]string{"10.244.1.2", "10.244.2.5", "10.244.3.4"}); len(problems) != 2 {
		t.Errorf("rules for another cluster IP: problems %q, want the two KUBE-SERVICES rules missing", problems)
	}
}
