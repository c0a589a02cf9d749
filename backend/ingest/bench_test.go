package ingest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ripple-rt/ripple/backend/protocol"
)

// discard is a Publisher that drops everything.
type discard struct{}

func (discard) Publish(string, protocol.NotificationPayload, []byte) {}
func (discard) Gap(string)                                           {}

// BenchmarkHandle measures decoding one notification (no hydration): a
// seed-shaped insert, a Ripple update of a ten-column row, and a payload
// just under the 8000-byte limit.
func BenchmarkHandle(b *testing.B) {
	wide := make([]string, 10)
	for i := range wide {
		wide[i] = fmt.Sprintf(`"col%d":"value number %d"`, i, i)
	}
	payloads := []struct{ name, payload string }{
		{"seed_insert", `{"op":"INSERT","table":"projects","new":{"id":1,"name":"Dam survey"}}`},
		{"ripple_update_10cols", `{"op":"UPDATE","table":"projects","schema":"public","new":{"id":42,"project_id":7,` +
			strings.Join(wide, ",") + `},"old":{"id":42,"col3":"before"}}`},
		{"near_limit_7900B", `{"op":"INSERT","table":"docs","schema":"public","new":{"id":1,"body":"` +
			strings.Repeat("x", 7830) + `"}}`},
	}
	for _, p := range payloads {
		b.Run(p.name, func(b *testing.B) {
			ing := New(Options{Publisher: discard{}})
			n := note("projects", p.payload)
			ctx := context.Background()
			b.SetBytes(int64(len(p.payload)))
			b.ReportAllocs()
			for b.Loop() {
				ing.Handle(ctx, n)
			}
		})
	}
}

// BenchmarkHydrate measures completing one truncated INSERT from a real
// table: the round trip the listener goroutine waits for per truncated change.
func BenchmarkHydrate(b *testing.B) {
	d := newDB(b)
	exec(b, d.pool, `INSERT INTO docs VALUES (1, 'title', $1)`, big)
	n := d.next(b, true)
	ing := New(Options{Publisher: discard{}, Pool: d.pool})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ing.Handle(ctx, n)
	}
}
