package gateway

import (
	"net"
	"time"
)

// closeGrace is how long a closed connection keeps reading, for the
// client to close its side, before the socket is closed for good.
const closeGrace = 5 * time.Second

// writeConn is a client's connection with a graceful Close, and every
// write bounded by the server's WriteTimeout without a deadline change per
// write: before a write it re-arms the write deadline, to 1.5 × timeout
// from now, only when less than timeout remains of the armed one. So each
// write, the gateway's or one gws makes on its own (the echo of a client's
// close frame), gets between timeout and 1.5 × timeout; a connection whose
// writes are idle keeps a deadline that passed, which is harmless since
// the next write re-arms it first; and the runtime's timer is moved once
// per half a timeout of writing instead of twice per write (set, then
// clear). After a write failed (timed out), every later one fails at once
// with the same error: gws's close frame does not wait another timeout on
// a client that does not read.
//
// gws makes every write under its connection's lock, and sets deadlines
// only during the handshake, before any other write, so armed and err need
// no lock of their own.
type writeConn struct {
	net.Conn
	timeout time.Duration
	armed   time.Time // the write deadline set; zero: none
	err     error     // the first write error
}

func (c *writeConn) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	now := time.Now()
	if c.armed.Sub(now) < c.timeout {
		until := now.Add(c.timeout + c.timeout/2)
		if err := c.Conn.SetWriteDeadline(until); err != nil {
			return 0, err
		}
		c.armed = until
	}
	n, err := c.Conn.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

// SetDeadline sets the read and write deadlines, and records the latter.
func (c *writeConn) SetDeadline(t time.Time) error {
	c.armed = t
	return c.Conn.SetDeadline(t)
}

// SetWriteDeadline sets the write deadline and records it.
func (c *writeConn) SetWriteDeadline(t time.Time) error {
	c.armed = t
	return c.Conn.SetWriteDeadline(t)
}

// Close ends the connection gracefully: it sends a FIN after what was
// written, and gives the client closeGrace to close its side while gws's
// read loop goes on reading (and discarding) what it sent. Closing a
// socket at once would answer the client's unread messages with a reset,
// which destroys what the client had not yet read: the close frame and
// the errors before it (a client flooding the gateway would learn nothing
// of why it was closed). The connection's OnClose, at the read loop's end,
// closes the socket for good ([writeConn.release]).
func (c *writeConn) Close() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		return c.Conn.SetReadDeadline(time.Now().Add(closeGrace))
	}
	return c.Conn.Close()
}

// release closes the socket for good.
func (c *writeConn) release() { _ = c.Conn.Close() }
