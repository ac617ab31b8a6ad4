package etcd

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestZapLoggerWritesThroughSlog(t *testing.T) {
	var out bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	shuttingDown := false
	zl := newZapLogger(logger, zapcore.WarnLevel, func() bool { return shuttingDown })

	zl.Info("dropped: below the minimum level")
	zl.Named("raft").With(zap.String("member", "m1")).Warn("slow apply", zap.Int("took-ms", 120))
	zl.Error("disk failed", zap.Error(errors.New("no space")))
	shuttingDown = true
	zl.Error("accept tcp: use of closed network connection")

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{
		`level=WARN msg="slow apply" member=m1 took-ms=120 logger=raft`,
		`level=ERROR msg="disk failed" error="no space"`,
		`level=DEBUG msg="accept tcp: use of closed network connection"`,
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, w := range want {
		if !strings.HasSuffix(lines[i], w) {
			t.Errorf("line %d = %q, want it to end with %q", i, lines[i], w)
		}
	}
}
