package kubeletserver

import (
	"context"
	"errors"
	"net/http"

	"kubelite/api"
	"kubelite/nodeagent/kubeletserver/remotecommand"
	"kubelite/nodeagent/runtime"
)

// streamRequest is an exec or attach request.
type streamRequest struct {
	namespace, pod, container string
	command                   []string // exec only
	streams                   remotecommand.Options
}

func parseStreamRequest(r *http.Request) (streamRequest, error) {
	q := r.URL.Query()
	req := streamRequest{
		namespace: r.PathValue("namespace"),
		pod:       r.PathValue("pod"),
		container: r.PathValue("container"),
		command:   q["command"],
		streams: remotecommand.Options{
			Stdin:  queryBool(q, "stdin"),
			Stdout: queryBool(q, "stdout"),
			Stderr: queryBool(q, "stderr"),
			TTY:    queryBool(q, "tty"),
		},
	}
	if req.streams.TTY {
		req.streams.Stderr = false // a terminal merges stderr into stdout
	}
	if !req.streams.Stdin && !req.streams.Stdout && !req.streams.Stderr {
		return streamRequest{}, errors.New("you must specify at least 1 of stdin, stdout, stderr")
	}
	return req, nil
}

// serveExec runs a command in a container over a remote command session;
// its exit code is the session's outcome.
func (s *Server) serveExec(w http.ResponseWriter, r *http.Request) {
	req, err := parseStreamRequest(r)
	if err == nil && len(req.command) == 0 {
		err = errors.New("you must specify at least one command for the container")
	}
	if err != nil {
		writeStatus(w, api.NewBadRequest(err.Error()))
		return
	}
	id, _, err := s.locator.ContainerFor(req.namespace, req.pod, req.container)
	if err != nil {
		writeStatus(w, containerNotFound(err))
		return
	}
	s.serveSession(w, r, "exec", req, func(ctx context.Context, streams remotecommand.ProcessStreams, sizes <-chan runtime.TerminalSize) error {
		code, err := s.runtime.Exec(ctx, id, runtime.ExecConfig{
			Cmd:    req.command,
			TTY:    req.streams.TTY,
			Stdin:  streams.Stdin,
			Stdout: streams.Stdout,
			Stderr: streams.Stderr,
			Resize: sizes,
		})
		switch {
		case err != nil:
			return err
		case code != 0:
			return &remotecommand.ExitError{Code: code}
		}
		return nil
	})
}

// serveAttach connects a session to a running container's streams until
// the container exits.
func (s *Server) serveAttach(w http.ResponseWriter, r *http.Request) {
	req, err := parseStreamRequest(r)
	if err != nil {
		writeStatus(w, api.NewBadRequest(err.Error()))
		return
	}
	id, _, err := s.locator.ContainerFor(req.namespace, req.pod, req.container)
	if err != nil {
		writeStatus(w, containerNotFound(err))
		return
	}
	stdinOnce := false
	if locator, ok := s.locator.(StdinOnceLocator); ok {
		stdinOnce = locator.StdinOnceFor(req.namespace, req.pod, req.container)
	}
	s.serveSession(w, r, "attach", req, func(ctx context.Context, streams remotecommand.ProcessStreams, sizes <-chan runtime.TerminalSize) error {
		return s.runtime.Attach(ctx, id, runtime.AttachConfig{
			Stdin:      streams.Stdin,
			CloseStdin: stdinOnce,
			Stdout:     streams.Stdout,
			Stderr:     streams.Stderr,
			Resize:     sizes,
		})
	})
}

// sessionFunc runs the process side of a session: the streams and the
// terminal sizes in the runtime's type.
type sessionFunc func(ctx context.Context, streams remotecommand.ProcessStreams, sizes <-chan runtime.TerminalSize) error

// serveSession upgrades the request to a remote command session and runs
// run in it.
func (s *Server) serveSession(w http.ResponseWriter, r *http.Request, verb string, req streamRequest, run sessionFunc) {
	log := s.log.With("verb", verb, "pod", req.namespace+"/"+req.pod, "container", req.container)
	conn, err := remotecommand.Upgrade(w, r)
	if err != nil {
		var refused *remotecommand.UpgradeError
		if errors.As(err, &refused) {
			writeStatus(w, api.NewStatus(refused.Code, api.ReasonBadRequest, refused.Message))
			return
		}
		log.Warn("could not start a session", "err", err)
		return
	}
	log.Info("session started", "protocol", conn.Protocol(), "tty", req.streams.TTY, "stdin", req.streams.Stdin)
	err = remotecommand.Serve(r.Context(), conn, req.streams, func(ctx context.Context, streams remotecommand.ProcessStreams) error {
		sizes, stopRelay := relaySizes(streams.Resize)
		defer stopRelay()
		return run(ctx, streams, sizes)
	})
	if err != nil {
		log.Info("session ended", "err", err)
		return
	}
	log.Info("session ended")
}

// relaySizes passes terminal sizes on in the runtime's type until stop is
// called, which returns once the relay has stopped.
func relaySizes(in <-chan remotecommand.TerminalSize) (out <-chan runtime.TerminalSize, stop func()) {
	if in == nil {
		return nil, func() {}
	}
	sizes := make(chan runtime.TerminalSize)
	stopping, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		defer close(sizes)
		for {
			var size remotecommand.TerminalSize
			var ok bool
			select {
			case <-stopping:
				return
			case size, ok = <-in:
				if !ok {
					return
				}
			}
			select {
			case <-stopping:
				return
			case sizes <- runtime.TerminalSize(size):
			}
		}
	}()
	return sizes, func() {
		close(stopping)
		<-stopped
	}
}
