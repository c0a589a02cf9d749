package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/ripple-rt/ripple/backend/protocol"
)

// recorder is a Subscriber that keeps every message it is given.
type recorder struct {
	mu   sync.Mutex
	msgs []Message
}

func (r *recorder) Enqueue(m Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

// take returns the recorded messages as wire JSON and forgets them.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.msgs))
	for i := range r.msgs {
		out[i] = wire(r.msgs[i])
	}
	r.msgs = nil
	return out
}

func wire(m Message) string {
	return string(bytes.Join(m.AppendParts(nil), nil))
}

func newHub(t testing.TB, ringSize int) *Hub {
	t.Helper()
	h, err := New(Options{RingSize: ringSize})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func subscribe(t testing.TB, h *Hub, r Subscriber, id, channel string, f *protocol.Filter, resume *protocol.Position) *Subscription {
	t.Helper()
	s, err := NewSubscription(r, id, channel, f)
	if err != nil {
		t.Fatal(err)
	}
	h.Subscribe(s, resume)
	return s
}

// publish publishes a change built from JSON, the way the listener does.
func publish(t testing.TB, h *Hub, channel, payload string) {
	t.Helper()
	var c protocol.NotificationPayload
	dec := json.NewDecoder(bytes.NewReader([]byte(payload)))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("decode %s: %v", payload, err)
	}
	h.Publish(channel, c, []byte(payload))
}

// decoded is the union of the server message fields a test looks at.
type decoded struct {
	Type    string                       `json:"type"`
	Sub     string                       `json:"sub"`
	Seq     uint64                       `json:"seq"`
	Channel string                       `json:"channel"`
	Epoch   string                       `json:"epoch"`
	Reason  protocol.ResyncReason        `json:"reason"`
	Change  protocol.NotificationPayload `json:"change"`
}

func decode(t testing.TB, msg string) decoded {
	t.Helper()
	var d decoded
	if err := json.Unmarshal([]byte(msg), &d); err != nil {
		t.Fatalf("message %s is not JSON: %v", msg, err)
	}
	return d
}

func TestPublishDeliversWithSeq(t *testing.T) {
	t.Parallel()
	h := newHub(t, 0)
	r, other := &recorder{}, &recorder{}
	subscribe(t, h, r, "a", "projects", nil, nil)
	subscribe(t, h, other, "b", "jobs", nil, nil)
	if got := r.take(); len(got) != 1 || decode(t, got[0]).Type != "subscribed" {
		t.Fatalf("want one subscribed ack, got %v", got)
	}
	other.take()

	publish(t, h, "projects", `{"op":"INSERT","table":"projects","new":{"id":1}}`)
	publish(t, h, "projects", `{"op":"UPDATE","table":"projects","new":{"id":1,"name":"x"},"old":{"id":1,"name":null}}`)
	publish(t, h, "projects", `{"op":"DELETE","table":"projects","old":{"id":1}}`)

	got := r.take()
	if len(got) != 3 {
		t.Fatalf("want 3 changes, got %d: %v", len(got), got)
	}
	for i, op := range []protocol.Op{protocol.OpInsert, protocol.OpUpdate, protocol.OpDelete} {
		d := decode(t, got[i])
		if d.Type != "change" || d.Sub != "a" || d.Seq != uint64(i+1) || d.Change.Op != op {
			t.Errorf("message %d = %s, want change sub a seq %d op %s", i, got[i], i+1, op)
		}
	}
	if got := other.take(); len(got) != 0 {
		t.Errorf("subscriber of another channel got %v", got)
	}
	if h.Seq("projects") != 3 || h.Seq("jobs") != 0 {
		t.Errorf("seqs = %d, %d; want 3, 0", h.Seq("projects"), h.Seq("jobs"))
	}
}

func TestSubscribedAck(t *testing.T) {
	t.Parallel()
	h := newHub(t, 0)
	publish(t, h, "projects", `{"op":"INSERT","table":"projects","new":{"id":1}}`)
	r := &recorder{}
	subscribe(t, h, r, `we"ird`, "projects", nil, nil)
	got := r.take()
	if len(got) != 1 {
		t.Fatalf("want one message, got %v", got)
	}
	d := decode(t, got[0])
	want := decoded{Type: "subscribed", Sub: `we"ird`, Channel: "projects", Epoch: h.Epoch(), Seq: 1}
	if d.Type != want.Type || d.Sub != want.Sub || d.Channel != want.Channel || d.Epoch != want.Epoch || d.Seq != want.Seq {
		t.Errorf("ack = %s, want %+v", got[0], want)
	}
}

func TestSeedSubscriptionGetsBarePayloads(t *testing.T) {
	t.Parallel()
	h := newHub(t, 0)
	r := &recorder{}
	h.Subscribe(NewSeedSubscription(r, "projects"), &protocol.Position{Epoch: "other", Seq: 1})
	payload := `{"op":"INSERT","table":"projects","new":{"id":1}}`
	publish(t, h, "projects", payload)
	h.Gap("projects")
	if got := r.take(); len(got) != 1 || got[0] != payload {
		t.Errorf("seed subscriber got %q, want only the bare payload", got)
	}
}

func TestUnsubscribeStopsDelivery(t *testing.T) {
	t.Parallel()
	h := newHub(t, 0)
	recs := []*recorder{{}, {}, {}}
	subs := make([]*Subscription, len(recs))
	for i, r := range recs {
		subs[i] = subscribe(t, h, r, fmt.Sprint(i), "projects", nil, nil)
		r.take()
	}
	h.Unsubscribe(subs[0])
	h.Unsubscribe(subs[0]) // twice is harmless
	if subs[0].Active() || !subs[1].Active() {
		t.Fatal("Active does not follow Unsubscribe")
	}
	publish(t, h, "projects", `{"op":"INSERT","table":"projects","new":{"id":1}}`)
	for i, r := range recs {
		if got, want := len(r.take()), min(i, 1); got != want {
			t.Errorf("subscriber %d got %d messages, want %d", i, got, want)
		}
	}
}

func TestGapResyncsSubscribers(t *testing.T) {
	t.Parallel()
	h := newHub(t, 0)
	r := &recorder{}
	subscribe(t, h, r, "a", "projects", nil, nil)
	r.take()
	h.Gap("projects")
	got := r.take()
	if len(got) != 1 {
		t.Fatalf("want one resync, got %v", got)
	}
	if d := decode(t, got[0]); d.Type != "resync" || d.Reason != protocol.ResyncGap || d.Sub != "a" {
		t.Errorf("got %s, want resync listener_gap for a", got[0])
	}
}

func TestResume(t *testing.T) {
	t.Parallel()
	const ring = 8
	type want struct {
		resync protocol.ResyncReason // "" = replay
		seqs   []uint64
	}
	tests := []struct {
		name    string
		changes int  // published before the resume
		gapAt   int  // gap after this many changes (-1: none)
		epoch   bool // use a foreign epoch
		from    uint64
		filter  *protocol.Filter
		want    want
	}{
		{name: "replays missed changes in order", changes: 5, gapAt: -1, from: 2, want: want{seqs: []uint64{3, 4, 5}}},
		{name: "nothing missed", changes: 5, gapAt: -1, from: 5, want: want{}},
		{name: "filtered replay", changes: 6, gapAt: -1, from: 0, filter: &protocol.Filter{Column: "id", Op: protocol.FilterIn, Value: []any{"2", 4.0, json.Number("100")}}, want: want{seqs: []uint64{2, 4}}},
		{name: "whole ring", changes: ring, gapAt: -1, from: 0, want: want{seqs: []uint64{1, 2, 3, 4, 5, 6, 7, 8}}},
		{name: "too old", changes: ring + 3, gapAt: -1, from: 2, want: want{resync: protocol.ResyncTooOld}},
		{name: "oldest kept", changes: ring + 3, gapAt: -1, from: 3, want: want{seqs: []uint64{4, 5, 6, 7, 8, 9, 10, 11}}},
		{name: "position from the future", changes: 2, gapAt: -1, from: 9, want: want{resync: protocol.ResyncTooOld}},
		{name: "foreign epoch", changes: 2, gapAt: -1, epoch: true, from: 1, want: want{resync: protocol.ResyncEpoch}},
		{name: "across a gap", changes: 5, gapAt: 3, from: 2, want: want{resync: protocol.ResyncGap}},
		{name: "at the gap", changes: 5, gapAt: 3, from: 3, want: want{resync: protocol.ResyncGap}},
		{name: "after the gap", changes: 5, gapAt: 3, from: 4, want: want{seqs: []uint64{5}}},
		{name: "gap with nothing after it", changes: 3, gapAt: 3, from: 3, want: want{resync: protocol.ResyncGap}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHub(t, ring)
			for i := 1; i <= tt.changes; i++ {
				publish(t, h, "projects", fmt.Sprintf(`{"op":"INSERT","table":"projects","new":{"id":%d}}`, i))
				if i == tt.gapAt {
					h.Gap("projects")
				}
			}
			epoch := h.Epoch()
			if tt.epoch {
				epoch = "elsewhere"
			}
			r := &recorder{}
			subscribe(t, h, r, "s", "projects", tt.filter, &protocol.Position{Epoch: epoch, Seq: tt.from})
			publish(t, h, "projects", `{"op":"INSERT","table":"projects","new":{"id":100}}`)
			got := r.take()
			if len(got) < 2 {
				t.Fatalf("want at least an ack and the live change, got %v", got)
			}
			if d := decode(t, got[0]); d.Type != "subscribed" || d.Seq != uint64(tt.changes) {
				t.Errorf("first message %s, want subscribed with seq %d", got[0], tt.changes)
			}
			live := decode(t, got[len(got)-1])
			if live.Type != "change" || live.Seq != uint64(tt.changes+1) {
				t.Errorf("last message %s, want the live change", got[len(got)-1])
			}
			middle := got[1 : len(got)-1]
			if tt.want.resync != "" {
				if len(middle) != 1 || decode(t, middle[0]).Reason != tt.want.resync {
					t.Fatalf("got %v, want one resync %s", middle, tt.want.resync)
				}
				return
			}
			var seqs []uint64
			for _, m := range middle {
				d := decode(t, m)
				if d.Type != "change" {
					t.Fatalf("replay holds %s", m)
				}
				seqs = append(seqs, d.Seq)
			}
			if fmt.Sprint(seqs) != fmt.Sprint(tt.want.seqs) {
				t.Errorf("replayed seqs %v, want %v", seqs, tt.want.seqs)
			}
		})
	}
}

func TestFilteredDelivery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		filter  protocol.Filter
		payload string
		want    string // op delivered, "" for nothing
		wantOld string // JSON of old in the delivered change, when it matters
	}{
		{"insert match", eq("project_id", 7.0), `{"op":"INSERT","table":"t","new":{"id":1,"project_id":7}}`, "INSERT", ""},
		{"insert no match", eq("project_id", 7.0), `{"op":"INSERT","table":"t","new":{"id":1,"project_id":8}}`, "", ""},
		{"delete matched on old", eq("project_id", 7.0), `{"op":"DELETE","table":"t","old":{"id":1,"project_id":7}}`, "DELETE", ""},
		{"delete no match", eq("project_id", 7.0), `{"op":"DELETE","table":"t","old":{"id":1,"project_id":8}}`, "", ""},
		{"update stays in", eq("project_id", 7.0), `{"op":"UPDATE","table":"t","new":{"id":1,"project_id":7,"n":2},"old":{"id":1,"n":1}}`, "UPDATE", ""},
		{"update stays out", eq("project_id", 7.0), `{"op":"UPDATE","table":"t","new":{"id":1,"project_id":8,"n":2},"old":{"id":1,"n":1}}`, "", ""},
		{"update moves in", eq("project_id", 7.0), `{"op":"UPDATE","table":"t","new":{"id":1,"project_id":7,"n":1},"old":{"id":1,"project_id":8}}`, "INSERT", ""},
		{"update moves out", eq("project_id", 7.0), `{"op":"UPDATE","table":"t","new":{"id":1,"project_id":8,"n":1},"old":{"id":1,"project_id":7}}`, "DELETE", `{"id":1,"n":1,"project_id":7}`},
		{"seed update without old matched on new", eq("project_id", 7.0), `{"op":"UPDATE","table":"t","new":{"id":1,"project_id":7}}`, "UPDATE", ""},
		{"update without old, no match: may have moved out", eq("project_id", 7.0), `{"op":"UPDATE","table":"t","new":{"id":1,"project_id":8}}`, "DELETE", `{"id":1,"project_id":8}`},
		{"truncated delete on key column", eq("id", 1.0), `{"op":"DELETE","table":"t","truncated":true,"key":{"id":1}}`, "DELETE", ""},
		{"truncated delete on key column, no match", eq("id", 2.0), `{"op":"DELETE","table":"t","truncated":true,"key":{"id":1}}`, "", ""},
		{"truncated change without the column goes out", eq("project_id", 7.0), `{"op":"UPDATE","table":"t","truncated":true,"key":{"id":1}}`, "UPDATE", ""},
		{"neq", protocol.Filter{Column: "status", Op: protocol.FilterNeq, Value: "done"}, `{"op":"INSERT","table":"t","new":{"id":1,"status":"open"}}`, "INSERT", ""},
		{"neq no match", protocol.Filter{Column: "status", Op: protocol.FilterNeq, Value: "done"}, `{"op":"INSERT","table":"t","new":{"id":1,"status":"done"}}`, "", ""},
		{"in", protocol.Filter{Column: "status", Op: protocol.FilterIn, Value: []any{"a", "b"}}, `{"op":"INSERT","table":"t","new":{"status":"b"}}`, "INSERT", ""},
		{"in no match", protocol.Filter{Column: "status", Op: protocol.FilterIn, Value: []any{"a", "b"}}, `{"op":"INSERT","table":"t","new":{"status":"c"}}`, "", ""},
		{"string filter on bigint column", eq("id", "9007199254740993"), `{"op":"INSERT","table":"t","new":{"id":9007199254740993}}`, "INSERT", ""},
		{"bigint precision kept", eq("id", "9007199254740993"), `{"op":"INSERT","table":"t","new":{"id":9007199254740992}}`, "", ""},
		{"number filter on text column", eq("code", 42.0), `{"op":"INSERT","table":"t","new":{"code":"42"}}`, "INSERT", ""},
		{"null eq null", eq("parent", nil), `{"op":"INSERT","table":"t","new":{"parent":null}}`, "INSERT", ""},
		{"bool", eq("done", true), `{"op":"INSERT","table":"t","new":{"done":false}}`, "", ""},
		{"object never equals", eq("meta", "x"), `{"op":"INSERT","table":"t","new":{"meta":{"a":1}}}`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHub(t, 0)
			r := &recorder{}
			f := tt.filter
			subscribe(t, h, r, "s", "t", &f, nil)
			r.take()
			publish(t, h, "t", tt.payload)
			got := r.take()
			if tt.want == "" {
				if len(got) != 0 {
					t.Errorf("got %v, want nothing", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("got %v, want one %s", got, tt.want)
			}
			d := decode(t, got[0])
			if string(d.Change.Op) != tt.want {
				t.Errorf("got %s, want op %s", got[0], tt.want)
			}
			if tt.wantOld != "" {
				old, _ := json.Marshal(d.Change.Old)
				if string(old) != tt.wantOld {
					t.Errorf("old = %s, want %s", old, tt.wantOld)
				}
				if d.Change.New != nil {
					t.Errorf("DELETE carries new: %v", d.Change.New)
				}
			}
		})
	}
}

func eq(column string, v any) protocol.Filter {
	return protocol.Filter{Column: column, Op: protocol.FilterEq, Value: v}
}

func TestEncodeOncePerVariant(t *testing.T) {
	t.Parallel()
	h := newHub(t, 0)
	var recs [6]*recorder
	for i := range recs {
		recs[i] = &recorder{}
		f := eq("project_id", 7.0)
		if i%2 == 1 {
			f = eq("project_id", 8.0)
		}
		subscribe(t, h, recs[i], fmt.Sprint(i), "t", &f, nil)
		recs[i].take()
	}
	publish(t, h, "t", `{"op":"UPDATE","table":"t","new":{"id":1,"project_id":7},"old":{"id":1,"project_id":8}}`)
	body := func(i int) *byte {
		recs[i].mu.Lock()
		defer recs[i].mu.Unlock()
		return &recs[i].msgs[0].Body[0]
	}
	if body(0) != body(2) || body(2) != body(4) {
		t.Error("the INSERT form was encoded more than once")
	}
	if body(1) != body(3) || body(3) != body(5) {
		t.Error("the DELETE form was encoded more than once")
	}
	if body(0) == body(1) {
		t.Error("INSERT and DELETE forms share bytes")
	}
}

func TestBadFilter(t *testing.T) {
	t.Parallel()
	for _, f := range []protocol.Filter{
		{Column: "", Op: protocol.FilterEq, Value: 1.0},
		{Column: "a", Op: "like", Value: "x"},
		{Column: "a", Op: protocol.FilterEq, Value: []any{1.0}},
		{Column: "a", Op: protocol.FilterIn, Value: 1.0},
		{Column: "a", Op: protocol.FilterIn, Value: []any{map[string]any{}}},
	} {
		_, err := NewSubscription(&recorder{}, "s", "t", &f)
		var perr *protocol.Error
		if !errors.As(err, &perr) || perr.Code != protocol.ErrBadFilter || perr.Sub != "s" {
			t.Errorf("filter %+v: got %v, want bad_filter for sub s", f, err)
		}
	}
}

func TestNegativeRingSize(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{RingSize: -1}); err == nil {
		t.Error("New accepted a negative ring size")
	}
}

// TestConcurrentSubscribeAndPublish checks, under -race, that a subscriber
// sees the ack, then strictly consecutive seqs, however Subscribe and
// Publish interleave.
func TestConcurrentSubscribeAndPublish(t *testing.T) {
	t.Parallel()
	h := newHub(t, 0)
	const n = 500
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= n; i++ {
			h.Publish("t", protocol.NotificationPayload{Op: protocol.OpInsert, Table: "t"}, []byte(`{"op":"INSERT","table":"t"}`))
		}
	}()
	recs := make([]*recorder, 20)
	for i := range recs {
		recs[i] = &recorder{}
		subscribe(t, h, recs[i], "s", "t", nil, nil)
	}
	<-done
	for _, r := range recs {
		got := r.take()
		ack := decode(t, got[0])
		if ack.Type != "subscribed" {
			t.Fatalf("first message %s", got[0])
		}
		for i, m := range got[1:] {
			if d := decode(t, m); d.Seq != ack.Seq+uint64(i)+1 {
				t.Fatalf("after ack seq %d, message %d has seq %d", ack.Seq, i, d.Seq)
			}
		}
		if last := ack.Seq + uint64(len(got)-1); last != n {
			t.Fatalf("last seq %d, want %d", last, n)
		}
	}
}

// activeProbe is a Subscriber that records whether each message's
// subscription was active when it was enqueued.
type activeProbe struct{ inactive []Message }

func (p *activeProbe) Enqueue(m Message) {
	if !m.Sub.Active() {
		p.inactive = append(p.inactive, m)
	}
}

// TestActiveDuringSubscribe: a subscription is active while its ack and
// replay are enqueued, so a subscriber that overflows then resyncs it.
func TestActiveDuringSubscribe(t *testing.T) {
	t.Parallel()
	h := newHub(t, 0)
	for i := 1; i <= 3; i++ {
		publish(t, h, "projects", fmt.Sprintf(`{"op":"INSERT","table":"projects","new":{"id":%d}}`, i))
	}
	p := &activeProbe{}
	subscribe(t, h, p, "r", "projects", nil, &protocol.Position{Epoch: h.Epoch(), Seq: 0})
	for _, m := range p.inactive {
		t.Errorf("enqueued while inactive: %s", wire(m))
	}
}
