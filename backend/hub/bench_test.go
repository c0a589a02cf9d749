package hub

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/ripple-rt/ripple/backend/protocol"
)

// sink is a Subscriber that stands in for a connection's send queue: a
// bounded slice that is emptied when full, as a writer would.
type sink struct {
	queue []Message
}

func (s *sink) Enqueue(m Message) {
	if len(s.queue) == cap(s.queue) {
		clear(s.queue)
		s.queue = s.queue[:0]
	}
	s.queue = append(s.queue, m)
}

func benchChange(b testing.TB) (protocol.NotificationPayload, []byte) {
	raw := []byte(`{"op":"UPDATE","table":"extraction_jobs","schema":"public","new":{"id":42,"project_id":7,"status":"running","progress":0.5,"updated_at":"2026-11-26T23:00:00Z"},"old":{"id":42,"progress":0.25}}`)
	var c protocol.NotificationPayload
	if err := json.Unmarshal(raw, &c); err != nil {
		b.Fatal(err)
	}
	return c, raw
}

func subscribeSinks(b testing.TB, h *Hub, n int, f *protocol.Filter) {
	for i := range n {
		s, err := NewSubscription(&sink{queue: make([]Message, 0, 64)}, fmt.Sprint(i), "extraction_jobs", f)
		if err != nil {
			b.Fatal(err)
		}
		h.Subscribe(s, nil)
	}
}

// BenchmarkPublish measures one change broadcast to n subscribers; ns/op
// and allocs/op are per change, so per delivery divide by n.
func BenchmarkPublish(b *testing.B) {
	c, raw := benchChange(b)
	filter := &protocol.Filter{Column: "project_id", Op: protocol.FilterEq, Value: json.Number("7")}
	for _, n := range []int{1, 100, 10000} {
		for _, filtered := range []bool{false, true} {
			name := fmt.Sprintf("subscribers=%d", n)
			f := (*protocol.Filter)(nil)
			if filtered {
				name += "/filtered"
				f = filter
			}
			b.Run(name, func(b *testing.B) {
				h := newHub(b, 0)
				subscribeSinks(b, h, n, f)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					h.Publish("extraction_jobs", c, raw)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
			})
		}
	}
}

// TestPublishAllocations proves that a broadcast allocates per change, not
// per subscriber: the entry and its head, whatever the audience.
func TestPublishAllocations(t *testing.T) {
	c, raw := benchChange(t)
	filter := &protocol.Filter{Column: "project_id", Op: protocol.FilterEq, Value: json.Number("7")}
	for _, n := range []int{1, 1000} {
		h := newHub(t, 0)
		subscribeSinks(t, h, n, filter)
		allocs := testing.AllocsPerRun(200, func() { h.Publish("extraction_jobs", c, raw) })
		if allocs > 2 {
			t.Errorf("Publish to %d subscribers: %.1f allocations per change, want at most 2", n, allocs)
		}
	}
}

// BenchmarkPublishScoped measures a change broadcast to n subscribers
// held by an authorization rule (scope on project_id, one omitted
// column): with one shared View the stripped form is encoded once per
// change, not per subscriber.
func BenchmarkPublishScoped(b *testing.B) {
	c, raw := benchChange(b)
	view := NewView([]string{"status"}, []string{"id"})
	scope := []protocol.Filter{{Column: "project_id", Op: protocol.FilterEq, Value: json.Number("7")}}
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			h := newHub(b, 0)
			for i := range n {
				s, err := NewSubscription(&sink{queue: make([]Message, 0, 64)}, fmt.Sprint(i), "extraction_jobs", nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Restrict(scope, view); err != nil {
					b.Fatal(err)
				}
				h.Subscribe(s, nil)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				h.Publish("extraction_jobs", c, raw)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
		})
	}
}
