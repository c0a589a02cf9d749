package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/ripple-rt/ripple/backend/protocol"
)

// sourceIPs is how many loopback addresses (127.0.0.1 … 127.0.0.N) client
// sockets are spread over, so that 10,000 connections to one port never run
// short of ephemeral ports.
const sourceIPs = 8

// dialConcurrency bounds how many subscribers connect at once.
const dialConcurrency = 64

// tinyReceiveBuffer is the socket receive buffer of a subscriber that will
// stop reading: small, so that the gateway's writes to it soon block, as
// they do to a client whose network went away.
const tinyReceiveBuffer = 4096

// tinyBufferKey marks a dial context whose socket gets tinyReceiveBuffer.
type tinyBufferKey struct{}

// newHTTPClient returns the HTTP client the WebSocket dials go through: it
// binds each connection to the next loopback source address.
func newHTTPClient() *http.Client {
	var next atomic.Uint32
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		n := next.Add(1)
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+n%sourceIPs))}}
		if ctx.Value(tinyBufferKey{}) != nil {
			d.Control = func(_, _ string, c syscall.RawConn) error {
				var serr error
				err := c.Control(func(fd uintptr) {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, tinyReceiveBuffer)
				})
				return errors.Join(err, serr)
			}
		}
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: &http.Transport{DialContext: dial}}
}

// subscriber is one WebSocket client (github.com/coder/websocket, not gws)
// with one v1 subscription. Its reader goroutine owns every field below
// ready; read them only after done is closed.
type subscriber struct {
	conn  *websocket.Conn
	ready chan struct{} // closed when the subscribed ack arrived
	done  chan struct{} // closed when the reader goroutine returned
	count atomic.Int64  // distinct changes received, for progress
	stall atomic.Bool   // stop reading (a client that vanished without closing)

	tracker
	frames  int // WebSocket messages read that carried changes (each may batch several)
	resyncs int
	errs    []string
	err     error // why reading stopped, unless the run ended it
}

// tracker checks one stream of changes: duplicates by row id, seq breaks
// (each seq must be the previous one + 1), and latency from the row's
// sent_at to arrival.
type tracker struct {
	seen     []uint64 // bit per row id
	last     uint64   // highest seq seen
	received int
	dups     int
	breaks   int
	lat      []int64 // nanoseconds, one per distinct change
	lastAt   int64   // unix nanos of the last distinct change
}

func newTracker(rows int) tracker {
	return tracker{seen: make([]uint64, rows/64+1), lat: make([]int64, 0, rows)}
}

// record notes change seq carrying row id sent at sentAt, arrived at now.
// It reports whether the row was new.
func (t *tracker) record(seq uint64, id, sentAt, now int64) bool {
	if seq != 0 {
		if seq != t.last+1 {
			t.breaks++
		}
		t.last = max(t.last, seq)
	}
	if id < 0 {
		id = 0
	}
	w := int(id / 64)
	for w >= len(t.seen) {
		t.seen = append(t.seen, 0)
	}
	bit := uint64(1) << (id % 64)
	if t.seen[w]&bit != 0 {
		t.dups++
		return false
	}
	t.seen[w] |= bit
	t.received++
	t.lat = append(t.lat, now-sentAt)
	t.lastAt = now
	return true
}

// openSubscribers connects n subscribers to channel on the gateway at
// wsURL and waits for every subscription's ack. Each tracks rows changes.
// Subscribers for which tiny reports true get a tiny socket receive buffer.
func openSubscribers(ctx context.Context, client *http.Client, wsURL, channel string, n, rows int, readCtx context.Context, tiny func(i int) bool) ([]*subscriber, error) {
	subs := make([]*subscriber, n)
	errs := make([]error, n)
	sem := make(chan struct{}, dialConcurrency)
	var wg sync.WaitGroup
	for i := range subs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dialCtx := ctx
			if tiny != nil && tiny(i) {
				dialCtx = context.WithValue(ctx, tinyBufferKey{}, true)
			}
			subs[i], errs[i] = openSubscriber(dialCtx, client, wsURL, channel, rows, readCtx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeSubscribers(subs)
		return nil, err
	}
	return subs, nil
}

func openSubscriber(ctx context.Context, client *http.Client, wsURL, channel string, rows int, readCtx context.Context) (*subscriber, error) {
	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(dialCtx, wsURL, &websocket.DialOptions{
		HTTPClient:      client,
		Subprotocols:    []string{protocol.Subprotocol},
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", wsURL, err)
	}
	conn.SetReadLimit(-1)
	s := &subscriber{conn: conn, ready: make(chan struct{}), done: make(chan struct{}), tracker: newTracker(rows)}
	msg, _ := json.Marshal(protocol.SubscribeMessage{Type: "subscribe", Sub: "s", Channel: channel})
	if err := conn.Write(dialCtx, websocket.MessageText, msg); err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	go s.read(readCtx)
	select {
	case <-s.ready:
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("subscribe to %s: connection ended before the ack: %v %v", channel, s.err, s.errs)
	case <-dialCtx.Done():
		conn.CloseNow()
		<-s.done
		return nil, fmt.Errorf("subscribe to %s: no ack: %w", channel, dialCtx.Err())
	}
}

// closeSubscribers closes every connection and waits for the readers.
func closeSubscribers(subs []*subscriber) {
	for _, s := range subs {
		if s != nil {
			s.conn.CloseNow()
		}
	}
	for _, s := range subs {
		if s != nil {
			<-s.done
		}
	}
}

func (s *subscriber) read(ctx context.Context) {
	defer close(s.done)
	var buf bytes.Buffer
	for {
		if s.stall.Load() {
			<-ctx.Done()
			return
		}
		_, r, err := s.conn.Reader(ctx)
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			if ctx.Err() == nil {
				s.err = err
			}
			return
		}
		now := time.Now().UnixNano()
		before := s.received
		data := buf.Bytes()
		for len(data) > 0 {
			line := data
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				line, data = data[:i], data[i+1:]
			} else {
				data = nil
			}
			s.handle(line, now)
		}
		if s.received > before {
			s.frames++
		}
	}
}

// handle processes one v1 message.
func (s *subscriber) handle(line []byte, now int64) {
	if seq, id, sentAt, ok := parseChangeFast(line); ok {
		if s.record(seq, id, sentAt, now) {
			s.count.Add(1)
		}
		return
	}
	var m struct {
		Type    string `json:"type"`
		Seq     uint64 `json:"seq"`
		Reason  string `json:"reason"`
		Code    string `json:"code"`
		Message string `json:"message"`
		Change  struct {
			New benchRow `json:"new"`
		} `json:"change"`
	}
	if err := json.Unmarshal(line, &m); err != nil {
		s.errs = append(s.errs, fmt.Sprintf("invalid JSON %.80q", line))
		return
	}
	switch m.Type {
	case "subscribed":
		select {
		case <-s.ready:
			s.errs = append(s.errs, "a second subscribed ack")
		default:
			s.last = m.Seq
			close(s.ready)
		}
	case "change":
		if s.record(m.Seq, m.Change.New.ID, m.Change.New.SentAt, now) {
			s.count.Add(1)
		}
	case "resync":
		s.resyncs++
	case "error":
		s.errs = append(s.errs, m.Code+": "+m.Message)
	}
}

// benchRow is the part of a benchmark table's row that the tool reads.
type benchRow struct {
	ID     int64 `json:"id"`
	SentAt int64 `json:"sent_at"`
}

var (
	changePrefix = []byte(`{"type":"change","seq":`)
	newIDKey     = []byte(`"new":{"id":`)
	sentAtKey    = []byte(`"sent_at":`)
)

// parseChangeFast reads seq, row id and sent_at from a change message laid
// out as the gateway writes it today, without decoding the JSON; ok is
// false for anything else, which then goes through encoding/json. The
// client must not be the bottleneck of a fan-out benchmark.
func parseChangeFast(line []byte) (seq uint64, id, sentAt int64, ok bool) {
	if !bytes.HasPrefix(line, changePrefix) {
		return 0, 0, 0, false
	}
	rest := line[len(changePrefix):]
	seq, rest, ok = leadingUint(rest)
	if !ok || len(rest) == 0 || rest[0] != ',' {
		return 0, 0, 0, false
	}
	i := bytes.Index(rest, newIDKey)
	if i < 0 {
		return 0, 0, 0, false
	}
	rest = rest[i+len(newIDKey):]
	u, rest, ok := leadingUint(rest)
	if !ok || len(rest) == 0 || rest[0] != ',' {
		return 0, 0, 0, false
	}
	id = int64(u)
	i = bytes.Index(rest, sentAtKey)
	if i < 0 {
		return 0, 0, 0, false
	}
	u, rest, ok = leadingUint(rest[i+len(sentAtKey):])
	if !ok || len(rest) == 0 || (rest[0] != ',' && rest[0] != '}') {
		return 0, 0, 0, false
	}
	return seq, id, int64(u), true
}

// leadingUint parses the decimal digits (at most 19) at the start of b.
func leadingUint(b []byte) (uint64, []byte, bool) {
	var v uint64
	n := 0
	for n < len(b) && n < 19 && b[n] >= '0' && b[n] <= '9' {
		v = v*10 + uint64(b[n]-'0')
		n++
	}
	return v, b[n:], n > 0
}
