package allocator

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
)

func TestParseIPRange(t *testing.T) {
	tests := []struct {
		cidr     string
		wantSize int
		wantErr  string
	}{
		{cidr: "10.96.0.0/12", wantSize: 1<<20 - 2},
		{cidr: " 10.96.0.0/24 ", wantSize: 254},
		{cidr: "192.168.7.0/30", wantSize: 2},
		{cidr: "", wantErr: `invalid service CIDR "": want an IPv4 network such as 10.96.0.0/12`},
		{cidr: "10.96.0.0", wantErr: `invalid service CIDR "10.96.0.0": want an IPv4 network such as 10.96.0.0/12`},
		{cidr: "banana/12", wantErr: `invalid service CIDR "banana/12": want an IPv4 network such as 10.96.0.0/12`},
		{cidr: "fd00::/108", wantErr: `invalid service CIDR "fd00::/108": only IPv4 service CIDRs are supported`},
		{cidr: "10.96.0.1/12", wantErr: `invalid service CIDR "10.96.0.1/12": the address has host bits set; did you mean 10.96.0.0/12?`},
		{cidr: "10.0.0.0/8", wantErr: `invalid service CIDR "10.0.0.0/8": too large, the prefix length must be /12 or longer`},
		{cidr: "10.96.0.0/31", wantErr: `invalid service CIDR "10.96.0.0/31": a /31 has no addresses besides its network and broadcast addresses; use /30 or shorter`},
		{cidr: "10.96.0.0/32", wantErr: `invalid service CIDR "10.96.0.0/32": a /32 has no addresses besides its network and broadcast addresses; use /30 or shorter`},
	}
	for _, tt := range tests {
		t.Run(tt.cidr, func(t *testing.T) {
			r, err := ParseIPRange(tt.cidr)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseIPRange(%q) error = %v, want %q", tt.cidr, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseIPRange(%q): %v", tt.cidr, err)
			}
			if r.Size() != tt.wantSize {
				t.Errorf("Size() = %d, want %d", r.Size(), tt.wantSize)
			}
		})
	}
}

func TestIPRangeContains(t *testing.T) {
	r := mustIPRange(t, "10.96.0.0/12")
	tests := []struct {
		ip   string
		want bool
	}{
		{"10.96.0.0", false}, // network address
		{"10.96.0.1", true},
		{"10.100.3.4", true},
		{"10.111.255.254", true},
		{"10.111.255.255", false}, // broadcast address
		{"10.112.0.1", false},
		{"10.0.0.5", false},
		{"::ffff:10.96.0.5", false}, // one spelling per value
		{"fd00::1", false},
	}
	for _, tt := range tests {
		if got := r.Contains(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("Contains(%s) = %v, want %v", tt.ip, got, tt.want)
		}
	}
	if got := r.String(); got != "10.96.0.0/12" {
		t.Errorf("String() = %q", got)
	}
}

func TestReservedIP(t *testing.T) {
	tests := []struct {
		cidr, owner string
		want        string // "" for none
	}{
		{"10.96.0.0/12", KubernetesService, "10.96.0.1"},
		{"10.96.0.0/12", DNSService, "10.96.0.10"},
		{"10.96.0.0/12", "default/httpd-svc", ""},
		{"10.96.0.0/28", DNSService, "10.96.0.10"}, // 14 addresses: .1 to .14
		{"10.96.0.0/29", DNSService, ""},           // 6 addresses: no tenth
		{"10.96.0.0/30", KubernetesService, "10.96.0.1"},
	}
	for _, tt := range tests {
		ip, ok := mustIPRange(t, tt.cidr).ReservedIP(tt.owner)
		got := ""
		if ok {
			got = ip.String()
		}
		if got != tt.want {
			t.Errorf("%s: ReservedIP(%s) = %q, want %q", tt.cidr, tt.owner, got, tt.want)
		}
	}
}

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		text     string
		want     string
		wantSize int
		wantErr  string
	}{
		{text: "30000-32767", want: "30000-32767", wantSize: 2768},
		{text: " 30000 - 30009 ", want: "30000-30009", wantSize: 10},
		{text: "31000", want: "31000-31000", wantSize: 1},
		{text: "1-65535", want: "1-65535", wantSize: 65535},
		{text: "", wantErr: `invalid node port range "": want FIRST-LAST, such as 30000-32767`},
		{text: "high", wantErr: `invalid node port range "high": want FIRST-LAST, such as 30000-32767`},
		{text: "30000-", wantErr: `invalid node port range "30000-": want FIRST-LAST, such as 30000-32767`},
		{text: "30000-31000-32000", wantErr: `invalid node port range "30000-31000-32000": want FIRST-LAST, such as 30000-32767`},
		{text: "32767-30000", wantErr: `invalid node port range "32767-30000": the first port (32767) is greater than the last (30000)`},
		{text: "0-100", wantErr: `invalid node port range "0-100": ports must be between 1 and 65535`},
		{text: "30000-70000", wantErr: `invalid node port range "30000-70000": ports must be between 1 and 65535`},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			r, err := ParsePortRange(tt.text)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParsePortRange(%q) error = %v, want %q", tt.text, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePortRange(%q): %v", tt.text, err)
			}
			if r.String() != tt.want || r.Size() != tt.wantSize {
				t.Errorf("got %s (size %d), want %s (size %d)", r, r.Size(), tt.want, tt.wantSize)
			}
		})
	}
}

func TestPortRangeValues(t *testing.T) {
	r := mustPortRange(t, "30000-32767")
	tests := []struct {
		value string
		want  bool
	}{
		{"30000", true},
		{"32767", true},
		{"29999", false},
		{"32768", false},
		{"031000", false}, // one spelling per value
		{"+31000", false},
		{"port", false},
	}
	for _, tt := range tests {
		if _, got := r.indexOf(tt.value); got != tt.want {
			t.Errorf("indexOf(%q) ok = %v, want %v", tt.value, got, tt.want)
		}
	}
}

func TestPickFree(t *testing.T) {
	always := func(i int) func(int) int { return func(int) int { return i } }
	tests := []struct {
		name    string
		values  valueRange
		taken   []string
		intN    func(int) int
		want    string // "" when wantErr
		wantErr error
	}{
		{
			name:   "random pick lands on a free value",
			values: mustIPRange(t, "10.96.0.0/24"),
			intN:   always(41),
			want:   "10.96.0.42",
		},
		{
			name:   "the kubernetes address is never picked at random",
			values: mustIPRange(t, "10.96.0.0/24"),
			intN:   always(0), // 10.96.0.1
			want:   "10.96.0.2",
		},
		{
			name:   "the DNS address is never picked at random",
			values: mustIPRange(t, "10.96.0.0/24"),
			intN:   always(9), // 10.96.0.10
			want:   "10.96.0.11",
		},
		{
			name:   "scan wraps around from the end",
			values: mustPortRange(t, "30000-30009"),
			taken:  []string{"30009"},
			intN:   always(9),
			want:   "30000",
		},
		{
			name:   "nearly full range: the scan finds the last free value",
			values: mustPortRange(t, "30000-30999"),
			taken:  allBut(mustPortRange(t, "30000-30999"), "30777"),
			intN:   rand.New(rand.NewPCG(1, 2)).IntN,
			want:   "30777",
		},
		{
			name:   "range of one port",
			values: mustPortRange(t, "31000"),
			intN:   always(0),
			want:   "31000",
		},
		{
			name:    "range of one port, taken",
			values:  mustPortRange(t, "31000"),
			taken:   []string{"31000"},
			intN:    always(0),
			wantErr: ErrFull,
		},
		{
			name:   "a /30 hands out only its second address at random",
			values: mustIPRange(t, "10.96.0.0/30"),
			intN:   always(0),
			want:   "10.96.0.2",
		},
		{
			name:    "a /30 is full once its second address is taken",
			values:  mustIPRange(t, "10.96.0.0/30"),
			taken:   []string{"10.96.0.2"},
			intN:    always(0),
			wantErr: ErrFull,
		},
		{
			name:    "a range with only reserved values left is full",
			values:  mustIPRange(t, "10.96.0.0/28"),
			taken:   allBut(mustIPRange(t, "10.96.0.0/28"), "10.96.0.1", "10.96.0.10"),
			intN:    rand.New(rand.NewPCG(3, 4)).IntN,
			wantErr: ErrFull,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, err := pickFree(tt.values, indexes(t, tt.values, tt.taken), tt.intN)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("pickFree() = %s, %v; want error %v", tt.values.valueAt(i), err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("pickFree(): %v", err)
			}
			if got := tt.values.valueAt(i); got != tt.want {
				t.Errorf("pickFree() = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestPickFreeNeverReserved draws many random picks from a small range and
// checks that the reserved addresses never come out.
func TestPickFreeNeverReserved(t *testing.T) {
	r := mustIPRange(t, "10.96.0.0/28")
	intN := rand.New(rand.NewPCG(7, 7)).IntN
	seen := map[string]bool{}
	for range 5000 {
		i, err := pickFree(r, nil, intN)
		if err != nil {
			t.Fatal(err)
		}
		seen[r.valueAt(i)] = true
	}
	if seen["10.96.0.1"] || seen["10.96.0.10"] {
		t.Fatalf("a reserved address was picked at random: %v", seen)
	}
	if len(seen) != 12 {
		t.Errorf("picked %d distinct addresses, want all 12 unreserved ones: %v", len(seen), seen)
	}
}

func TestErrFullWording(t *testing.T) {
	if ErrFull.Error() != "range is full" {
		t.Fatalf("ErrFull = %q, want Kubernetes' %q", ErrFull, "range is full")
	}
}

func mustIPRange(t *testing.T, cidr string) IPRange {
	t.Helper()
	r, err := ParseIPRange(cidr)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustPortRange(t *testing.T, text string) PortRange {
	t.Helper()
	r, err := ParsePortRange(text)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// allBut lists every value of r except the given ones.
func allBut(r valueRange, except ...string) []string {
	var values []string
	for i := range r.size() {
		v := r.valueAt(i)
		keep := true
		for _, e := range except {
			if v == e {
				keep = false
			}
		}
		if keep {
			values = append(values, v)
		}
	}
	return values
}

func indexes(t *testing.T, r valueRange, values []string) map[int]bool {
	t.Helper()
	taken := map[int]bool{}
	for _, v := range values {
		i, ok := r.indexOf(v)
		if !ok {
			t.Fatalf("%s is not in %s", v, r)
		}
		taken[i] = true
	}
	return taken
}
