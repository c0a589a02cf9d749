package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lxzan/gws"

	"github.com/ripple-rt/ripple/backend/protocol"
)

func runTail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tail", "[flags] <channel>…", "Subscribe to channels and print every change as one JSON line:\n"+
		`{"channel":…,"seq":…,"change":{"op":…,"table":…,"new":…}}`+"\nReconnects and resumes on its own; resyncs are reported on stderr.", stderr)
	wsURL := fs.String("url", "ws://127.0.0.1:8080/ws", "the gateway's WebSocket URL")
	filter := fs.String("filter", "", "only rows where column=value (e.g. project_id=7)")
	token := fs.String("token", os.Getenv("RIPPLE_TOKEN"), "JWT sent in an auth message (env RIPPLE_TOKEN); not needed when the gateway runs with RIPPLE_AUTH=none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("tail: name at least one channel")
	}
	t := &tailer{url: *wsURL, token: *token, channels: fs.Args(), out: stdout, errOut: stderr, pos: map[string]*protocol.Position{}}
	if *filter != "" {
		col, val, ok := strings.Cut(*filter, "=")
		if !ok || col == "" {
			return fmt.Errorf("tail: --filter wants column=value, got %q", *filter)
		}
		t.filter = &protocol.Filter{Column: col, Op: protocol.FilterEq, Value: filterValue(val)}
	}
	return t.run(ctx)
}

// filterValue reads a number as a number and anything else as a string.
func filterValue(v string) any {
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		return n
	}
	return v
}

// tailer prints the changes of a set of channels, reconnecting and resuming.
type tailer struct {
	gws.BuiltinEventHandler
	url      string
	token    string
	channels []string
	filter   *protocol.Filter
	out      io.Writer
	errOut   io.Writer

	mu     sync.Mutex
	pos    map[string]*protocol.Position // last applied position per channel
	acked  bool                          // the current session got a subscribed ack
	closed chan error
}

func (t *tailer) run(ctx context.Context) error {
	const firstWait = 250 * time.Millisecond
	backoff := firstWait
	for {
		err := t.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		t.mu.Lock()
		if t.acked { // the session worked: start the waits over
			backoff, t.acked = firstWait, false
		}
		t.mu.Unlock()
		fmt.Fprintf(t.errOut, "tail: %v; reconnecting in %v\n", err, backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// session runs one connection until it fails or ctx ends.
func (t *tailer) session(ctx context.Context) error {
	t.closed = make(chan error, 1)
	conn, _, err := gws.NewClient(t, &gws.ClientOption{
		Addr:          t.url,
		RequestHeader: http.Header{"Sec-WebSocket-Protocol": []string{protocol.Subprotocol}},
	})
	if err != nil {
		return fmt.Errorf("connect %s: %w", t.url, err)
	}
	go conn.ReadLoop()
	t.mu.Lock()
	var msgs []any
	if t.token != "" {
		msgs = append(msgs, protocol.AuthMessage{Type: "auth", Token: t.token})
	}
	for _, ch := range t.channels {
		msgs = append(msgs, protocol.SubscribeMessage{Type: "subscribe", Sub: ch, Channel: ch, Filter: t.filter, Resume: t.pos[ch]})
	}
	for _, msg := range msgs {
		b, _ := json.Marshal(msg)
		if err := conn.WriteMessage(gws.OpcodeText, b); err != nil {
			t.mu.Unlock()
			conn.NetConn().Close()
			<-t.closed // this connection's OnClose, before the next session replaces t.closed
			return err
		}
	}
	t.mu.Unlock()
	select {
	case <-ctx.Done():
		conn.WriteClose(1000, nil)
		return ctx.Err()
	case err := <-t.closed:
		return err
	}
}

// OnClose implements gws.Event.
func (t *tailer) OnClose(_ *gws.Conn, err error) {
	t.closed <- fmt.Errorf("connection closed: %w", err)
}

// OnMessage implements gws.Event: it prints changes and reports the rest.
func (t *tailer) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	for _, line := range bytes.Split(m.Bytes(), []byte{'\n'}) {
		t.handle(line)
	}
}

func (t *tailer) handle(line []byte) {
	var msg struct {
		Type    string          `json:"type"`
		Sub     string          `json:"sub"`
		Channel string          `json:"channel"`
		Epoch   string          `json:"epoch"`
		Seq     uint64          `json:"seq"`
		Change  json.RawMessage `json:"change"`
		Reason  string          `json:"reason"`
		Code    string          `json:"code"`
		Message string          `json:"message"`
	}
	if err := json.Unmarshal(line, &msg); err != nil {
		fmt.Fprintf(t.errOut, "tail: unreadable message: %v\n", err)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch msg.Type {
	case "subscribed":
		t.acked = true
		if p := t.pos[msg.Sub]; p == nil || p.Epoch != msg.Epoch {
			t.pos[msg.Sub] = &protocol.Position{Epoch: msg.Epoch, Seq: msg.Seq}
		}
		fmt.Fprintf(t.errOut, "tail: subscribed to %s at seq %d\n", msg.Channel, msg.Seq)
	case "change":
		if p := t.pos[msg.Sub]; p != nil {
			p.Seq = msg.Seq
		}
		channel, _ := json.Marshal(msg.Sub)
		fmt.Fprintf(t.out, "{\"channel\":%s,\"seq\":%d,\"change\":%s}\n", channel, msg.Seq, msg.Change)
	case "resync":
		fmt.Fprintf(t.errOut, "tail: %s: changes may have been missed (%s)\n", msg.Sub, msg.Reason)
	case "error":
		fmt.Fprintf(t.errOut, "tail: %s: %s (%s)\n", msg.Sub, msg.Message, msg.Code)
	}
}
