package network

import (
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestRenderConfList(t *testing.T) {
	got, err := renderConfList(confListSettings{
		BridgeName: "kl-node1",
		PodCIDR:    netip.MustParsePrefix("10.244.1.7/24"), // not masked: rendered masked
		IPAMDir:    "/var/lib/kubelite/agent/network/cni/ipam",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "cniVersion": "1.0.0",
  "name": "kubelite",
  "plugins": [
    {
      "bridge": "kl-node1",
      "hairpinMode": true,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "ranges": [
          [
            {
              "subnet": "10.244.1.0/24"
            }
          ]
        ],
        "routes": [
          {
            "dst": "0.0.0.0/0"
          }
        ],
        "dataDir": "/var/lib/kubelite/agent/network/cni/ipam"
      },
      "isGateway": true,
      "type": "bridge"
    },
    {
      "capabilities": {
        "portMappings": true
      },
      "snat": true,
      "type": "portmap"
    },
    {
      "type": "loopback"
    }
  ]
}`
	if string(got) != want {
		t.Errorf("conflist:\n%s\nwant:\n%s", got, want)
	}
	withMTU, _ := renderConfList(confListSettings{BridgeName: "b", PodCIDR: netip.MustParsePrefix("10.244.1.0/24"), MTU: 1450})
	var parsed struct {
		Plugins []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(withMTU, &parsed); err != nil || parsed.Plugins[0]["mtu"] != float64(1450) {
		t.Errorf("MTU not rendered: %s (%v)", withMTU, err)
	}
}

func TestRuntimeConf(t *testing.T) {
	a := cniAttachment{PodUID: "uid-1", PodNamespace: "default", PodName: "web", NetNSPath: "/run/netns/kubelite-n1-uid-1"}
	rt := a.runtimeConf()
	if rt.ContainerID != "uid-1" || rt.IfName != "eth0" || rt.NetNS != a.NetNSPath || rt.CapabilityArgs != nil {
		t.Errorf("runtime conf = %+v", rt)
	}
	a.PortMappings = []PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}
	if rt := a.runtimeConf(); !reflect.DeepEqual(rt.CapabilityArgs["portMappings"], a.PortMappings) {
		t.Errorf("port mappings not passed: %+v", rt.CapabilityArgs)
	}
}

func route(dst, gw string) Route {
	return Route{Dst: netip.MustParsePrefix(dst), Gateway: netip.MustParseAddr(gw)}
}

// fakeRoutes is a routing table in memory.
type fakeRoutes struct {
	routes  map[netip.Prefix]netip.Addr
	failDst netip.Prefix // Replace of this destination fails
	log     []string
}

func (f *fakeRoutes) List() ([]Route, error) {
	var out []Route
	for dst, gw := range f.routes {
		out = append(out, Route{Dst: dst, Gateway: gw})
	}
	return out, nil
}

func (f *fakeRoutes) Replace(r Route) error {
	if r.Dst == f.failDst {
		return errors.New("network is unreachable")
	}
	f.routes[r.Dst] = r.Gateway
	f.log = append(f.log, "replace "+r.String())
	return nil
}

func (f *fakeRoutes) Delete(r Route) error {
	delete(f.routes, r.Dst)
	f.log = append(f.log, "delete "+r.String())
	return nil
}

func TestSyncRoutes(t *testing.T) {
	tests := []struct {
		name    string
		current []Route
		desired []Route
		wantLog []string
	}{
		{"first node joins", nil,
			[]Route{route("10.244.2.0/24", "192.168.56.12")},
			[]string{"replace 10.244.2.0/24 via 192.168.56.12"}},
		{"nothing to do", []Route{route("10.244.2.0/24", "192.168.56.12")},
			[]Route{route("10.244.2.0/24", "192.168.56.12")},
			nil},
		{"a node got a new address", []Route{route("10.244.2.0/24", "192.168.56.12")},
			[]Route{route("10.244.2.0/24", "192.168.56.22")},
			[]string{"replace 10.244.2.0/24 via 192.168.56.22"}},
		{"a node left", []Route{route("10.244.2.0/24", "192.168.56.12"), route("10.244.3.0/24", "192.168.56.13")},
			[]Route{route("10.244.3.0/24", "192.168.56.13")},
			[]string{"delete 10.244.2.0/24 via 192.168.56.12"}},
		{"all nodes left", []Route{route("10.244.3.0/24", "192.168.56.13"), route("10.244.2.0/24", "192.168.56.12")},
			nil,
			[]string{"delete 10.244.2.0/24 via 192.168.56.12", "delete 10.244.3.0/24 via 192.168.56.13"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := &fakeRoutes{routes: map[netip.Prefix]netip.Addr{}}
			for _, r := range tt.current {
				table.routes[r.Dst] = r.Gateway
			}
			if _, err := syncRoutes(table, tt.desired); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(table.log, tt.wantLog) {
				t.Errorf("changes = %q; want %q", table.log, tt.wantLog)
			}
			if got, _ := table.List(); len(got) != len(tt.desired) {
				t.Errorf("table = %v; want %v", got, tt.desired)
			}
		})
	}
}

// A route that cannot be added does not stop the others, and the error
// names it.
func TestSyncRoutesGoesOnAfterAFailure(t *testing.T) {
	table := &fakeRoutes{routes: map[netip.Prefix]netip.Addr{}, failDst: netip.MustParsePrefix("10.244.2.0/24")}
	_, err := syncRoutes(table, []Route{route("10.244.2.0/24", "10.0.0.9"), route("10.244.3.0/24", "192.168.56.13")})
	if err == nil || !strings.Contains(err.Error(), "10.244.2.0/24 via 10.0.0.9") {
		t.Errorf("error = %v; want one naming the failed route", err)
	}
	if table.routes[netip.MustParsePrefix("10.244.3.0/24")] != netip.MustParseAddr("192.168.56.13") {
		t.Errorf("the good route was not added: %v", table.routes)
	}
}

// fakeIPTables records the rules as iptables-save would print them.
type fakeIPTables struct {
	rules map[string][]string // "table chain" → rules
}

func (f *fakeIPTables) ClearChain(table, chain string) error {
	f.rules[table+" "+chain] = []string{}
	return nil
}

func (f *fakeIPTables) Append(table, chain string, spec ...string) error {
	key := table + " " + chain
	f.rules[key] = append(f.rules[key], strings.Join(spec, " "))
	return nil
}

func (f *fakeIPTables) InsertUnique(table, chain string, pos int, spec ...string) error {
	key := table + " " + chain
	rule := strings.Join(spec, " ")
	for _, r := range f.rules[key] {
		if r == rule {
			return nil
		}
	}
	f.rules[key] = append([]string{rule}, f.rules[key]...)
	return nil
}

func TestInstallRules(t *testing.T) {
	ipt := &fakeIPTables{rules: map[string][]string{
		"nat POSTROUTING":          {"-j SOMEONE-ELSES"},
		"nat KUBELITE-POSTROUTING": {"-s 10.244.9.0/24 -j MASQUERADE"}, // from an old podCIDR
	}}
	pod, cluster := netip.MustParsePrefix("10.244.1.0/24"), netip.MustParsePrefix("10.244.0.0/16")
	for range 2 { // installing again changes nothing
		if err := installRules(ipt, pod, cluster); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][]string{
		"nat POSTROUTING": {`-m comment --comment kubelite pod masquerade -j KUBELITE-POSTROUTING`, "-j SOMEONE-ELSES"},
		"nat KUBELITE-POSTROUTING": {
			`-s 10.244.1.0/24 ! -d 10.244.0.0/16 -m comment --comment kubelite: pod traffic leaving the cluster network -j MASQUERADE`},
		"filter FORWARD": {`-m comment --comment kubelite pod forwarding -j KUBELITE-FORWARD`},
		"filter KUBELITE-FORWARD": {
			`-s 10.244.0.0/16 -m comment --comment kubelite: pod traffic -j ACCEPT`,
			`-d 10.244.0.0/16 -m comment --comment kubelite: pod traffic -j ACCEPT`},
	}
	if !reflect.DeepEqual(ipt.rules, want) {
		t.Errorf("rules:\n%q\nwant:\n%q", ipt.rules, want)
	}
}

func TestChooseNodeIP(t *testing.T) {
	addr := netip.MustParseAddr
	tests := []struct {
		name         string
		configured   string
		toServer     netip.Addr
		defaultRoute netip.Addr
		want         netip.Addr
		warn         bool
		wantErr      bool
	}{
		{"--node-ip wins", "192.168.56.11", addr("192.168.56.21"), addr("10.0.2.15"), addr("192.168.56.11"), false, false},
		{"bad --node-ip", "node1", netip.Addr{}, netip.Addr{}, netip.Addr{}, false, true},
		// The Vagrant trap: the default route is NAT, the server is on
		// the private network.
		{"route to the server", "", addr("192.168.56.11"), addr("10.0.2.15"), addr("192.168.56.11"), false, false},
		{"server on this machine", "", addr("127.0.0.1"), addr("192.168.1.20"), addr("192.168.1.20"), false, false},
		{"only the NAT address", "", addr("127.0.0.1"), addr("10.0.2.15"), addr("10.0.2.15"), true, false},
		{"--node-ip of the NAT address is warned about too", "10.0.2.15", netip.Addr{}, netip.Addr{}, addr("10.0.2.15"), true, false},
		{"no way to tell", "", addr("127.0.0.1"), netip.Addr{}, netip.Addr{}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ChooseNodeIP(tt.configured, tt.toServer, tt.defaultRoute)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v; want error %v", err, tt.wantErr)
			}
			if got.Addr != tt.want || (got.Warning != "") != tt.warn {
				t.Errorf("ChooseNodeIP = %+v; want %v (warning %v)", got, tt.want, tt.warn)
			}
		})
	}
}

func TestNewChecksConfig(t *testing.T) {
	_, err := New(Config{BridgeName: "a-very-long-bridge-name"})
	for _, want := range []string{"no state directory", "no prefix", "1 to 15 characters", "no cluster CIDR"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New error = %v; want it to say %q", err, want)
		}
	}
}
