package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestNormalizeImage(t *testing.T) {
	const digest = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	tests := []struct {
		in, want string
	}{
		{"httpd", "docker.io/library/httpd:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36"},
		{"library/busybox", "docker.io/library/busybox:latest"},
		{"docker.io/busybox", "docker.io/library/busybox:latest"},
		{"bitnami/nginx:1.25", "docker.io/bitnami/nginx:1.25"},
		{"myreg:5000/x/y", "myreg:5000/x/y:latest"},
		{"127.0.0.1:5000/library/busybox:latest", "127.0.0.1:5000/library/busybox:latest"},
		{"localhost/app", "localhost/app:latest"},
		{"quay.io/coreos/etcd:v3.5", "quay.io/coreos/etcd:v3.5"},
		{"busybox@" + digest, "docker.io/library/busybox@" + digest},
		{"busybox:1.36@" + digest, "docker.io/library/busybox@" + digest},
		{"docker.io/library/httpd:latest", "docker.io/library/httpd:latest"},
	}
	for _, tt := range tests {
		got, err := NormalizeImage(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("NormalizeImage(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestNormalizeImageRejectsBadNames(t *testing.T) {
	for _, in := range []string{"", "HTTPD", "httpd:", "a b", "busybox@sha256:short", "-x"} {
		_, err := NormalizeImage(in)
		if !errors.Is(err, ErrInvalidImageName) {
			t.Errorf("NormalizeImage(%q) error = %v; want ErrInvalidImageName", in, err)
		}
		if ImageErrorReason(err) != "InvalidImageName" {
			t.Errorf("ImageErrorReason(%v) = %q", err, ImageErrorReason(err))
		}
	}
}

func TestImageErrorReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: x: %w", ErrImagePull, errors.New("dial tcp: refused")), "ErrImagePull"},
		{fmt.Errorf("%w: not present", ErrImageNeverPull), "ErrImageNeverPull"},
		{errors.New("other"), ""},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := ImageErrorReason(tt.err); got != tt.want {
			t.Errorf("ImageErrorReason(%v) = %q; want %q", tt.err, got, tt.want)
		}
	}
}

func TestLogLineRoundTrip(t *testing.T) {
	ts := time.Date(2016, 10, 6, 0, 17, 9, 669794202, time.UTC)
	tests := []struct {
		line LogLine
		want string
	}{
		{LogLine{Time: ts, Stream: Stdout, Content: []byte("hello world")}, "2016-10-06T00:17:09.669794202Z stdout F hello world\n"},
		{LogLine{Time: ts, Stream: Stderr, Partial: true, Content: []byte("part")}, "2016-10-06T00:17:09.669794202Z stderr P part\n"},
		{LogLine{Time: ts, Stream: Stdout}, "2016-10-06T00:17:09.669794202Z stdout F \n"},
	}
	for _, tt := range tests {
		got := string(tt.line.Append(nil))
		if got != tt.want {
			t.Errorf("Append = %q; want %q", got, tt.want)
		}
		parsed, err := ParseLogLine([]byte(got))
		if err != nil {
			t.Fatalf("ParseLogLine(%q): %v", got, err)
		}
		if !parsed.Time.Equal(tt.line.Time) || parsed.Stream != tt.line.Stream || parsed.Partial != tt.line.Partial || !bytes.Equal(parsed.Content, tt.line.Content) {
			t.Errorf("ParseLogLine(%q) = %+v; want %+v", got, parsed, tt.line)
		}
	}
}

func TestParseLogLineErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"nonsense",
		"2016-10-06T00:17:09Z",
		"yesterday stdout F x",
		"2016-10-06T00:17:09Z stdin F x",
		"2016-10-06T00:17:09Z stdout X x",
	} {
		if _, err := ParseLogLine([]byte(in)); err == nil {
			t.Errorf("ParseLogLine(%q) succeeded; want an error", in)
		}
	}
}

// fakeClock ticks one second per reading, so records are told apart.
func fakeClock() func() time.Time {
	t := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time {
		t = t.Add(time.Second)
		return t
	}
}

func TestLineWriter(t *testing.T) {
	var out bytes.Buffer
	file := newLogFile(&out, fakeClock())
	stdout := newLineWriter(file, Stdout)
	stderr := newLineWriter(file, Stderr)
	stdout.maxLine = 8

	// Lines arrive cut anywhere; a terminal's \r\n loses its \r; a line
	// longer than maxLine becomes partial records; the unterminated rest is
	// partial at Close.
	for _, chunk := range []string{"hel", "lo\nwor", "ld\r\n", "0123456789abcdefXY\n", "tail"} {
		if _, err := stdout.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	stderr.Write([]byte("oops\n"))
	stdout.Close()
	stderr.Close()

	want := strings.Join([]string{
		"2024-01-01T00:00:01Z stdout F hello",
		"2024-01-01T00:00:02Z stdout F world",
		"2024-01-01T00:00:03Z stdout P 01234567",
		"2024-01-01T00:00:04Z stdout P 89abcdef",
		"2024-01-01T00:00:05Z stdout F XY",
		"2024-01-01T00:00:06Z stderr F oops",
		"2024-01-01T00:00:07Z stdout P tail",
	}, "\n") + "\n"
	if out.String() != want {
		t.Errorf("log file:\n%s\nwant:\n%s", out.String(), want)
	}

	lines, err := ReadLog(&out)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range lines {
		got = append(got, l.Stream+":"+string(l.Content))
	}
	wantLines := []string{"stdout:hello", "stdout:world", "stdout:0123456789abcdefXY", "stderr:oops", "stdout:tail"}
	if !slices.Equal(got, wantLines) {
		t.Errorf("ReadLog = %q; want %q", got, wantLines)
	}
}

func TestContainerArgs(t *testing.T) {
	entrypoint := []string{"/entry"}
	cmd := []string{"default", "args"}
	tests := []struct {
		name          string
		command, args []string
		want          []string
	}{
		{"image defaults", nil, nil, []string{"/entry", "default", "args"}},
		{"args replace cmd", nil, []string{"a"}, []string{"/entry", "a"}},
		{"command drops cmd", []string{"sh"}, nil, []string{"sh"}},
		{"command and args", []string{"sh", "-c"}, []string{"echo hi"}, []string{"sh", "-c", "echo hi"}},
	}
	for _, tt := range tests {
		got := containerArgs(entrypoint, cmd, tt.command, tt.args)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %q; want %q", tt.name, got, tt.want)
		}
	}
	if got := containerArgs(nil, []string{"sh"}, nil, nil); !slices.Equal(got, []string{"sh"}) {
		t.Errorf("cmd only: got %q", got)
	}
}

func TestSpecOpts(t *testing.T) {
	spec := &oci.Spec{
		Process: &specs.Process{},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
			{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace},
		}},
	}
	opts := []oci.SpecOpts{
		WithNetworkNamespace("/var/run/netns/pod1"),
		WithResolvConf("/pods/1/resolv.conf"),
		WithHostsFile("/pods/1/hosts"),
		WithBindMount("/data", "/var/data", false),
		WithResolvConf("/pods/1/resolv.conf.new"), // replaces the first
		WithCommand(nil, []string{"sh"}, []string{"httpd"}, []string{"-f"}),
	}
	for _, opt := range opts {
		if err := opt(context.Background(), nil, nil, spec); err != nil {
			t.Fatal(err)
		}
	}
	wantNS := []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace, Path: "/var/run/netns/pod1"}}
	if !slices.Equal(spec.Linux.Namespaces, wantNS) {
		t.Errorf("namespaces = %+v; want %+v", spec.Linux.Namespaces, wantNS)
	}
	var mounts []string
	for _, m := range spec.Mounts {
		mounts = append(mounts, fmt.Sprintf("%s<-%s %s", m.Destination, m.Source, strings.Join(m.Options, ",")))
	}
	wantMounts := []string{
		"/etc/resolv.conf<-/pods/1/resolv.conf.new rbind,rprivate,ro",
		"/etc/hosts<-/pods/1/hosts rbind,rprivate,ro",
		"/var/data<-/data rbind,rprivate",
	}
	if !slices.Equal(mounts, wantMounts) {
		t.Errorf("mounts = %q; want %q", mounts, wantMounts)
	}
	if !slices.Equal(spec.Process.Args, []string{"httpd", "-f"}) {
		t.Errorf("args = %q", spec.Process.Args)
	}
	if err := WithCommand(nil, nil, nil, nil)(context.Background(), nil, nil, spec); err == nil {
		t.Error("WithCommand with no command anywhere succeeded; want an error")
	}
}

func TestRenderConfig(t *testing.T) {
	got := renderConfig(containerdPaths("/var/lib/kubelite/agent/containerd"), "info")
	for _, want := range []string{
		"version = 2\n",
		`root = "/var/lib/kubelite/agent/containerd/root"`,
		`state = "/var/lib/kubelite/agent/containerd/state"`,
		`"io.containerd.grpc.v1.cri",`,
		"[grpc]\n  address = \"/var/lib/kubelite/agent/containerd/containerd.sock\"",
		"[ttrpc]\n  address = \"/var/lib/kubelite/agent/containerd/containerd.sock.ttrpc\"",
		"[debug]\n  level = \"info\"",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	// Paths are TOML strings even when they hold quotes.
	odd := renderConfig(containerdPaths(`/tmp/a"b`), "debug")
	if !strings.Contains(odd, `root = "/tmp/a\"b/root"`) {
		t.Errorf("a quote in a path is not escaped:\n%s", odd)
	}
}

func TestSearchPath(t *testing.T) {
	got := searchPath([]string{"/opt/kubelite/bin"}, "/usr/bin:/home/me/bin")
	dirs := strings.Split(got, ":")
	if dirs[0] != "/opt/kubelite/bin" {
		t.Errorf("extra path not first: %s", got)
	}
	for _, want := range []string{"/usr/sbin", "/usr/bin", "/home/me/bin"} {
		if !slices.Contains(dirs, want) {
			t.Errorf("PATH %s lacks %s", got, want)
		}
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		if seen[d] {
			t.Errorf("PATH %s lists %s twice", got, d)
		}
		seen[d] = true
	}
}

func TestContainerSpecValidate(t *testing.T) {
	bad := ContainerSpec{Labels: map[string]string{"kubelite.runtime/exit-code": "0", "io.kubernetes.pod.name": "x"}}
	err := bad.validate()
	if err == nil {
		t.Fatal("validate accepted a spec without name and image")
	}
	for _, want := range []string{"no container name", "no image", "kubelite.runtime/exit-code", "io.kubernetes.pod.name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	good := ContainerSpec{Name: "web", Image: "httpd", Labels: map[string]string{"app": "x"}}
	if err := good.validate(); err != nil {
		t.Errorf("validate(%+v) = %v", good, err)
	}
}

// Supervise fails clearly, without root, when containerd is missing or
// does not come up.
func TestSuperviseFailsClearly(t *testing.T) {
	ctx := context.Background()
	_, err := Supervise(ctx, SuperviseConfig{DataDir: t.TempDir(), Binary: "no-such-containerd"})
	if err == nil || !strings.Contains(err.Error(), "install") {
		t.Errorf("missing binary: %v; want advice to install containerd", err)
	}
	_, err = Supervise(ctx, SuperviseConfig{DataDir: t.TempDir(), Binary: "false", Logger: discardLogger()})
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "containerd.log") {
		t.Errorf("containerd that exits: %v; want it named with its log", err)
	}
}
