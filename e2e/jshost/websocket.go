package jshost

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lxzan/gws"
)

// handshakeTimeout bounds a WebSocket dial and handshake.
const handshakeTimeout = 5 * time.Second

// socketSet tracks the Go connections behind the JavaScript WebSocket
// objects. Its methods are safe from any goroutine.
type socketSet struct {
	mu   sync.Mutex
	byID map[int64]*socket
	gate chan struct{} // non-nil while dials are paused; closed to resume
	held int           // dials waiting on gate
}

// socket is one JavaScript WebSocket's connection. conn is nil until the
// handshake completes.
type socket struct {
	id     int64
	conn   *gws.Conn
	closed bool   // close requested by JavaScript
	code   uint16 // the close code JavaScript asked for
	reason string
}

func (s *socketSet) init() { s.byID = map[int64]*socket{} }

// send writes a text message; a socket that is gone is ignored, as a
// browser ignores sends after close.
func (s *socketSet) send(id int64, data string) {
	s.mu.Lock()
	sk := s.byID[id]
	s.mu.Unlock()
	if sk == nil || sk.conn == nil {
		return
	}
	// The connection's write queue keeps sends and a later close in order.
	sk.conn.WriteAsync(gws.OpcodeText, []byte(data), nil)
}

// close starts the closing handshake; before the connection is up it makes
// the dialer close it as soon as it is.
func (s *socketSet) close(id int64, code uint16, reason string) {
	s.mu.Lock()
	sk := s.byID[id]
	if sk == nil || sk.closed {
		s.mu.Unlock()
		return
	}
	sk.closed, sk.code, sk.reason = true, code, reason
	conn := sk.conn
	s.mu.Unlock()
	if conn != nil {
		conn.Async(func() { _ = conn.WriteClose(code, []byte(reason)) })
	}
}

// cutAll closes the TCP connection of every open socket without a closing
// handshake, as a network failure would, and reports how many it cut.
func (s *socketSet) cutAll() int {
	s.mu.Lock()
	var conns []*gws.Conn
	for _, sk := range s.byID {
		if sk.conn != nil {
			conns = append(conns, sk.conn)
		}
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.NetConn().Close()
	}
	return len(conns)
}

// CutSockets closes the TCP connection under every open WebSocket without a
// closing handshake, as a network failure would: each one's onclose runs
// with code 1006 and wasClean false. It reports how many it cut.
func (h *Host) CutSockets() int { return h.sockets.cutAll() }

// PauseDials holds every WebSocket connection attempt made from now on
// before it dials, until [Host.ResumeDials]: a test can keep a client
// disconnected, deterministically, while it changes the world.
func (h *Host) PauseDials() {
	h.sockets.mu.Lock()
	defer h.sockets.mu.Unlock()
	if h.sockets.gate == nil {
		h.sockets.gate = make(chan struct{})
	}
}

// ResumeDials lets held and future connection attempts dial.
func (h *Host) ResumeDials() {
	h.sockets.mu.Lock()
	defer h.sockets.mu.Unlock()
	if h.sockets.gate != nil {
		close(h.sockets.gate)
		h.sockets.gate = nil
	}
}

// HeldDials reports how many connection attempts wait for [Host.ResumeDials].
func (h *Host) HeldDials() int {
	h.sockets.mu.Lock()
	defer h.sockets.mu.Unlock()
	return h.sockets.held
}

// OpenSockets reports how many WebSockets have a live connection.
func (h *Host) OpenSockets() int {
	h.sockets.mu.Lock()
	defer h.sockets.mu.Unlock()
	n := 0
	for _, sk := range h.sockets.byID {
		if sk.conn != nil {
			n++
		}
	}
	return n
}

// openSocket dials url on a worker goroutine; the outcome reaches JavaScript
// as open/message/close events posted to the runtime's goroutine.
func (h *Host) openSocket(id int64, url string, protocols []string) {
	sk := &socket{id: id}
	h.sockets.mu.Lock()
	h.sockets.byID[id] = sk
	h.sockets.mu.Unlock()

	header := http.Header{}
	for k, v := range h.opts.Header {
		header[k] = append([]string(nil), v...)
	}
	if len(protocols) > 0 {
		header.Set("Sec-WebSocket-Protocol", strings.Join(protocols, ", "))
	}
	gate := h.holdDial()
	h.spawn(func() {
		if !h.waitDialGate(gate) {
			return
		}
		conn, _, err := gws.NewClient(&socketEvents{h: h, sk: sk}, &gws.ClientOption{
			Addr:             url,
			RequestHeader:    header,
			HandshakeTimeout: handshakeTimeout,
		})
		if err != nil {
			h.forgetSocket(id)
			h.tb.Logf("jshost: WebSocket %s: %v", url, err)
			h.post(func() { h.runJS("ws", fmt.Sprintf("__jshost_ws_event(%d, %q)", id, "error")) })
			h.post(func() { h.runJS("ws", fmt.Sprintf("__jshost_ws_event(%d, %q, 1006, \"\", false)", id, "close")) })
			return
		}
		h.sockets.mu.Lock()
		sk.conn = conn
		closed, code, reason := sk.closed, sk.code, sk.reason
		h.sockets.mu.Unlock()
		if closed {
			_ = conn.WriteClose(code, []byte(reason))
		}
		select {
		case <-h.bg.Done():
			_ = conn.NetConn().Close() // the host closed while dialing
		default:
		}
		conn.ReadLoop()
	})
}

// holdDial returns the gate a new dial must wait on (nil: dial at once),
// counting the dial as held.
func (h *Host) holdDial() chan struct{} {
	h.sockets.mu.Lock()
	defer h.sockets.mu.Unlock()
	if h.sockets.gate != nil {
		h.sockets.held++
	}
	return h.sockets.gate
}

// waitDialGate blocks until gate opens (nil: at once); it reports false
// when the host closed meanwhile.
func (h *Host) waitDialGate(gate chan struct{}) bool {
	if gate == nil {
		return true
	}
	defer func() {
		h.sockets.mu.Lock()
		h.sockets.held--
		h.sockets.mu.Unlock()
	}()
	select {
	case <-gate:
		return true
	case <-h.bg.Done():
		return false
	}
}

func (h *Host) forgetSocket(id int64) {
	h.sockets.mu.Lock()
	delete(h.sockets.byID, id)
	h.sockets.mu.Unlock()
}

// socketEvents forwards one connection's events to JavaScript, in order.
type socketEvents struct {
	gws.BuiltinEventHandler
	h  *Host
	sk *socket
}

func (e *socketEvents) OnOpen(c *gws.Conn) {
	id, proto := e.sk.id, c.SubProtocol()
	e.h.post(func() { e.h.runJS("ws", fmt.Sprintf("__jshost_ws_event(%d, %q, %s)", id, "open", quote(proto))) })
}

func (e *socketEvents) OnMessage(_ *gws.Conn, m *gws.Message) {
	data := m.Data.String()
	_ = m.Close()
	id := e.sk.id
	e.h.post(func() { e.h.runJS("ws", fmt.Sprintf("__jshost_ws_event(%d, %q, %s)", id, "message", quote(data))) })
}

func (e *socketEvents) OnClose(_ *gws.Conn, err error) {
	h, sk := e.h, e.sk
	h.sockets.mu.Lock()
	delete(h.sockets.byID, sk.id)
	local, code, reason := sk.closed, sk.code, sk.reason
	h.sockets.mu.Unlock()

	clean := true
	var ce *gws.CloseError
	switch {
	case local:
	case errors.As(err, &ce):
		code, reason = ce.Code, string(ce.Reason)
		if code == 0 {
			code = 1005 // a close frame without a status code
		}
	default:
		code, reason, clean = 1006, "", false
	}
	h.post(func() {
		h.runJS("ws", fmt.Sprintf("__jshost_ws_event(%d, %q, %d, %s, %t)", sk.id, "close", code, quote(reason), clean))
	})
}
