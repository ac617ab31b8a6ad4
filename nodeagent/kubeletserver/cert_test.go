package kubeletserver

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kubelite/nodeagent/runtime"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestServingCertIsCreatedOnceAndKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	now := time.Now()
	first, err := ensureServingCert(dir, []string{"10.0.0.7", "node-1"}, now, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	leaf := first.keyPair.Leaf
	for _, host := range []string{"10.0.0.7", "node-1", "localhost", "127.0.0.1"} {
		if err := leaf.VerifyHostname(host); err != nil {
			t.Errorf("the certificate is not for %s: %v", host, err)
		}
	}
	if info, err := os.Stat(filepath.Join(dir, keyFile)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("the key file: %v, mode %v; want 0600", err, info.Mode().Perm())
	}

	again, err := ensureServingCert(dir, []string{"10.0.0.7"}, now.Add(24*time.Hour), discardLogger())
	if err != nil || !bytes.Equal(again.certPEM, first.certPEM) {
		t.Errorf("a restart replaced the certificate (%v): the API server's pin would break", err)
	}
	moved, err := ensureServingCert(dir, []string{"10.0.0.8"}, now, discardLogger())
	if err != nil || bytes.Equal(moved.certPEM, first.certPEM) {
		t.Errorf("a new node address kept the old certificate (%v)", err)
	}
	late, err := ensureServingCert(dir, []string{"10.0.0.8"}, leaf.NotAfter.Add(-time.Hour), discardLogger())
	if err != nil || bytes.Equal(late.certPEM, moved.certPEM) {
		t.Errorf("a certificate near its end was kept (%v)", err)
	}
}

func TestServingCertReplacesAnUnreadableOne(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, certFile), []byte("garbage"), 0o644)
	os.WriteFile(filepath.Join(dir, keyFile), []byte("garbage"), 0o600)
	cert, err := ensureServingCert(dir, nil, time.Now(), discardLogger())
	if err != nil || cert.keyPair.Leaf == nil {
		t.Fatalf("ensureServingCert over garbage: %v", err)
	}
	if _, err := ensureServingCert("", nil, time.Now(), discardLogger()); err == nil {
		t.Error("no directory given, and no error")
	}
}

func crilog(lines ...string) string {
	var b []byte
	for _, l := range lines {
		stream, rest, _ := strings.Cut(l, " ")
		tag, content, _ := strings.Cut(rest, " ")
		b = runtime.LogLine{Time: time.Unix(0, 0), Stream: stream, Partial: tag == "P", Content: []byte(content)}.Append(b)
	}
	return string(b)
}

func TestTailStart(t *testing.T) {
	records := []string{"stdout F a", "stdout P b1", "stdout F b2", "stderr F c"}
	log := crilog(records...)
	after := func(k int) int64 { return int64(len(crilog(records[:k]...))) } // offset past k records
	for _, tt := range []struct {
		n    int64
		want int64
	}{
		{-1, 0},
		{0, after(4)},
		{1, after(3)}, // c
		{2, after(1)}, // b1 b2, c
		{3, 0},
		{10, 0},
	} {
		got, err := tailStart(strings.NewReader(log), tt.n)
		if err != nil || got != tt.want {
			t.Errorf("tailStart(%d) = %d, %v; want %d", tt.n, got, err, tt.want)
		}
	}
	// A line still being written (no F record yet) is not counted.
	unfinished := log + crilog("stdout P d")
	if got, _ := tailStart(strings.NewReader(unfinished), 1); got != after(3) {
		t.Errorf("with an unfinished last line, tail 1 starts at %d, want %d", got, after(3))
	}
}
