// Package remotecommand is Kubernetes' remote command protocol over a
// WebSocket, versions v5.channel.k8s.io and v4.channel.k8s.io: how exec and
// attach carry a process's stdin, stdout, stderr, terminal size and exit
// status on one connection. The node agent serves it (Serve), the API
// server relays it untouched, and kubectl-lite — or kubectl itself — speaks
// it (Stream).
//
// Every message is one binary WebSocket frame whose first byte names a
// channel; the rest is that channel's data:
//
//	  0  stdin   client → server  bytes for the process's stdin
//	  1  stdout  server → client  the process's stdout (with a TTY: everything)
//	  2  stderr  server → client  the process's stderr
//	  3  error   server → client  a Status JSON, once, when the process is done
//	  4  resize  client → server  {"Width":80,"Height":24}
//	255  close   client → server  v5 only: [255, channel] — that channel ended
//
// The error channel's Status says how it went: "Success", or "Failure" with
// reason NonZeroExitCode and the exit code as a cause of type ExitCode, or
// another failure's message. The server then closes the WebSocket normally,
// which ends the session. Version 5 adds the close message, so that a client
// can say that its stdin has ended (`echo hi | kubectl exec -i ... -- cat`);
// with version 4 the process's stdin stays open until the session ends.
package remotecommand

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"kubelite/api"
)

// The subprotocols spoken, as negotiated in Sec-WebSocket-Protocol.
const (
	ProtocolV5 = "v5.channel.k8s.io"
	ProtocolV4 = "v4.channel.k8s.io"
)

// Protocols returns the subprotocols spoken, the preferred one first.
func Protocols() []string { return []string{ProtocolV5, ProtocolV4} }

// Channel is the first byte of every message: which stream it belongs to.
type Channel byte

// The channels of the protocol.
const (
	Stdin  Channel = 0
	Stdout Channel = 1
	Stderr Channel = 2
	Error  Channel = 3
	Resize Channel = 4
	// Close (v5) carries one byte, the channel that has ended.
	Close Channel = 255
)

func (c Channel) String() string {
	switch c {
	case Stdin:
		return "stdin"
	case Stdout:
		return "stdout"
	case Stderr:
		return "stderr"
	case Error:
		return "error"
	case Resize:
		return "resize"
	case Close:
		return "close"
	}
	return "channel " + strconv.Itoa(int(c))
}

// TerminalSize is a terminal's size in characters, as the resize channel
// carries it: {"Width":80,"Height":24}.
type TerminalSize struct {
	Width  uint16
	Height uint16
}

// encodeMessage prefixes data with its channel.
func encodeMessage(ch Channel, data []byte) []byte {
	msg := make([]byte, 1+len(data))
	msg[0] = byte(ch)
	copy(msg[1:], data)
	return msg
}

// decodeMessage splits a message into its channel and data.
func decodeMessage(msg []byte) (Channel, []byte, error) {
	if len(msg) == 0 {
		return 0, nil, errors.New("remote command: empty message (no channel byte)")
	}
	return Channel(msg[0]), msg[1:], nil
}

// encodeResize is a resize message's data.
func encodeResize(size TerminalSize) []byte {
	data, _ := json.Marshal(size) // two integers cannot fail to encode
	return data
}

// decodeResize reads a resize message's data.
func decodeResize(data []byte) (TerminalSize, error) {
	var size TerminalSize
	if err := json.Unmarshal(data, &size); err != nil {
		return TerminalSize{}, fmt.Errorf("remote command: resize message %q: %w", data, err)
	}
	return size, nil
}

// Exit status as Kubernetes reports it on the error channel.
const (
	// ReasonNonZeroExitCode is the reason of a command that ran and failed.
	ReasonNonZeroExitCode api.StatusReason = "NonZeroExitCode"
	// CauseExitCode is the cause type whose message is the exit code.
	CauseExitCode = "ExitCode"
)

// ExitError is the outcome of a session whose command ran and exited with
// a code other than 0.
type ExitError struct {
	Code int
}

// Error is kubectl's wording, which kubectl prints as it is.
func (e *ExitError) Error() string {
	return fmt.Sprintf("command terminated with exit code %d", e.Code)
}

// StatusFor is the Status the error channel carries for a session's
// outcome: nil is success, an *ExitError a non-zero exit code, anything
// else a failure with err's message.
func StatusFor(err error) *api.Status {
	var exit *ExitError
	switch {
	case err == nil:
		return &api.Status{TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "Status"}, Status: "Success"}
	case errors.As(err, &exit):
		st := api.NewStatus(http.StatusInternalServerError, ReasonNonZeroExitCode,
			fmt.Sprintf("command terminated with non-zero exit code: exit code %d", exit.Code))
		st.Details = &api.StatusDetails{Causes: []api.StatusCause{{Type: CauseExitCode, Message: strconv.Itoa(exit.Code)}}}
		return st
	default:
		return api.NewInternalError(err)
	}
}

// errorFromStatus turns what the error channel carried back into the
// session's outcome: nil for success (or for nothing at all, as Kubernetes'
// clients read an empty error channel), an *ExitError, or the *api.Status
// of another failure.
func errorFromStatus(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	var st api.Status
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("remote command: error channel holds no Status (%q): %w", data, err)
	}
	switch {
	case st.Status == "Success":
		return nil
	case st.Status != "Failure":
		return fmt.Errorf("remote command: error channel holds a Status %q, neither Success nor Failure", st.Status)
	case st.Reason == ReasonNonZeroExitCode:
		if st.Details != nil {
			for _, cause := range st.Details.Causes {
				if cause.Type != CauseExitCode {
					continue
				}
				code, err := strconv.ParseUint(cause.Message, 10, 8)
				if err != nil {
					return fmt.Errorf("remote command: exit code %q is not a number from 0 to 255", cause.Message)
				}
				return &ExitError{Code: int(code)}
			}
		}
		return fmt.Errorf("remote command: a %s Status without an %s cause", ReasonNonZeroExitCode, CauseExitCode)
	default:
		return &st
	}
}
