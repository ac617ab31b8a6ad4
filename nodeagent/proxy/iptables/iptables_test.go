package iptables

import "testing"

func TestFailedLine(t *testing.T) {
	input := []byte("*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -m bogus -j ACCEPT\nCOMMIT\n")
	for stderr, want := range map[string]string{
		"iptables-restore: line 3 failed": "-A KUBE-SERVICES -m bogus -j ACCEPT",
		"iptables-restore v1.8.9 (nf_tables): Couldn't load match `bogus'\n\nError occurred at line: 3\n": "-A KUBE-SERVICES -m bogus -j ACCEPT",
		"Error occurred at line: 4":                         "COMMIT",
		"Error occurred at line: 99":                        "",
		"Another app is currently holding the xtables lock": "",
	} {
		if got := failedLine(stderr, input); got != want {
			t.Errorf("failedLine(%q) = %q, want %q", stderr, got, want)
		}
	}
}
