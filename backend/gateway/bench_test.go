package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/lxzan/gws"

	"github.com/ripple-rt/ripple/backend/hub"
	"github.com/ripple-rt/ripple/backend/protocol"
)

var (
	benchSubscribe = []byte(`{"type":"subscribe","sub":"jobs-7","channel":"extraction_jobs","filter":{"column":"project_id","op":"eq","value":7},"resume":{"epoch":"9f2c1a7e5b3d4c60","seq":1042}}`)
	benchPayload   = []byte(`{"op":"UPDATE","table":"extraction_jobs","schema":"public","new":{"id":42,"project_id":7,"status":"running","progress":0.5,"updated_at":"2026-11-26T23:00:00Z"},"old":{"id":42,"progress":0.25}}`)
)

func BenchmarkDecodeClientSubscribe(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchSubscribe)))
	for b.Loop() {
		if _, err := protocol.DecodeClient(benchSubscribe, DefaultMaxMessageSize); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeClientPing(b *testing.B) {
	ping := []byte(`{"type":"ping","ref":"17"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := protocol.DecodeClient(ping, DefaultMaxMessageSize); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeNotification(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPayload)))
	for b.Loop() {
		var c protocol.NotificationPayload
		dec := json.NewDecoder(bytes.NewReader(benchPayload))
		dec.UseNumber()
		if err := dec.Decode(&c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeChange compares encoding a change message with
// encoding/json per subscriber to what the gateway does: the shared pieces
// once, then per subscriber only the slices handed to Writev.
func BenchmarkEncodeChange(b *testing.B) {
	var c protocol.NotificationPayload
	if err := json.Unmarshal(benchPayload, &c); err != nil {
		b.Fatal(err)
	}
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(protocol.ChangeMessage{Type: "change", Sub: "jobs-7", Seq: 1042, Change: c}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("shared-pieces", func(b *testing.B) {
		h, err := hub.New(hub.Options{})
		if err != nil {
			b.Fatal(err)
		}
		var got hub.Message
		sub, err := hub.NewSubscription(subscriberFunc(func(m hub.Message) { got = m }), "jobs-7", "extraction_jobs", nil)
		if err != nil {
			b.Fatal(err)
		}
		h.Subscribe(sub, nil)
		h.Publish("extraction_jobs", c, benchPayload)
		parts := make([][]byte, 0, 4)
		b.ReportAllocs()
		for b.Loop() {
			parts = got.AppendParts(parts[:0])
		}
	})
}

type subscriberFunc func(hub.Message)

func (f subscriberFunc) Enqueue(m hub.Message) { f(m) }

// countingClient counts the v1 messages it receives without decoding
// them, and wakes a waiter when the count reaches its target.
type countingClient struct {
	gws.BuiltinEventHandler
	received atomic.Int64
	target   atomic.Int64
	reached  chan struct{} // buffered 1: a wakeup, to be checked
	// lost is set by a resync or a close: some change will never come.
	lost atomic.Bool
}

func newCountingClient() *countingClient { return &countingClient{reached: make(chan struct{}, 1)} }

var resyncType = []byte(`"type":"resync"`)

func (c *countingClient) OnMessage(_ *gws.Conn, msg *gws.Message) {
	frame := msg.Bytes()
	n := int64(bytes.Count(frame, newline)) + 1
	if bytes.Contains(frame, resyncType) {
		c.lost.Store(true)
	}
	msg.Close()
	now := c.received.Add(n)
	if t := c.target.Load(); now-n < t && now >= t || c.lost.Load() {
		c.wake()
	}
}

func (c *countingClient) OnClose(*gws.Conn, error) {
	c.lost.Store(true)
	c.wake()
}

func (c *countingClient) wake() {
	select {
	case c.reached <- struct{}{}:
	default:
	}
}

// waitUntil waits until the client has received target messages. It
// fails b instead of waiting forever when the client was sent a resync
// (the gateway dropped changes) or closed.
func (c *countingClient) waitUntil(b *testing.B, target int64) {
	b.Helper()
	c.target.Store(target)
	for c.received.Load() < target {
		if c.lost.Load() {
			b.Fatalf("a client was resynced or closed after %d of %d messages: the gateway dropped changes", c.received.Load(), target)
		}
		<-c.reached
	}
}

// BenchmarkBroadcastWebSocket publishes changes into the hub and waits
// until every one of n real WebSocket clients on loopback has received all
// of them: the gateway's delivery throughput, client reading included (on
// the same CPUs). The publisher keeps at most half a send queue ahead of
// the slowest client, so that no queue overflows however the CPUs are
// shared (an overflow drops changes, which would then never arrive).
func BenchmarkBroadcastWebSocket(b *testing.B) {
	const queueSize = 1 << 16
	const window, step = queueSize / 2, queueSize / 8
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			h, err := hub.New(hub.Options{})
			if err != nil {
				b.Fatal(err)
			}
			srv, err := New(Options{Hub: h, Channels: []string{"extraction_jobs"}, SendQueueSize: queueSize})
			if err != nil {
				b.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			hs := &http.Server{Handler: srv.Handler()}
			go func() { _ = hs.Serve(ln) }()
			defer func() {
				_ = srv.Shutdown(b.Context())
				_ = hs.Close()
			}()
			url := "ws://" + ln.Addr().String() + "/ws"
			clients := make([]*countingClient, n)
			for i := range clients {
				c := newCountingClient()
				socket, _, err := gws.NewClient(c, &gws.ClientOption{Addr: url, RequestHeader: http.Header{"Sec-WebSocket-Protocol": {protocol.Subprotocol}}})
				if err != nil {
					b.Fatal(err)
				}
				defer socket.NetConn().Close()
				go socket.ReadLoop()
				if err := socket.WriteString(`{"type":"subscribe","sub":"s","channel":"extraction_jobs"}`); err != nil {
					b.Fatal(err)
				}
				clients[i] = c
			}
			for _, c := range clients {
				c.waitUntil(b, 1) // the ack
			}
			var change protocol.NotificationPayload
			if err := json.Unmarshal(benchPayload, &change); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if i >= window && i%step == 0 {
					for _, c := range clients {
						c.waitUntil(b, int64(1+i-window))
					}
				}
				h.Publish("extraction_jobs", change, benchPayload)
			}
			for _, c := range clients {
				c.waitUntil(b, int64(1+b.N))
			}
			b.ReportMetric(float64(b.N)*float64(n)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
