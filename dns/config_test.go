package dns

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestResolvConf(t *testing.T) {
	got := string(ResolvConf("10.96.0.10", "default", "cluster.local."))
	want := "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
	if got != want {
		t.Errorf("ResolvConf =\n%s\nwant\n%s", got, want)
	}
	if got := string(ResolvConf("10.96.0.10", "kube-public", "cluster.local")); !strings.Contains(got, "search kube-public.svc.cluster.local svc.cluster.local cluster.local\n") {
		t.Errorf("ResolvConf for kube-public without the final dot =\n%s", got)
	}
}

func writeResolvConf(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestUpstreamsFromResolvConf(t *testing.T) {
	path := writeResolvConf(t, `# written by a DHCP client
search example.org
nameserver 192.0.2.53
nameserver not-an-address
; a comment
nameserver 127.0.0.53
nameserver 127.0.0.1
nameserver fd00::53
options edns0
`)
	for _, tc := range []struct {
		name   string
		listen []string
		want   []string
	}{
		// 127.0.0.1:53 is this server itself; 127.0.0.53 is another
		// resolver on the same machine (systemd-resolved) and is kept.
		{"listening on 127.0.0.1:53", []string{"127.0.0.1:53"}, []string{"192.0.2.53:53", "127.0.0.53:53", "[fd00::53]:53"}},
		// Listening on every address, we would also receive 127.0.0.53's queries.
		{"listening on :53", []string{":53"}, []string{"192.0.2.53:53", "[fd00::53]:53"}},
		{"listening on 0.0.0.0:53", []string{"0.0.0.0:53"}, []string{"192.0.2.53:53", "[fd00::53]:53"}},
		// On another port nothing loops.
		{"listening on another port", []string{"127.0.0.1:5353"}, []string{"192.0.2.53:53", "127.0.0.53:53", "127.0.0.1:53", "[fd00::53]:53"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Config{ResolvConf: path, ListenAddrs: tc.listen, Logger: testLogger(t)}.complete()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.Upstreams, tc.want) {
				t.Errorf("upstreams = %v, want %v", cfg.Upstreams, tc.want)
			}
		})
	}
}

func TestConfigComplete(t *testing.T) {
	empty := writeResolvConf(t, "")
	cfg, err := Config{ResolvConf: empty, Zone: "Cluster.Local", Upstreams: []string{"192.0.2.1", "192.0.2.2:5353", "fd00::1", "[fd00::2]:53"}}.complete()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Zone != "cluster.local." {
		t.Errorf("zone = %q, want the canonical cluster.local.", cfg.Zone)
	}
	if want := []string{"192.0.2.1:53", "192.0.2.2:5353", "[fd00::1]:53", "[fd00::2]:53"}; !slices.Equal(cfg.Upstreams, want) {
		t.Errorf("upstreams = %v, want %v", cfg.Upstreams, want)
	}
	if cfg.TTL != DefaultTTL || cfg.ttlSeconds() != 5 || cfg.Pods != PodsInsecure || cfg.CacheSize != DefaultCacheSize {
		t.Errorf("defaults not filled in: %+v", cfg)
	}

	for _, bad := range []Config{
		{ResolvConf: empty, Zone: "bad..zone"},
		{ResolvConf: empty, TTL: time.Millisecond},
		{ResolvConf: empty, Pods: "verified"},
		{ResolvConf: empty, ListenAddrs: []string{"no-port"}},
		{ResolvConf: empty, Upstreams: []string{"dns.example.com"}},
		{ResolvConf: filepath.Join(t.TempDir(), "missing")},
	} {
		if _, err := bad.complete(); err == nil {
			t.Errorf("Config %+v accepted, want an error", bad)
		}
	}
}

func TestConfigFlags(t *testing.T) {
	var cfg Config
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	cfg.AddFlags(fs)
	if err := fs.Parse([]string{"--cluster-dns-ttl=30s", "--cluster-dns-upstream=192.0.2.1,192.0.2.2", "--cluster-dns-listen=10.0.0.1:53"}); err != nil {
		t.Fatal(err)
	}
	if cfg.TTL != 30*time.Second || !slices.Equal(cfg.Upstreams, []string{"192.0.2.1", "192.0.2.2"}) ||
		!slices.Equal(cfg.ListenAddrs, []string{"10.0.0.1:53"}) || cfg.Zone != DefaultZone {
		t.Errorf("flags parsed into %+v", cfg)
	}
}
