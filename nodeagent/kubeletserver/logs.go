package kubeletserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"kubelite/api"
	"kubelite/nodeagent/runtime"
)

// logPollInterval is how often a followed log file is read for new lines.
const logPollInterval = 250 * time.Millisecond

// copyBatchSize is how much log content is gathered before one write.
const copyBatchSize = 32 * 1024

// logOptions are the parameters of /containerLogs.
type logOptions struct {
	follow     bool
	previous   bool
	timestamps bool
	tailLines  int64 // negative: every line
}

func parseLogOptions(q url.Values) (logOptions, error) {
	opts := logOptions{
		follow:     queryBool(q, "follow"),
		previous:   queryBool(q, "previous"),
		timestamps: queryBool(q, "timestamps"),
		tailLines:  -1,
	}
	if v := q.Get("tailLines"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return logOptions{}, fmt.Errorf("tailLines: Invalid value: %q: must be a non-negative integer", v)
		}
		opts.tailLines = n
	}
	return opts, nil
}

// serveContainerLogs writes the content lines of a container's log file,
// the last tailLines of them if asked; with follow, it goes on with new
// lines until the client goes or the container has exited and its last
// output is written.
func (s *Server) serveContainerLogs(w http.ResponseWriter, r *http.Request) {
	pod, container := r.PathValue("pod"), r.PathValue("container")
	opts, err := parseLogOptions(r.URL.Query())
	if err != nil {
		writeStatus(w, api.NewBadRequest(err.Error()))
		return
	}
	id, logPath, st := s.findLog(r.PathValue("namespace"), pod, container, opts.previous)
	if st != nil {
		writeStatus(w, st)
		return
	}
	file, err := os.Open(logPath)
	if err != nil {
		writeStatus(w, api.NewInternalError(fmt.Errorf("opening the log of container %q in pod %q: %w", container, pod, err)))
		return
	}
	defer file.Close()
	start, err := tailStart(file, opts.tailLines)
	if err == nil {
		_, err = file.Seek(start, io.SeekStart)
	}
	if err != nil {
		writeStatus(w, api.NewInternalError(fmt.Errorf("reading the log of container %q in pod %q: %w", container, pod, err)))
		return
	}

	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	copier := &logCopier{in: bufio.NewReader(file), timestamps: opts.timestamps}
	if opts.follow && !opts.previous { // a previous container's log is complete
		err = s.followLog(r.Context(), w, copier, id)
	} else {
		err = copier.copyAvailable(w)
	}
	if err != nil && r.Context().Err() == nil {
		s.log.Warn("log stream ended early", "pod", pod, "container", container, "err", err)
	}
}

// findLog finds the log file of the container, or of its previous
// instance; the Status is the answer when there is none.
func (s *Server) findLog(namespace, pod, container string, previous bool) (id, logPath string, st *api.Status) {
	if !previous {
		id, logPath, err := s.locator.ContainerFor(namespace, pod, container)
		if err != nil {
			return "", "", containerNotFound(err)
		}
		return id, logPath, nil
	}
	noPrevious := api.NewBadRequest(fmt.Sprintf("previous terminated container %q in pod %q not found", container, pod))
	locator, ok := s.locator.(PreviousLogLocator)
	if !ok {
		return "", "", noPrevious
	}
	logPath, err := locator.PreviousLogFor(namespace, pod, container)
	if err != nil {
		return "", "", noPrevious
	}
	return "", logPath, nil
}

// followLog copies the log as it grows until ctx ends or the container
// has exited: the runtime has written its last output by the time Wait
// returns, so one more copy gets everything.
func (s *Server) followLog(ctx context.Context, w http.ResponseWriter, copier *logCopier, id string) error {
	waitCtx, stopWaiting := context.WithCancel(ctx)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		s.runtime.Wait(waitCtx, id) // an error (no such container) means no more output either
	}()
	defer func() {
		stopWaiting()
		<-exited
	}()

	flush := http.NewResponseController(w).Flush
	ticker := time.NewTicker(logPollInterval)
	defer ticker.Stop()
	for {
		if err := copier.copyAvailable(w); err != nil {
			return err
		}
		if err := flush(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-exited:
			if err := copier.copyAvailable(w); err != nil {
				return err
			}
			return flush()
		case <-ticker.C:
		}
	}
}

// logCopier writes the content of a CRI log file's records as lines: a
// partial (P) record's content goes on the same line as the next record's.
// It reads from where in is; a record not ended by its newline yet is kept
// for the next copy.
type logCopier struct {
	in         *bufio.Reader
	timestamps bool
	pending    []byte // the start of a record whose newline has not been read yet
	midLine    bool   // the last record written was partial
}

// copyAvailable writes every whole record the file holds now.
func (c *logCopier) copyAvailable(w io.Writer) error {
	var out []byte
	for {
		chunk, err := c.in.ReadSlice('\n')
		c.pending = append(c.pending, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue // a long record: read on
		}
		if errors.Is(err, io.EOF) {
			break // the rest of the record, if any, is not written yet
		}
		if err != nil {
			return err
		}
		if line, err := runtime.ParseLogLine(c.pending); err == nil {
			out = c.appendLine(out, line)
		} // a record that does not parse (a torn write) is skipped
		c.pending = c.pending[:0]
		if len(out) >= copyBatchSize {
			if _, err := w.Write(out); err != nil {
				return err
			}
			out = out[:0]
		}
	}
	if len(out) == 0 {
		return nil
	}
	_, err := w.Write(out)
	return err
}

// appendLine appends one record's content: a timestamp first when asked
// and at the start of a line, a newline last unless it is partial.
func (c *logCopier) appendLine(out []byte, line runtime.LogLine) []byte {
	if c.timestamps && !c.midLine {
		out = line.Time.UTC().AppendFormat(out, time.RFC3339Nano)
		out = append(out, ' ')
	}
	out = append(out, line.Content...)
	if !line.Partial {
		out = append(out, '\n')
	}
	c.midLine = line.Partial
	return out
}

// tailStart returns the offset at which the last n lines of a CRI log
// begin: just past the full (F) record that ends the line before them.
// Partial records belong to the line their full record ends. A negative n,
// or a log of n lines or fewer, starts at 0.
func tailStart(r io.Reader, n int64) (int64, error) {
	if n < 0 {
		return 0, nil
	}
	lineEnds := lastOffsets{keep: n + 1}
	in := bufio.NewReader(r)
	var offset int64
	for {
		record, err := in.ReadBytes('\n')
		offset += int64(len(record))
		if err == nil {
			if line, perr := runtime.ParseLogLine(record); perr == nil && !line.Partial {
				lineEnds.add(offset)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	start, _ := lineEnds.oldest()
	return start, nil
}

// lastOffsets keeps the last keep offsets added, in a ring that grows only
// as far as offsets come: a huge tailLines costs no memory up front.
type lastOffsets struct {
	keep    int64
	offsets []int64
	next    int // once the ring is full: the oldest offset, replaced next
}

func (l *lastOffsets) add(offset int64) {
	if int64(len(l.offsets)) < l.keep {
		l.offsets = append(l.offsets, offset)
		return
	}
	l.offsets[l.next] = offset
	l.next = (l.next + 1) % len(l.offsets)
}

// oldest is the keep-th last offset added, if that many were.
func (l *lastOffsets) oldest() (int64, bool) {
	if int64(len(l.offsets)) < l.keep {
		return 0, false
	}
	return l.offsets[l.next], true
}
