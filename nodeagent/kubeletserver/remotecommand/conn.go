package remotecommand

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// bufferSize is the size of the WebSocket read and write buffers, and of
// the chunks in which stdin is sent: the size Kubernetes' clients use.
const bufferSize = 32 * 1024

// closeTimeout bounds the closing handshake: how long one end waits for
// the other to answer its close message before it drops the connection.
const closeTimeout = 10 * time.Second

// Conn is one end of a remote command session over a WebSocket. Its write
// methods may be called from several goroutines (a WebSocket allows one
// writer at a time, so they take turns); ReadMessage is for one goroutine.
type Conn struct {
	ws      *websocket.Conn
	writeMu sync.Mutex
}

// NewConn wraps an established WebSocket that negotiated one of Protocols.
func NewConn(ws *websocket.Conn) *Conn { return &Conn{ws: ws} }

// Protocol is the negotiated subprotocol, ProtocolV5 or ProtocolV4.
func (c *Conn) Protocol() string { return c.ws.Subprotocol() }

// Write sends data on a channel as one message.
func (c *Conn) Write(ch Channel, data []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, encodeMessage(ch, data)); err != nil {
		return fmt.Errorf("remote command: writing %s: %w", ch, err)
	}
	return nil
}

// ChannelWriter returns an io.Writer that sends each write on ch.
func (c *Conn) ChannelWriter(ch Channel) io.Writer { return channelWriter{conn: c, ch: ch} }

type channelWriter struct {
	conn *Conn
	ch   Channel
}

func (w channelWriter) Write(p []byte) (int, error) {
	if err := w.conn.Write(w.ch, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteResize sends a terminal size.
func (c *Conn) WriteResize(size TerminalSize) error { return c.Write(Resize, encodeResize(size)) }

// CloseChannel says that this end has no more data for ch (its stdin has
// ended). Only v5 can say it: with v4 it does nothing and returns false.
func (c *Conn) CloseChannel(ch Channel) (bool, error) {
	if c.Protocol() != ProtocolV5 {
		return false, nil
	}
	return true, c.Write(Close, []byte{byte(ch)})
}

// ReadMessage returns the next message's channel and data. A session the
// other end closed normally ends with an error for which IsNormalClose is
// true.
func (c *Conn) ReadMessage() (Channel, []byte, error) {
	for {
		kind, msg, err := c.ws.ReadMessage()
		if err != nil {
			return 0, nil, err
		}
		if kind != websocket.BinaryMessage {
			// The v4 and v5 protocols are binary; text belongs to the
			// base64 variants, which are not spoken here.
			return 0, nil, fmt.Errorf("remote command: unexpected WebSocket message type %d", kind)
		}
		ch, data, err := decodeMessage(msg)
		if err != nil {
			continue // an empty message carries nothing; Kubernetes skips it too
		}
		return ch, data, nil
	}
}

// IsNormalClose reports whether a read error is the other end closing the
// session as the protocol wants: a close message with code 1000.
func IsNormalClose(err error) bool {
	return websocket.IsCloseError(err, websocket.CloseNormalClosure)
}

// SendClose starts the closing handshake: a close message with code 1000.
// The other end answers with its own close message, which ReadMessage
// reports as IsNormalClose.
func (c *Conn) SendClose() error {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	if err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeTimeout)); err != nil &&
		!errors.Is(err, websocket.ErrCloseSent) {
		return fmt.Errorf("remote command: sending close: %w", err)
	}
	return nil
}

// SetReadDeadline bounds the reads still to come, e.g. the wait for the
// other end's answer to SendClose.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

// Close drops the connection (without a closing handshake). Reads and
// writes in progress fail.
func (c *Conn) Close() error { return c.ws.Close() }

// UpgradeError is why a request could not become a remote command session.
// Nothing has been written to the response: the caller answers with Code.
type UpgradeError struct {
	Code    int
	Message string
}

func (e *UpgradeError) Error() string { return e.Message }

// Upgrade turns an HTTP request into the server end of a session. A request
// that is not a WebSocket upgrade offering one of Protocols is refused with
// an *UpgradeError before anything is written, so that the caller answers
// it in its own format.
//
// The Origin header is not checked: browsers cannot send the bearer token
// that every caller of the node agent's API must present with a WebSocket
// handshake, so cross-site requests are refused by authentication already.
func Upgrade(w http.ResponseWriter, r *http.Request) (*Conn, error) {
	if !websocket.IsWebSocketUpgrade(r) {
		return nil, &UpgradeError{Code: http.StatusBadRequest, Message: fmt.Sprintf(
			"this endpoint streams over a WebSocket (subprotocol %s or %s); SPDY and plain requests are not supported",
			ProtocolV5, ProtocolV4)}
	}
	if !slices.ContainsFunc(websocket.Subprotocols(r), func(p string) bool { return slices.Contains(Protocols(), p) }) {
		return nil, &UpgradeError{Code: http.StatusBadRequest, Message: fmt.Sprintf(
			"no supported remote command subprotocol offered (got %q); this server speaks %s and %s",
			r.Header.Get("Sec-WebSocket-Protocol"), ProtocolV5, ProtocolV4)}
	}
	upgrader := websocket.Upgrader{
		ReadBufferSize:  bufferSize,
		WriteBufferSize: bufferSize,
		Subprotocols:    Protocols(),
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	ws, err := upgrader.Upgrade(w, r, nil) // on failure it has answered the request
	if err != nil {
		return nil, fmt.Errorf("remote command: upgrading to a WebSocket: %w", err)
	}
	// A client's messages are stdin chunks and resizes: far below this.
	ws.SetReadLimit(4 * bufferSize)
	return NewConn(ws), nil
}
