package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/ripple-rt/ripple/backend/protocol"
)

// frame is one message the test client received: a decoded v1 message (or
// bare seed payload) plus its raw bytes.
type frame struct {
	Type    string                       `json:"type"`
	Sub     string                       `json:"sub"`
	Channel string                       `json:"channel"`
	Epoch   string                       `json:"epoch"`
	Seq     uint64                       `json:"seq"`
	Change  protocol.NotificationPayload `json:"change"`
	Reason  string                       `json:"reason"`
	Code    string                       `json:"code"`
	Message string                       `json:"message"`
	Ref     string                       `json:"ref"`
	raw     []byte
}

// client is a WebSocket test client that collects what the gateway sends.
type client struct {
	gws.BuiltinEventHandler
	t      *testing.T
	conn   *gws.Conn
	frames chan frame
	closed chan error
}

// dial connects to url offering subprotocol (none when empty) and closes
// the connection when the test ends.
func dial(t *testing.T, url, subprotocol string) *client {
	t.Helper()
	c := &client{t: t, frames: make(chan frame, 1024), closed: make(chan error, 1)}
	header := http.Header{}
	if subprotocol != "" {
		header.Set("Sec-WebSocket-Protocol", subprotocol)
	}
	conn, _, err := gws.NewClient(c, &gws.ClientOption{Addr: url, RequestHeader: header})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c.conn = conn
	go conn.ReadLoop()
	t.Cleanup(func() { conn.NetConn().Close() })
	return c
}

func (c *client) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	for _, line := range bytes.Split(m.Bytes(), []byte{'\n'}) {
		var f frame
		if err := json.Unmarshal(line, &f); err != nil {
			c.t.Errorf("client got invalid JSON %q: %v", line, err)
			continue
		}
		f.raw = append([]byte(nil), line...)
		c.frames <- f
	}
}

func (c *client) OnClose(_ *gws.Conn, err error) { c.closed <- err }

// send writes v as one JSON text frame.
func (c *client) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.conn.WriteMessage(gws.OpcodeText, b); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// next returns the next frame or fails the test after a deadline. Frames
// that arrived before a close are returned before the close is reported
// (the read loop queues them first, but select may pick either).
func (c *client) next() frame {
	c.t.Helper()
	select {
	case f := <-c.frames:
		return f
	case err := <-c.closed:
		if len(c.frames) == 0 {
			c.t.Fatalf("connection closed while waiting for a message: %v", err)
		}
		c.closed <- err // hand the close back for waitClose
		return <-c.frames
	case <-time.After(10 * time.Second):
		c.t.Fatal("no message within 10s")
	}
	return frame{}
}

// expect returns the next frame and fails unless its type is typ.
func (c *client) expect(typ string) frame {
	c.t.Helper()
	f := c.next()
	if f.Type != typ {
		c.t.Fatalf("got %s, want a %s message", f.raw, typ)
	}
	return f
}

// subscribe subscribes and waits for the ack.
func (c *client) subscribe(sub, channel string, filter *protocol.Filter) frame {
	c.t.Helper()
	c.send(protocol.SubscribeMessage{Type: "subscribe", Sub: sub, Channel: channel, Filter: filter})
	ack := c.expect("subscribed")
	if ack.Sub != sub || ack.Channel != channel {
		c.t.Fatalf("ack %s does not match sub %s on %s", ack.raw, sub, channel)
	}
	return ack
}

// roundTrip sends a ping and waits for its pong, proving the connection works.
func (c *client) roundTrip(ref string) {
	c.t.Helper()
	c.send(protocol.PingMessage{Type: "ping", Ref: ref})
	if f := c.expect("pong"); f.Ref != ref {
		c.t.Fatalf("pong ref %q, want %q", f.Ref, ref)
	}
}

// waitClose waits for the connection to close and returns the close error.
func (c *client) waitClose() error {
	c.t.Helper()
	for {
		select {
		case err := <-c.closed:
			return err
		case <-c.frames:
		case <-time.After(10 * time.Second):
			c.t.Fatal("connection not closed within 10s")
		}
	}
}
