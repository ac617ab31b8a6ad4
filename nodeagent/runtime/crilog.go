package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Stream names as they appear in CRI log lines.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// MaxLogLine is the longest content one log record holds; longer lines are
// cut into partial (P) records, as containerd's CRI plugin does by default.
const MaxLogLine = 16 * 1024

const (
	tagFull    = "F"
	tagPartial = "P"
)

// LogLine is one record of a CRI log file:
//
//	2016-10-06T00:17:09.669794202Z stdout F hello
//
// A line cut because it was too long, or not ended by a newline when the
// stream closed, is written as partial (tag P) records followed by a full
// (F) one; a reader joins them.
type LogLine struct {
	Time    time.Time
	Stream  string // Stdout or Stderr
	Partial bool
	Content []byte // without the newline
}

// Append appends the record, newline included, to b.
func (l LogLine) Append(b []byte) []byte {
	tag := tagFull
	if l.Partial {
		tag = tagPartial
	}
	b = l.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ' ')
	b = append(b, l.Stream...)
	b = append(b, ' ')
	b = append(b, tag...)
	b = append(b, ' ')
	b = append(b, l.Content...)
	return append(b, '\n')
}

// ParseLogLine parses one record of a CRI log file, with or without its
// trailing newline.
func ParseLogLine(record []byte) (LogLine, error) {
	record = bytes.TrimSuffix(record, []byte("\n"))
	timestamp, rest, ok := bytes.Cut(record, []byte(" "))
	if !ok {
		return LogLine{}, fmt.Errorf("log record %q: no timestamp", record)
	}
	t, err := time.Parse(time.RFC3339Nano, string(timestamp))
	if err != nil {
		return LogLine{}, fmt.Errorf("log record %q: timestamp: %w", record, err)
	}
	stream, rest, ok := bytes.Cut(rest, []byte(" "))
	if !ok || (string(stream) != Stdout && string(stream) != Stderr) {
		return LogLine{}, fmt.Errorf("log record %q: stream must be stdout or stderr", record)
	}
	// Content may itself hold spaces, and may be empty ("... stdout F ").
	tags, content, _ := bytes.Cut(rest, []byte(" "))
	partial := false
	for _, tag := range bytes.Split(tags, []byte(":")) {
		switch string(tag) {
		case tagPartial:
			partial = true
		case tagFull:
		default:
			return LogLine{}, fmt.Errorf("log record %q: unknown tag %q", record, tag)
		}
	}
	return LogLine{Time: t, Stream: string(stream), Partial: partial, Content: content}, nil
}

// logFile writes the records of a container's streams into one file; the
// mutex keeps records of stdout and stderr from interleaving mid-line.
type logFile struct {
	mu  sync.Mutex
	out io.Writer
	now func() time.Time
	buf []byte
}

func newLogFile(out io.Writer, now func() time.Time) *logFile {
	return &logFile{out: out, now: now}
}

func (f *logFile) write(stream string, partial bool, content []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf = LogLine{Time: f.now(), Stream: stream, Partial: partial, Content: content}.Append(f.buf[:0])
	_, err := f.out.Write(f.buf)
	return err
}

// lineWriter is the io.Writer for one stream: it cuts what it is given into
// lines and writes each as a CRI record. It is not safe for concurrent use;
// each stream has its own, fed by one copying goroutine.
type lineWriter struct {
	file    *logFile
	stream  string
	maxLine int
	pending []byte // the start of a line whose newline has not come yet
}

func newLineWriter(file *logFile, stream string) *lineWriter {
	return &lineWriter{file: file, stream: stream, maxLine: MaxLogLine}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.pending = append(w.pending, p...)
			break
		}
		w.pending = append(w.pending, p[:i]...)
		p = p[i+1:]
		if err := w.emitLine(); err != nil {
			return n - len(p), err
		}
	}
	for len(w.pending) > w.maxLine {
		if err := w.emitPrefix(w.maxLine); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Close writes what is left of an unterminated last line as a partial
// record, as containerd does when a stream ends without a newline.
func (w *lineWriter) Close() error {
	if len(w.pending) == 0 {
		return nil
	}
	return w.emitPrefix(len(w.pending))
}

// emitLine writes the pending line, cut into partial records if it is too
// long, ending with a full record. A terminal's "\r\n" loses its "\r".
func (w *lineWriter) emitLine() error {
	w.pending = bytes.TrimSuffix(w.pending, []byte("\r"))
	for len(w.pending) > w.maxLine {
		if err := w.emitPrefix(w.maxLine); err != nil {
			return err
		}
	}
	err := w.file.write(w.stream, false, w.pending)
	w.pending = w.pending[:0]
	return err
}

// emitPrefix writes the first n pending bytes as a partial record.
func (w *lineWriter) emitPrefix(n int) error {
	err := w.file.write(w.stream, true, w.pending[:n])
	w.pending = append(w.pending[:0], w.pending[n:]...)
	return err
}

// ReadLog reads a CRI log file and returns its lines with partial records
// joined, for callers that want whole lines (a log server, tests).
func ReadLog(r io.Reader) ([]LogLine, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var (
		lines   []LogLine
		partial = map[string]*LogLine{} // per stream: a line still being joined
		errs    []error
	)
	for _, record := range bytes.SplitAfter(data, []byte("\n")) {
		if len(record) == 0 {
			continue
		}
		l, err := ParseLogLine(record)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if p := partial[l.Stream]; p != nil {
			p.Content = append(p.Content, l.Content...)
			p.Partial = l.Partial
			l = *p
		}
		if l.Partial {
			l.Content = append([]byte(nil), l.Content...)
			partial[l.Stream] = &l
			continue
		}
		delete(partial, l.Stream)
		lines = append(lines, l)
	}
	for _, stream := range []string{Stdout, Stderr} {
		if p := partial[stream]; p != nil {
			lines = append(lines, *p)
		}
	}
	return lines, errors.Join(errs...)
}
