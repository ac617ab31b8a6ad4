package remotecommand

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Options say which streams a session carries, as the request's stdin,
// stdout, stderr and tty parameters ask. With a TTY there is no stderr:
// the terminal merges it into stdout.
type Options struct {
	Stdin, Stdout, Stderr, TTY bool
}

// ProcessStreams are the process's side of a session; only the streams
// that Options asked for are set.
type ProcessStreams struct {
	// Stdin reads what the client sends until io.EOF: a v5 client has
	// closed its stdin, or the client has gone. Once run has returned,
	// a read still blocked fails with io.ErrClosedPipe.
	Stdin io.Reader
	// Stdout and Stderr send to the client; each write is one message.
	Stdout, Stderr io.Writer
	// Resize delivers the client's terminal sizes (TTY only). A reader
	// that falls behind gets the latest size; it closes when the client
	// has gone.
	Resize <-chan TerminalSize
}

// Serve runs the server end of a session on conn. It gives run the
// client's stdin and terminal sizes and writers to the client's stdout and
// stderr; when run returns, it sends run's outcome on the error channel
// (see StatusFor: nil, an *ExitError, or a failure) and closes the session.
// The context given to run ends early when the client goes away, so that
// the process can be stopped. Serve returns once everything it started has
// stopped; its error is about the connection, for the logs.
func Serve(ctx context.Context, conn *Conn, opts Options, run func(ctx context.Context, streams ProcessStreams) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	in := newServerInput(opts)
	streams := ProcessStreams{}
	if in.stdin != nil {
		streams.Stdin = in.stdin
	}
	if in.resize != nil {
		streams.Resize = in.resize
	}
	if opts.Stdout {
		streams.Stdout = conn.ChannelWriter(Stdout)
	}
	if opts.Stderr && !opts.TTY {
		streams.Stderr = conn.ChannelWriter(Stderr)
	}

	clientDone := make(chan error, 1)
	go func() {
		err := in.demux(conn)
		cancel() // the client has gone, or has answered our close
		clientDone <- err
	}()

	outcome := run(ctx, streams)
	in.stop()

	select {
	case err := <-clientDone:
		// The client went away first: there is nobody to tell the outcome.
		conn.Close()
		return err
	default:
	}
	var errs []error
	if err := conn.Write(Error, statusJSON(outcome)); err != nil {
		errs = append(errs, err)
	}
	if err := conn.SendClose(); err != nil {
		errs = append(errs, err)
	}
	// Wait for the client's answer to the close, but not forever.
	conn.SetReadDeadline(time.Now().Add(closeTimeout))
	errs = append(errs, <-clientDone)
	conn.Close()
	return errors.Join(errs...)
}

func statusJSON(outcome error) []byte {
	data, err := json.Marshal(StatusFor(outcome))
	if err != nil {
		panic(fmt.Sprintf("remote command: encoding a Status: %v", err)) // plain fields cannot fail
	}
	return data
}

// serverInput demultiplexes what a client sends into the process's stdin
// and terminal sizes.
type serverInput struct {
	stdin       *io.PipeReader
	stdinWriter *io.PipeWriter
	resize      chan TerminalSize
}

func newServerInput(opts Options) *serverInput {
	in := &serverInput{}
	if opts.Stdin {
		in.stdin, in.stdinWriter = io.Pipe()
	}
	if opts.TTY {
		in.resize = make(chan TerminalSize, 1)
	}
	return in
}

// demux reads the client's messages until the session ends. It is the
// only reader of conn and the only sender on resize, which it closes.
func (in *serverInput) demux(conn *Conn) error {
	defer func() {
		if in.stdinWriter != nil {
			in.stdinWriter.Close()
		}
		if in.resize != nil {
			close(in.resize)
		}
	}()
	for {
		ch, data, err := conn.ReadMessage()
		if IsNormalClose(err) {
			return nil
		}
		if err != nil {
			return err
		}
		switch ch {
		case Stdin:
			if in.stdinWriter != nil {
				// Blocks until the process reads it. Fails once the
				// process is done (stop): the data is dropped.
				in.stdinWriter.Write(data)
			}
		case Resize:
			if size, err := decodeResize(data); err == nil && in.resize != nil {
				in.offerSize(size)
			}
		case Close:
			if len(data) == 1 && Channel(data[0]) == Stdin && in.stdinWriter != nil {
				in.stdinWriter.Close() // the process reads io.EOF
			}
		}
		// Other channels are the server's to send; a client's are ignored.
	}
}

// offerSize hands size to the process without blocking the reading of the
// connection: a size the process has not taken yet is replaced.
func (in *serverInput) offerSize(size TerminalSize) {
	for {
		select {
		case in.resize <- size:
			return
		default:
		}
		select {
		case <-in.resize: // stale
		default:
		}
	}
}

// stop ends the process's side once run has returned: a read of Stdin
// still blocked in a copy returns, and stdin the client sends from now on
// is dropped.
func (in *serverInput) stop() {
	if in.stdin != nil {
		in.stdin.Close()
	}
}
