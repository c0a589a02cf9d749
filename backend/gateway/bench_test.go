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

// countingClient counts the v1 messages it receives without decoding them.
type countingClient struct {
	gws.BuiltinEventHandler
	received atomic.Int64
	done     chan struct{}
	want     atomic.Int64
}

func (c *countingClient) OnMessage(_ *gws.Conn, msg *gws.Message) {
	n := int64(bytes.Count(msg.Bytes(), newline)) + 1
	msg.Close()
	if c.received.Add(n) == c.want.Load() {
		c.done <- struct{}{}
	}
}

// BenchmarkBroadcastWebSocket publishes changes into the hub and waits
// until every one of n real WebSocket clients on loopback has received all
// of them: the gateway's delivery throughput, client reading included (on
// the same CPUs).
func BenchmarkBroadcastWebSocket(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			h, err := hub.New(hub.Options{})
			if err != nil {
				b.Fatal(err)
			}
			srv, err := New(Options{Hub: h, Channels: []string{"extraction_jobs"}, SendQueueSize: 1 << 16})
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
				c := &countingClient{done: make(chan struct{}, 1)}
				c.want.Store(1) // the ack
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
				<-c.done // the ack
			}
			var change protocol.NotificationPayload
			if err := json.Unmarshal(benchPayload, &change); err != nil {
				b.Fatal(err)
			}
			for _, c := range clients {
				c.want.Store(1 + int64(b.N))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				h.Publish("extraction_jobs", change, benchPayload)
			}
			for _, c := range clients {
				if c.received.Load() < c.want.Load() {
					<-c.done
				}
			}
			b.ReportMetric(float64(b.N)*float64(n)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
