package gateway

import (
	"io"
	"testing"

	"github.com/ripple-rt/ripple/backend/hub"
	"github.com/ripple-rt/ripple/backend/protocol"
)

// TestSendPathAllocations proves that delivering a change costs no
// allocation per subscriber in the gateway: queueing is an append into a
// reused slice, and a batched write hands the shared bytes to gws as they
// are (one allocation per write, gws boxing the slices, whatever the batch;
// the write's scratch slice comes from a pool).
func TestSendPathAllocations(t *testing.T) {
	s := newTestServer(t, 0, func(o *Options) { o.SendQueueSize = 1 << 14 })
	c := dial(t, s.url, protocol.Subprotocol, true)
	go func() { _, _ = io.Copy(io.Discard, c.socket.NetConn()) }() // read without decoding
	waitFor(t, "the connection", func() bool { return gauge(s.metrics.Connections) == 1 })
	var sc *conn
	s.srv.mu.Lock()
	for k := range s.srv.conns {
		sc = k
	}
	s.srv.mu.Unlock()

	var msg hub.Message
	sub, err := hub.NewSubscription(subscriberFunc(func(m hub.Message) { msg = m }), "jobs-7", "projects", nil)
	if err != nil {
		t.Fatal(err)
	}
	s.hub.Subscribe(sub, nil)
	s.publish(t, "projects", string(benchPayload))

	// Hold the connection's task queue so that no flush runs meanwhile.
	release := make(chan struct{})
	defer close(release)
	sc.async(func() { <-release })

	if allocs := testing.AllocsPerRun(1000, func() { sc.Enqueue(msg) }); allocs != 0 {
		t.Errorf("Enqueue: %v allocations per change, want 0", allocs)
	}
	if raceEnabled {
		t.Skip("the write's scratch comes from a sync.Pool, which drops items at random under the race detector")
	}
	batch := make([]hub.Message, 16)
	for i := range batch {
		batch[i] = msg
	}
	if err := sc.write(batch); err != nil { // warm the scratch slice
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(200, func() { _ = sc.write(batch) })
	t.Logf("write of %d messages: %v allocations", len(batch), allocs)
	if allocs > 1 {
		t.Errorf("write of a batch of %d: %v allocations, want at most 1", len(batch), allocs)
	}
}
