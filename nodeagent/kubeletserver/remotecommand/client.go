package remotecommand

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/gorilla/websocket"

	"kubelite/api"
)

// Dial opens the client end of a session: a WebSocket to url (wss://...)
// offering Protocols, with header (the Authorization) sent along. A
// refused handshake returns the server's *api.Status when it sent one,
// as the API server and the node agent do.
func Dial(ctx context.Context, url string, tlsConfig *tls.Config, header http.Header) (*Conn, error) {
	if tlsConfig != nil {
		// A WebSocket handshake is HTTP/1.1: a tls.Config shared with an
		// http.Transport may offer h2, which the server would pick.
		tlsConfig = tlsConfig.Clone()
		tlsConfig.NextProtos = []string{"http/1.1"}
	}
	dialer := websocket.Dialer{
		TLSClientConfig: tlsConfig,
		Subprotocols:    Protocols(),
		ReadBufferSize:  bufferSize,
		WriteBufferSize: bufferSize,
		Proxy:           http.ProxyFromEnvironment,
	}
	ws, resp, err := dialer.DialContext(ctx, url, header)
	if err == nil {
		if !slices.Contains(Protocols(), ws.Subprotocol()) {
			ws.Close()
			return nil, fmt.Errorf("remote command: the server at %s agreed to no subprotocol (offered %s)", url, strings.Join(Protocols(), ", "))
		}
		return NewConn(ws), nil
	}
	if resp == nil || !errors.Is(err, websocket.ErrBadHandshake) {
		return nil, fmt.Errorf("remote command: connecting to %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body) // gorilla keeps the first KiB for us
	var st api.Status
	if json.Unmarshal(body, &st) == nil && st.Kind == "Status" {
		if st.Code == 0 {
			st.Code = int32(resp.StatusCode)
		}
		return nil, &st
	}
	return nil, fmt.Errorf("remote command: unable to upgrade connection: %s: %s", resp.Status, strings.TrimSpace(string(body)))
}

// ClientStreams are the local side of a session, as kubectl has them: its
// own stdin, stdout and stderr, and the sizes of its terminal. Nil streams
// are not sent or not wanted.
type ClientStreams struct {
	// Stdin is sent to the process; when it ends, a v5 session tells the
	// process (its stdin reads EOF).
	Stdin io.Reader
	// Stdout and Stderr receive the process's output.
	Stdout, Stderr io.Writer
	// Resize carries the local terminal's sizes, the first one at once.
	Resize <-chan TerminalSize
}

// Stream runs the client end of a session until the server ends it or ctx
// ends, and returns the outcome the server reported: nil when the command
// succeeded, an *ExitError with its exit code, or the failure (an
// *api.Status when the server sent one).
//
// The output has been written when Stream returns. Sending Stdin goes on
// in a goroutine until Stdin's Read returns: the caller owns Stdin and
// ends it (a terminal's read ends with the next key press or the process);
// what it reads after the session is dropped.
func Stream(ctx context.Context, conn *Conn, local ClientStreams) error {
	stopClosing := context.AfterFunc(ctx, func() { conn.Close() }) // unblocks the reads below
	defer stopClosing()

	sessionDone := make(chan struct{})
	var senders sync.WaitGroup
	defer func() {
		close(sessionDone)
		conn.Close() // a sender blocked in a write returns
		senders.Wait()
	}()
	if local.Resize != nil {
		senders.Add(1)
		go func() {
			defer senders.Done()
			sendSizes(conn, local.Resize, sessionDone)
		}()
	}
	if local.Stdin != nil {
		go sendStdin(conn, local.Stdin) // not waited for: see above
	}

	var status []byte
	for {
		ch, data, err := conn.ReadMessage()
		switch {
		case IsNormalClose(err):
			return errorFromStatus(status)
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil && status != nil:
			return errorFromStatus(status) // only the goodbye was lost
		case err != nil:
			return fmt.Errorf("remote command: the connection broke before the command finished: %w", err)
		}
		switch ch {
		case Stdout:
			err = write(local.Stdout, data)
		case Stderr:
			err = write(local.Stderr, data)
		case Error:
			status = append(status, data...)
		}
		if err != nil {
			return fmt.Errorf("remote command: writing the %s of the command: %w", ch, err)
		}
	}
}

func write(w io.Writer, data []byte) error {
	if w == nil {
		return nil
	}
	_, err := w.Write(data)
	return err
}

// sendStdin sends r until it ends, then says so (v5).
func sendStdin(conn *Conn, r io.Reader) {
	buf := make([]byte, bufferSize)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if werr := conn.Write(Stdin, buf[:n]); werr != nil {
				return // the session is over
			}
		}
		if err != nil {
			conn.CloseChannel(Stdin)
			return
		}
	}
}

// sendSizes sends terminal sizes until sizes closes or the session ends.
func sendSizes(conn *Conn, sizes <-chan TerminalSize, sessionDone <-chan struct{}) {
	for {
		select {
		case <-sessionDone:
			return
		case size, ok := <-sizes:
			if !ok {
				return
			}
			if err := conn.WriteResize(size); err != nil {
				return
			}
		}
	}
}
