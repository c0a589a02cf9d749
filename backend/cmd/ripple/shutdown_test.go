package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/ripple-rt/ripple/backend/protocol"
)

// TestRollingRestart stops one of two `ripple serve` processes with SIGTERM
// while a client is connected: the client gets close 1001, the process
// exits 0 within RIPPLE_SHUTDOWN_TIMEOUT, and the client, reconnecting to
// the other process with its old position, is told to resync
// (epoch_changed) and then receives new changes there.
func TestRollingRestart(t *testing.T) {
	t.Parallel()
	const shutdownTimeout = 5 * time.Second
	pg, db := itemsDatabase(t)
	ctx := context.Background()
	insert := func(id int) {
		t.Helper()
		if _, err := db.Exec(ctx, `INSERT INTO items VALUES ($1, 'row')`, id); err != nil {
			t.Fatal(err)
		}
	}
	gateway := func() (*proc, string) {
		t.Helper()
		return serve(t, pg.URL, "RIPPLE_AUTH=none", "RIPPLE_SHUTDOWN_TIMEOUT="+shutdownTimeout.String())
	}
	first, firstURL := gateway()
	second, secondURL := gateway()

	c := dialWS(t, firstURL)
	c.send(t, protocol.SubscribeMessage{Type: "subscribe", Sub: "s", Channel: "items"})
	ack := c.expect(t, "subscribed")
	insert(1)
	if m := c.expect(t, "change"); m.Seq != 1 {
		t.Fatalf("got change %d, want 1", m.Seq)
	}

	stopped := time.Now()
	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var ce *gws.CloseError
	if err := c.waitClose(t); !errors.As(err, &ce) || ce.Code != protocol.CloseGoingAway {
		t.Fatalf("client closed with %v, want close %d", err, protocol.CloseGoingAway)
	}
	select {
	case err := <-first.done:
		if err != nil {
			t.Fatalf("ripple serve exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(shutdownTimeout):
		t.Fatalf("ripple serve did not exit within RIPPLE_SHUTDOWN_TIMEOUT=%v of SIGTERM", shutdownTimeout)
	}
	exited := time.Since(stopped)

	insert(2) // made while the client is away
	c = dialWS(t, secondURL)
	c.send(t, protocol.SubscribeMessage{Type: "subscribe", Sub: "s", Channel: "items",
		Resume: &protocol.Position{Epoch: ack.Epoch, Seq: 1}})
	if m := c.expect(t, "subscribed"); m.Epoch == ack.Epoch {
		t.Fatalf("the second gateway has the first one's epoch %s", m.Epoch)
	}
	if m := c.expect(t, "resync"); m.Reason != string(protocol.ResyncEpoch) {
		t.Fatalf("resync reason %q, want %s", m.Reason, protocol.ResyncEpoch)
	}
	insert(3)
	// Rows 1 and 2 may come live too, in order, if the second gateway
	// heard of them only after the subscribe.
	for last := float64(0); last != 3; {
		m := c.expect(t, "change")
		id, _ := m.Change.New["id"].(float64)
		if id <= last || id > 3 {
			t.Fatalf("after the resync: got change of row %v after row %v, want rows up to 3 in order", id, last)
		}
		last = id
	}
	second.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-second.done; err != nil {
		t.Fatalf("second ripple serve exited with %v after SIGTERM", err)
	}
	t.Logf("SIGTERM to exit: %v with one connected client", exited.Round(time.Millisecond))
}

// TestShutdownIsBoundedWithAStalledClient: a client that stopped reading
// (its socket buffers full, so not even a close frame gets through) does
// not hold a SIGTERM up beyond RIPPLE_SHUTDOWN_TIMEOUT.
func TestShutdownIsBoundedWithAStalledClient(t *testing.T) {
	t.Parallel()
	const shutdownTimeout = 2 * time.Second
	pg, db := itemsDatabase(t)
	ctx := context.Background()
	// A send queue large enough that the stalled client is never dropped for overflowing.
	p, wsURL := serve(t, pg.URL, "RIPPLE_AUTH=none", "RIPPLE_SEND_QUEUE=100000", "RIPPLE_SHUTDOWN_TIMEOUT="+shutdownTimeout.String())

	reader := dialWS(t, wsURL)
	reader.send(t, protocol.SubscribeMessage{Type: "subscribe", Sub: "s", Channel: "items"})
	reader.expect(t, "subscribed")
	stalled := dialWS(t, wsURL)
	stalled.send(t, protocol.SubscribeMessage{Type: "subscribe", Sub: "s", Channel: "items"})
	stalled.expect(t, "subscribed") // and never read from again

	// 20 MB of changes: more than the stalled client's socket buffers hold.
	const changes = 10_000
	if _, err := db.Exec(ctx, `INSERT INTO items SELECT g, repeat('x', 2000) FROM generate_series(1, $1) AS g`, changes); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= changes; n++ {
		if m := reader.expect(t, "change"); m.Seq != uint64(n) {
			t.Fatalf("reader got change %d, want %d", m.Seq, n)
		}
	}

	stopped := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var ce *gws.CloseError
	if err := reader.waitClose(t); !errors.As(err, &ce) || ce.Code != protocol.CloseGoingAway {
		t.Fatalf("reading client closed with %v, want close %d", err, protocol.CloseGoingAway)
	}
	var exitErr error
	select {
	case exitErr = <-p.done:
	case <-time.After(shutdownTimeout + time.Second):
		t.Fatalf("ripple serve still running %v after SIGTERM (RIPPLE_SHUTDOWN_TIMEOUT=%v)", shutdownTimeout+time.Second, shutdownTimeout)
	}
	t.Logf("SIGTERM to exit with a stalled client: %v", time.Since(stopped).Round(time.Millisecond))
	if exitErr != nil {
		t.Fatalf("ripple serve exited with %v after cutting off a stalled client; a bounded shutdown is a clean one", exitErr)
	}
}

// wsMessage is one v1 message a test client received.
type wsMessage struct {
	Type   string                       `json:"type"`
	Sub    string                       `json:"sub"`
	Epoch  string                       `json:"epoch"`
	Seq    uint64                       `json:"seq"`
	Reason string                       `json:"reason"`
	Change protocol.NotificationPayload `json:"change"`
	raw    []byte
}

// wsClient is a protocol v1 test client.
type wsClient struct {
	gws.BuiltinEventHandler
	conn   *gws.Conn
	msgs   chan wsMessage
	closed chan error
	done   chan struct{} // closed when the test ends
}

func dialWS(t *testing.T, url string) *wsClient {
	t.Helper()
	c := &wsClient{msgs: make(chan wsMessage, 100), closed: make(chan error, 1), done: make(chan struct{})}
	conn, _, err := gws.NewClient(c, &gws.ClientOption{Addr: url,
		RequestHeader: http.Header{"Sec-Websocket-Protocol": {protocol.Subprotocol}}})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c.conn = conn
	go conn.ReadLoop()
	t.Cleanup(func() {
		close(c.done)
		conn.NetConn().Close()
	})
	return c
}

func (c *wsClient) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	for _, line := range bytes.Split(m.Bytes(), []byte{'\n'}) {
		msg := wsMessage{raw: append([]byte(nil), line...)}
		if err := json.Unmarshal(line, &msg); err != nil {
			msg.Type = "invalid JSON"
		}
		// A client the test does not read from stops reading its socket.
		select {
		case c.msgs <- msg:
		case <-c.done:
			return
		}
	}
}

func (c *wsClient) OnClose(_ *gws.Conn, err error) { c.closed <- err }

func (c *wsClient) send(t *testing.T, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.conn.WriteMessage(gws.OpcodeText, b); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// expect returns the next message and fails unless its type is typ.
func (c *wsClient) expect(t *testing.T, typ string) wsMessage {
	t.Helper()
	select {
	case m := <-c.msgs:
		if m.Type != typ {
			t.Fatalf("got %s, want a %s message", m.raw, typ)
		}
		return m
	case err := <-c.closed:
		t.Fatalf("connection closed while waiting for %s: %v", typ, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s message within 10s", typ)
	}
	return wsMessage{}
}

// waitClose returns the error the connection closed with.
func (c *wsClient) waitClose(t *testing.T) error {
	t.Helper()
	for {
		select {
		case err := <-c.closed:
			return err
		case <-c.msgs:
		case <-time.After(10 * time.Second):
			t.Fatal("connection not closed within 10s")
		}
	}
}

// freeAddr returns a local address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
