package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/ripple-rt/ripple/backend/protocol"
)

// bigChange returns an INSERT of row id with a 32 KiB column, so that a
// few hundred of them fill the socket buffers of a client that does not read.
func bigChange(id int) string {
	return fmt.Sprintf(`{"op":"INSERT","table":"projects","new":{"id":%d,"blob":"%s"}}`, id, strings.Repeat("x", 32<<10))
}

// stallWriter publishes big changes on projects until a connection's queue
// overflows (a write is stuck on a client that does not read) and returns
// how many it published.
func stallWriter(t *testing.T, s *testServer) int {
	t.Helper()
	shrinkSendBuffers(t, s)
	for n := 1; n <= 5000; n++ {
		s.publish(t, "projects", bigChange(n))
		if gauge(s.metrics.Drops) > 0 {
			return n
		}
	}
	t.Fatal("no queue overflowed after 5000 changes of 32 KiB")
	return 0
}

// shrinkSendBuffers gives every server-side socket a small send buffer, so
// that a client that does not read stalls the writes after a few changes.
func shrinkSendBuffers(t *testing.T, s *testServer) {
	t.Helper()
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	for c := range s.srv.conns {
		if err := c.socket.NetConn().(*writeConn).Conn.(*net.TCPConn).SetWriteBuffer(4096); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSlowConsumerResync: a client that stops reading loses its queued
// changes and gets one resync per affected subscription, and works again
// once it reads; a client that reads is not affected.
func TestSlowConsumerResync(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 0, func(o *Options) { o.SendQueueSize = 4 })
	slow := dial(t, s.url, protocol.Subprotocol, true)
	slow.send(`{"type":"subscribe","sub":"a","channel":"projects"}`)
	slow.send(`{"type":"subscribe","sub":"b","channel":"projects"}`)
	slow.send(`{"type":"subscribe","sub":"quiet","channel":"jobs"}`)
	waitFor(t, "the subscriptions", func() bool { return gauge(s.metrics.Subscriptions) == 3 })

	n := stallWriter(t, s)
	if got := gauge(s.metrics.Resyncs.WithLabelValues(string(protocol.ResyncSlowConsumer))); got != 2 {
		t.Errorf("resyncs{slow_consumer} = %v, want 2 (one per affected subscription)", got)
	}

	slow.startReading()
	for range 3 {
		slow.expect("subscribed")
	}
	// Per subscription: contiguous seqs, broken only right after its one
	// resync. Once both resyncs are in, live changes flow again.
	live := uint64(n + 1)
	last := map[string]uint64{}
	resyncs := map[string]int{}
	afterResync := map[string]bool{}
	for last["a"] != live || last["b"] != live {
		m := slow.nextMsg()
		switch m.Type {
		case "change":
			if m.Seq != last[m.Sub]+1 && !afterResync[m.Sub] {
				t.Fatalf("sub %s: seq %d after %d without a resync", m.Sub, m.Seq, last[m.Sub])
			}
			last[m.Sub], afterResync[m.Sub] = m.Seq, false
		case "resync":
			if m.Reason != protocol.ResyncSlowConsumer || (m.Sub != "a" && m.Sub != "b") {
				t.Fatalf("got %+v, want resync slow_consumer for a or b", m)
			}
			resyncs[m.Sub]++
			afterResync[m.Sub] = true
			if resyncs["a"]+resyncs["b"] == 2 { // the second one: publish a live change
				s.publish(t, "projects", `{"op":"INSERT","table":"projects","new":{"id":0}}`)
			}
		default:
			t.Fatalf("unexpected %+v", m)
		}
	}
	if resyncs["a"] != 1 || resyncs["b"] != 1 {
		t.Errorf("resyncs per subscription %v, want one each for a and b", resyncs)
	}
	slow.sync("usable")
}

// TestSlowConsumerClosed: a client that still does not read after its
// queue overflowed is closed with 4008, while a reading client receives
// every change.
func TestSlowConsumerClosed(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 0, func(o *Options) { o.SendQueueSize = 4 })
	fast := dialV1(t, s.url)
	fast.subscribe("f", "projects", "")
	slow := dial(t, s.url, protocol.Subprotocol, true)
	slow.send(`{"type":"subscribe","sub":"s","channel":"projects"}`)
	waitFor(t, "the subscriptions", func() bool { return gauge(s.metrics.Subscriptions) == 2 })
	shrinkSendBuffers(t, s)

	// Publish in step with the fast client, so that only the slow one can overflow.
	seq := uint64(0)
	publish := func() {
		seq++
		s.publish(t, "projects", bigChange(int(seq)))
		if m := fast.expect("change"); m.Seq != seq {
			t.Fatalf("fast client got seq %d, want %d", m.Seq, seq)
		}
	}
	for gauge(s.metrics.Drops) == 0 {
		if seq > 5000 {
			t.Fatal("the slow client's queue never overflowed")
		}
		publish()
	}
	// The resync is stuck behind the write; overflow once more.
	for range 6 {
		publish()
	}
	slow.startReading()
	if code, reason := slow.closeCode(); code != protocol.ClosePolicy || !strings.Contains(reason, "slow") {
		t.Errorf("slow client closed with %d %q, want %d slow consumer", code, reason, protocol.ClosePolicy)
	}
	publish() // the fast client is unaffected
	waitFor(t, "the slow connection to go", func() bool { return gauge(s.metrics.Connections) == 1 })
}

// TestSlowSeedConsumerClosed: the seed protocol cannot resync, so a seed
// client whose queue overflows is closed with 4008.
func TestSlowSeedConsumerClosed(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 0, func(o *Options) { o.SendQueueSize = 4 })
	slow := dial(t, s.url, "", true)
	slow.send(`{"type":"subscribe","channel":"projects"}`)
	waitFor(t, "the subscription", func() bool { return gauge(s.metrics.Subscriptions) == 1 })
	stallWriter(t, s)
	slow.startReading()
	if code, _ := slow.closeCode(); code != protocol.ClosePolicy {
		t.Errorf("slow seed client closed with %d, want %d", code, protocol.ClosePolicy)
	}
}

// TestReplayOverflowResyncs: a resume whose replay overflows the queue
// (the client does not read) never leaves the client with a silent gap:
// the changes it receives are contiguous until a resync, or the
// connection is closed with 4008 (possibly before the ack was written).
func TestReplayOverflowResyncs(t *testing.T) {
	t.Parallel()
	const published = 300
	s := newTestServer(t, 512, func(o *Options) { o.SendQueueSize = 4 })
	for n := 1; n <= published; n++ {
		s.publish(t, "projects", bigChange(n))
	}
	slow := dial(t, s.url, protocol.Subprotocol, true)
	waitFor(t, "the connection", func() bool { return gauge(s.metrics.Connections) == 1 })
	shrinkSendBuffers(t, s)
	slow.send(fmt.Sprintf(`{"type":"subscribe","sub":"r","channel":"projects","resume":{"epoch":%q,"seq":0}}`, s.hub.Epoch()))
	waitFor(t, "the replay to overflow the queue", func() bool { return gauge(s.metrics.Drops) > 0 })

	slow.startReading()
	acked := false
	for last := uint64(0); last < published; {
		if len(slow.pending) == 0 {
			select {
			case f := <-slow.frames:
				slow.pending = strings.Split(string(f), "\n")
			case err := <-slow.closed:
				if ce, ok := err.(*gws.CloseError); !ok || ce.Code != protocol.ClosePolicy {
					t.Fatalf("closed with %v after seq %d, want a resync or close %d", err, last, protocol.ClosePolicy)
				}
				return
			case <-time.After(waitTimeout):
				t.Fatalf("timed out after seq %d", last)
			}
		}
		m := slow.nextMsg()
		switch {
		case !acked:
			if m.Type != "subscribed" {
				t.Fatalf("got %+v before the ack", m)
			}
			acked = true
			continue
		case m.Type == "resync" && m.Reason == protocol.ResyncSlowConsumer:
			return
		case m.Type != "change":
			t.Fatalf("got %+v during the replay", m)
		case m.Seq != last+1:
			t.Fatalf("replayed seq %d after %d without a resync", m.Seq, last)
		}
		last = m.Seq
	}
}

// blockingHandler is a slog handler whose warnings wait until release is
// closed, like a log writer that stalls.
type blockingHandler struct{ release chan struct{} }

func (h blockingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h blockingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h blockingHandler) WithGroup(string) slog.Handler            { return h }

func (h blockingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		<-h.release
	}
	return nil
}

// TestOverflowLogDoesNotBlockPublisher: the publisher that overflows a
// slow client's queue does not wait for the log line that reports it.
func TestOverflowLogDoesNotBlockPublisher(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	s := newTestServer(t, 0, func(o *Options) {
		o.SendQueueSize = 4
		o.Logger = slog.New(blockingHandler{release})
	})
	t.Cleanup(func() { close(release) }) // before the server's shutdown
	slow := dial(t, s.url, protocol.Subprotocol, true)
	slow.send(`{"type":"subscribe","sub":"a","channel":"projects"}`)
	waitFor(t, "the subscription", func() bool { return gauge(s.metrics.Subscriptions) == 1 })
	shrinkSendBuffers(t, s)

	var change protocol.NotificationPayload
	raw := []byte(bigChange(1))
	if err := json.Unmarshal(raw, &change); err != nil {
		t.Fatal(err)
	}
	overflowed := make(chan bool, 1)
	go func() {
		for range 5000 {
			s.hub.Publish("projects", change, raw)
			if gauge(s.metrics.Drops) > 0 {
				overflowed <- true
				return
			}
		}
		overflowed <- false
	}()
	select {
	case ok := <-overflowed:
		if !ok {
			t.Fatal("no queue overflowed after 5000 changes of 32 KiB")
		}
	case <-time.After(waitTimeout):
		t.Fatal("the publisher is stuck on the log line of a slow client's overflow")
	}
}
