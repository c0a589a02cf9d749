package hub

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ripple-rt/ripple/backend/protocol"
)

// restricted subscribes with the scope org_id = org, seen through view.
func restricted(t *testing.T, h *Hub, r *recorder, id, org string, f *protocol.Filter, view *View, resume *protocol.Position) *Subscription {
	t.Helper()
	s, err := NewSubscription(r, id, "t", f)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Restrict([]protocol.Filter{eq("org_id", org)}, view); err != nil {
		t.Fatal(err)
	}
	h.Subscribe(s, resume)
	r.take()
	return s
}

func TestRestrictedDelivery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		filter  *protocol.Filter
		payload string
		want    string // the delivered change, "" for nothing
	}{
		{"insert in scope, secret stripped", nil,
			`{"op":"INSERT","table":"t","new":{"id":1,"org_id":"A","secret":"s","n":1}}`,
			`{"op":"INSERT","table":"t","new":{"id":1,"n":1,"org_id":"A"}}`},
		{"insert out of scope", nil, `{"op":"INSERT","table":"t","new":{"id":1,"org_id":"B","secret":"s"}}`, ""},
		{"insert without omitted column goes out as received", nil,
			`{"op":"INSERT","table":"t","new":{"org_id":"A","id":1}}`, `{"op":"INSERT","table":"t","new":{"org_id":"A","id":1}}`},
		{"delete in scope, secret stripped", nil,
			`{"op":"DELETE","table":"t","old":{"id":1,"org_id":"A","secret":"s"}}`,
			`{"op":"DELETE","table":"t","old":{"id":1,"org_id":"A"}}`},
		{"update moves out: DELETE of the previous row", nil,
			`{"op":"UPDATE","table":"t","new":{"id":1,"org_id":"B","secret":"s2","n":2},"old":{"id":1,"org_id":"A","secret":"s1","n":1}}`,
			`{"op":"DELETE","table":"t","old":{"id":1,"n":1,"org_id":"A"}}`},
		{"update moves in: INSERT", nil,
			`{"op":"UPDATE","table":"t","new":{"id":1,"org_id":"A","secret":"s","n":2},"old":{"id":1,"org_id":"B"}}`,
			`{"op":"INSERT","table":"t","new":{"id":1,"n":2,"org_id":"A"}}`},
		{"update inside the scope, old stripped", nil,
			`{"op":"UPDATE","table":"t","new":{"id":1,"org_id":"A","secret":"s2"},"old":{"id":1,"secret":"s1"}}`,
			`{"op":"UPDATE","table":"t","new":{"id":1,"org_id":"A"},"old":{"id":1}}`},
		{"update without old outside the scope: DELETE of the key only", nil,
			`{"op":"UPDATE","table":"t","new":{"id":1,"org_id":"B","secret":"s","n":2}}`,
			`{"op":"DELETE","table":"t","old":{"id":1}}`},
		{"update without old and without key: nothing", nil,
			`{"op":"UPDATE","table":"t","new":{"org_id":"B","n":2}}`, ""},
		{"update without old inside the scope", nil,
			`{"op":"UPDATE","table":"t","new":{"id":1,"org_id":"A","secret":"s"}}`,
			`{"op":"UPDATE","table":"t","new":{"id":1,"org_id":"A"}}`},
		{"filter cannot widen the scope", &protocol.Filter{Column: "org_id", Op: protocol.FilterEq, Value: "B"},
			`{"op":"INSERT","table":"t","new":{"id":1,"org_id":"B"}}`, ""},
		{"neq filter cannot widen the scope", &protocol.Filter{Column: "org_id", Op: protocol.FilterNeq, Value: "A"},
			`{"op":"INSERT","table":"t","new":{"id":1,"org_id":"B"}}`, ""},
		{"filter narrows the scope", &protocol.Filter{Column: "n", Op: protocol.FilterEq, Value: 2},
			`{"op":"INSERT","table":"t","new":{"id":1,"org_id":"A","n":1}}`, ""},
		{"truncated change keeps only its stripped key", nil,
			`{"op":"UPDATE","table":"t","truncated":true,"key":{"id":1,"secret":"s"}}`,
			`{"op":"UPDATE","table":"t","truncated":true,"key":{"id":1}}`},
	}
	view := NewView([]string{"secret"}, []string{"id"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHub(t, 0)
			r := &recorder{}
			restricted(t, h, r, "s", "A", tt.filter, view, nil)
			publish(t, h, "t", tt.payload)
			got := r.take()
			if tt.want == "" {
				if len(got) != 0 {
					t.Errorf("got %v, want nothing", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("got %v, want one change", got)
			}
			var m struct{ Change json.RawMessage }
			if err := json.Unmarshal([]byte(got[0]), &m); err != nil {
				t.Fatal(err)
			}
			if string(m.Change) != tt.want {
				t.Errorf("change = %s\n      want %s", m.Change, tt.want)
			}
		})
	}
}

func TestSeedSubscriptionObeysScopeAndView(t *testing.T) {
	t.Parallel()
	h := newHub(t, 0)
	r := &recorder{}
	s := NewSeedSubscription(r, "t")
	if err := s.Restrict([]protocol.Filter{eq("org_id", "A")}, NewView([]string{"secret"}, []string{"id"})); err != nil {
		t.Fatal(err)
	}
	h.Subscribe(s, nil)
	publish(t, h, "t", `{"op":"INSERT","table":"t","new":{"id":1,"org_id":"B","secret":"s"}}`)
	publish(t, h, "t", `{"op":"INSERT","table":"t","new":{"id":2,"org_id":"A","secret":"s"}}`)
	got := r.take()
	if len(got) != 1 || got[0] != `{"op":"INSERT","table":"t","new":{"id":2,"org_id":"A"}}` {
		t.Fatalf("seed subscriber got %v", got)
	}
}

func TestReplayObeysScopeAndView(t *testing.T) {
	t.Parallel()
	h := newHub(t, 0)
	view := NewView([]string{"secret"}, []string{"id"})
	publish(t, h, "t", `{"op":"INSERT","table":"t","new":{"id":1,"org_id":"B","secret":"s"}}`)
	publish(t, h, "t", `{"op":"INSERT","table":"t","new":{"id":2,"org_id":"A","secret":"s"}}`)
	r := &recorder{}
	s, err := NewSubscription(r, "s", "t", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Restrict([]protocol.Filter{eq("org_id", "A")}, view); err != nil {
		t.Fatal(err)
	}
	h.Subscribe(s, &protocol.Position{Epoch: h.Epoch(), Seq: 0})
	got := r.take()
	if len(got) != 2 || strings.Contains(got[1], "secret") || !strings.Contains(got[1], `"id":2`) || decode(t, got[1]).Seq != 2 {
		t.Fatalf("replay %v: want the ack and only seq 2, stripped", got)
	}
}

func TestEncodeOncePerVariantAndView(t *testing.T) {
	t.Parallel()
	h := newHub(t, 0)
	shared := NewView([]string{"secret"}, []string{"id"})
	other := NewView([]string{"secret"}, []string{"id"})
	recs := []*recorder{{}, {}, {}}
	restricted(t, h, recs[0], "0", "A", nil, shared, nil)
	restricted(t, h, recs[1], "1", "A", nil, shared, nil)
	restricted(t, h, recs[2], "2", "A", nil, other, nil)
	publish(t, h, "t", `{"op":"INSERT","table":"t","new":{"id":1,"org_id":"A","secret":"s"}}`)
	body := func(i int) *byte {
		recs[i].mu.Lock()
		defer recs[i].mu.Unlock()
		return &recs[i].msgs[0].Body[0]
	}
	if body(0) != body(1) {
		t.Error("subscriptions sharing a view got separately encoded bodies")
	}
	if body(0) == body(2) {
		t.Error("different views share one body")
	}
}

func TestRestrictRejectsBadScope(t *testing.T) {
	t.Parallel()
	s, err := NewSubscription(&recorder{}, "s", "t", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Restrict([]protocol.Filter{{Column: "org_id", Op: protocol.FilterEq, Value: map[string]any{}}}, nil); err == nil {
		t.Error("Restrict accepted an object as a scope value")
	}
}
