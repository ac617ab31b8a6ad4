package proxy

import "testing"

// Chain names must be kube-proxy's, byte for byte: users compare them with
// documentation, tutorials and real clusters.
func TestChainNamesMatchKubeProxy(t *testing.T) {
	for _, tc := range []struct {
		name     string
		got      string
		kubeName string // as kube-proxy names it
	}{
		{"kubernetes API Service", ServiceChainName(ServicePortName{"default", "kubernetes", "https"}, "TCP"), "KUBE-SVC-NPX46M4PTMTKRN6Y"},
		{"tutorial's httpd-svc (unnamed port)", ServiceChainName(ServicePortName{"default", "httpd-svc", ""}, "TCP"), "KUBE-SVC-RL3JAE4GN7VOGDGP"},
		{"kube-dns dns", ServiceChainName(ServicePortName{"kube-system", "kube-dns", "dns"}, "UDP"), "KUBE-SVC-TCOU7JCQXEZGVUNU"},
		{"kube-dns dns-tcp", ServiceChainName(ServicePortName{"kube-system", "kube-dns", "dns-tcp"}, "TCP"), "KUBE-SVC-ERIFXISQEP7F7OF4"},
		{"kube-dns metrics", ServiceChainName(ServicePortName{"kube-system", "kube-dns", "metrics"}, "TCP"), "KUBE-SVC-JD5MR3NA4I4DYORP"},
		{"protocol case does not matter", ServiceChainName(ServicePortName{"kube-system", "kube-dns", "dns"}, "udp"), "KUBE-SVC-TCOU7JCQXEZGVUNU"},
		{"kube-proxy test suite's svc1", ServiceChainName(ServicePortName{"ns1", "svc1", "p80"}, "TCP"), "KUBE-SVC-XPGD46QRK7WJZT7O"},
		{"kube-proxy test suite's endpoint", EndpointChainName(ServicePortName{"ns1", "svc1", "p80"}, "TCP", "10.180.0.1:80"), "KUBE-SEP-SXIVWICOYRO3J4NJ"},
		{"local chain shares the hash", LocalServiceChainName(ServicePortName{"ns1", "svc1", "p80"}, "TCP"), "KUBE-SVL-XPGD46QRK7WJZT7O"},
		{"external chain shares the hash", ExternalChainName(ServicePortName{"ns1", "svc1", "p80"}, "TCP"), "KUBE-EXT-XPGD46QRK7WJZT7O"},
	} {
		if tc.got != tc.kubeName {
			t.Errorf("%s: got %s, want %s", tc.name, tc.got, tc.kubeName)
		}
		if len(tc.got) > 28 {
			t.Errorf("%s: %s is longer than iptables' 28 characters", tc.name, tc.got)
		}
	}
}

func TestServicePortNameString(t *testing.T) {
	if got := (ServicePortName{"default", "httpd-svc", ""}).String(); got != "default/httpd-svc:" {
		t.Errorf("unnamed port: %q", got)
	}
	if got := (ServicePortName{"default", "kubernetes", "https"}).String(); got != "default/kubernetes:https" {
		t.Errorf("named port: %q", got)
	}
}
