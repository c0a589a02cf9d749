package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ripple-rt/ripple/backend/hub"
	"github.com/ripple-rt/ripple/backend/metrics"
	"github.com/ripple-rt/ripple/backend/protocol"
)

// waitTimeout bounds every wait of these tests.
const waitTimeout = 10 * time.Second

// testServer is a gateway on a loopback httptest server.
type testServer struct {
	srv     *Server
	hub     *hub.Hub
	metrics *metrics.Metrics
	http    *httptest.Server
	url     string // ws://…/ws
}

func newTestServer(t testing.TB, ringSize int, configure func(*Options)) *testServer {
	t.Helper()
	h, err := hub.New(hub.Options{RingSize: ringSize})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	opts := Options{Hub: h, Channels: []string{"projects", "jobs"}, Metrics: m}
	if configure != nil {
		configure(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		ts.Close()
	})
	return &testServer{srv: srv, hub: h, metrics: m, http: ts, url: "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"}
}

// publish publishes a change built from JSON, the way the listener does.
func (s *testServer) publish(t testing.TB, channel, payload string) {
	t.Helper()
	var c protocol.NotificationPayload
	dec := json.NewDecoder(strings.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("decode %s: %v", payload, err)
	}
	s.hub.Publish(channel, c, []byte(payload))
}

// waitFor waits until cond holds, failing the test after waitTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func gauge(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

// client is a test WebSocket client built on gws's client.
type client struct {
	t       testing.TB
	socket  *gws.Conn
	frames  chan []byte
	closed  chan error
	pending []string // messages of the last frame not yet taken
	// ignorePings makes the client leave server pings unanswered.
	ignorePings atomic.Bool
	pings       atomic.Int32
}

func (c *client) OnOpen(*gws.Conn) {}

func (c *client) OnClose(_ *gws.Conn, err error) { c.closed <- err }

func (c *client) OnPing(socket *gws.Conn, payload []byte) {
	c.pings.Add(1)
	if !c.ignorePings.Load() {
		_ = socket.WritePong(payload)
	}
}

func (c *client) OnPong(*gws.Conn, []byte) {}

func (c *client) OnMessage(_ *gws.Conn, msg *gws.Message) {
	c.frames <- bytes.Clone(msg.Bytes())
	msg.Close()
}

// dial connects a client offering subprotocol (none when empty) and starts
// reading unless stalled is set (the client then never reads until
// startReading).
func dial(t testing.TB, url, subprotocol string, stalled bool) *client {
	t.Helper()
	header := http.Header{}
	if subprotocol != "" {
		header.Set("Sec-WebSocket-Protocol", subprotocol)
	}
	c := &client{t: t, frames: make(chan []byte, 100000), closed: make(chan error, 1)}
	var d net.Dialer
	if stalled {
		// A small receive buffer, so that a client that does not read
		// stalls the server's writes after a few changes.
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
		}
	}
	netConn, err := d.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/ws"))
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	socket, _, err := gws.NewClientFromConn(c, &gws.ClientOption{Addr: url, RequestHeader: header}, netConn)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c.socket = socket
	t.Cleanup(func() { _ = socket.NetConn().Close() })
	if !stalled {
		go socket.ReadLoop()
	}
	return c
}

func dialV1(t testing.TB, url string) *client { return dial(t, url, protocol.Subprotocol, false) }

func (c *client) startReading() { go c.socket.ReadLoop() }

func (c *client) send(msg string) {
	c.t.Helper()
	if err := c.socket.WriteString(msg); err != nil {
		c.t.Fatalf("send %s: %v", msg, err)
	}
}

// frame returns the next frame as received.
func (c *client) frame() []byte {
	c.t.Helper()
	select {
	case f := <-c.frames:
		return f
	case err := <-c.closed:
		// Frames read before the close are queued before it: select may
		// have picked the close although one waits.
		select {
		case f := <-c.frames:
			c.closed <- err
			return f
		default:
		}
		c.t.Fatalf("connection closed while waiting for a frame: %v", err)
	case <-time.After(waitTimeout):
		c.t.Fatal("timed out waiting for a frame")
	}
	return nil
}

// next returns the next v1 message, splitting frames on newlines.
func (c *client) next() string {
	c.t.Helper()
	if len(c.pending) == 0 {
		c.pending = strings.Split(string(c.frame()), "\n")
	}
	m := c.pending[0]
	c.pending = c.pending[1:]
	return m
}

// serverMsg is the union of the fields of server messages.
type serverMsg struct {
	Type    string                       `json:"type"`
	Sub     string                       `json:"sub"`
	Seq     uint64                       `json:"seq"`
	Channel string                       `json:"channel"`
	Epoch   string                       `json:"epoch"`
	Reason  protocol.ResyncReason        `json:"reason"`
	Code    protocol.ErrorCode           `json:"code"`
	Message string                       `json:"message"`
	Ref     string                       `json:"ref"`
	Change  protocol.NotificationPayload `json:"change"`
}

func (c *client) nextMsg() serverMsg {
	c.t.Helper()
	raw := c.next()
	var m serverMsg
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		c.t.Fatalf("server sent invalid JSON %q: %v", raw, err)
	}
	return m
}

// expect returns the next message and fails unless it has type typ.
func (c *client) expect(typ string) serverMsg {
	c.t.Helper()
	m := c.nextMsg()
	if m.Type != typ {
		c.t.Fatalf("got %+v, want a %s message", m, typ)
	}
	return m
}

// subscribe subscribes and returns the ack.
func (c *client) subscribe(sub, channel, extra string) serverMsg {
	c.t.Helper()
	c.send(`{"type":"subscribe","sub":"` + sub + `","channel":"` + channel + `"` + extra + `}`)
	ack := c.expect("subscribed")
	if ack.Sub != sub || ack.Channel != channel {
		c.t.Fatalf("ack %+v for sub %s on %s", ack, sub, channel)
	}
	return ack
}

// sync sends an app-level ping and expects its pong as the next message:
// whatever the server queued before handling the ping has been taken.
func (c *client) sync(ref string) {
	c.t.Helper()
	c.send(`{"type":"ping","ref":"` + ref + `"}`)
	if m := c.expect("pong"); m.Ref != ref {
		c.t.Fatalf("pong ref %q, want %q", m.Ref, ref)
	}
}

// closeCode waits for the connection to close and returns the close code
// the server sent (0 when it sent none).
func (c *client) closeCode() (uint16, string) {
	c.t.Helper()
	for {
		select {
		case <-c.frames: // skip what came before the close
		case err := <-c.closed:
			if ce, ok := err.(*gws.CloseError); ok {
				return ce.Code, string(ce.Reason)
			}
			return 0, ""
		case <-time.After(waitTimeout):
			c.t.Fatal("timed out waiting for the connection to close")
		}
	}
}
