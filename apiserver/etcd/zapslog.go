package etcd

import (
	"context"
	"log/slog"
	"sort"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newZapLogger returns a zap logger (the kind etcd's server and client
// take) that writes through logger, so etcd's messages share the program's
// log format. Only entries at minLevel or above are kept. While demote
// returns true, errors are logged at debug level: etcd reports its own
// listeners closing during a normal shutdown as errors (etcd issue #17424).
func newZapLogger(logger *slog.Logger, minLevel zapcore.Level, demote func() bool) *zap.Logger {
	return zap.New(&slogCore{logger: logger, minLevel: minLevel, demote: demote})
}

// slogCore is a zapcore.Core that hands every entry to a slog.Logger.
type slogCore struct {
	logger   *slog.Logger
	minLevel zapcore.Level
	demote   func() bool
}

func (c *slogCore) Enabled(level zapcore.Level) bool { return level >= c.minLevel }

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	clone := *c
	clone.logger = c.logger.With(attrsOf(fields)...)
	return &clone
}

func (c *slogCore) Check(entry zapcore.Entry, checked *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(entry.Level) {
		return checked.AddCore(entry, c)
	}
	return checked
}

func (c *slogCore) Write(entry zapcore.Entry, fields []zapcore.Field) error {
	level := slogLevel(entry.Level)
	if level >= slog.LevelError && c.demote != nil && c.demote() {
		level = slog.LevelDebug
	}
	attrs := attrsOf(fields)
	if entry.LoggerName != "" {
		attrs = append(attrs, slog.String("logger", entry.LoggerName))
	}
	c.logger.Log(context.Background(), level, entry.Message, attrs...)
	return nil
}

func (c *slogCore) Sync() error { return nil }

// slogLevel maps zap's levels onto slog's; DPanic, Panic and Fatal are
// errors as far as the log is concerned (zap itself panics or exits).
func slogLevel(level zapcore.Level) slog.Level {
	switch {
	case level >= zapcore.ErrorLevel:
		return slog.LevelError
	case level == zapcore.WarnLevel:
		return slog.LevelWarn
	case level == zapcore.InfoLevel:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}

// attrsOf renders zap fields as slog attributes, sorted by key.
func attrsOf(fields []zapcore.Field) []any {
	encoder := zapcore.NewMapObjectEncoder()
	for _, field := range fields {
		field.AddTo(encoder)
	}
	keys := make([]string, 0, len(encoder.Fields))
	for key := range encoder.Fields {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	attrs := make([]any, 0, len(keys))
	for _, key := range keys {
		attrs = append(attrs, slog.Any(key, encoder.Fields[key]))
	}
	return attrs
}
