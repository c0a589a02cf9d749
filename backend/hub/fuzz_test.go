package hub

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ripple-rt/ripple/backend/protocol"
)

// FuzzFilter decodes a subscribe message and a notification payload from
// outside input and evaluates the filter on it: no panic, and what is
// delivered is valid JSON naming the subscription.
func FuzzFilter(f *testing.F) {
	f.Add([]byte(`{"type":"subscribe","sub":"s","channel":"t","filter":{"column":"id","op":"eq","value":1}}`),
		[]byte(`{"op":"INSERT","table":"t","new":{"id":1}}`))
	f.Add([]byte(`{"type":"subscribe","sub":"s","channel":"t","filter":{"column":"p","op":"in","value":["1",2,null,true]}}`),
		[]byte(`{"op":"UPDATE","table":"t","new":{"id":1,"p":2},"old":{"id":1,"p":3}}`))
	f.Add([]byte(`{"type":"subscribe","sub":"s","channel":"t","filter":{"column":"p","op":"neq","value":"x"}}`),
		[]byte(`{"op":"DELETE","table":"t","truncated":true,"key":{"id":1}}`))
	f.Add([]byte(`{"type":"subscribe","sub":"s","channel":"t","filter":{"column":"p","op":"eq","value":1e400}}`),
		[]byte(`{"op":"UPDATE","table":"t","new":{"p":{"a":[1]}},"old":{"p":1e308}}`))
	f.Add([]byte(`{"type":"subscribe","sub":"s","channel":"t"}`),
		[]byte("{\"op\":\"INSERT\",\"table\":\"t\",\"new\":{\"doc\":{\n  \"a\": 1\n}}}"))
	f.Fuzz(func(t *testing.T, subscribe, payload []byte) {
		msg, perr := protocol.DecodeClient(subscribe, 1<<16)
		if perr != nil {
			return
		}
		sm, ok := msg.(*protocol.SubscribeMessage)
		if !ok {
			return
		}
		if !json.Valid(payload) {
			return // Publish takes one valid JSON value, as pg_notify delivered it
		}
		var c protocol.NotificationPayload
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.UseNumber()
		if dec.Decode(&c) != nil {
			return
		}
		h, err := New(Options{RingSize: 4})
		if err != nil {
			t.Fatal(err)
		}
		r := &recorder{}
		s, err := NewSubscription(r, sm.Sub, "t", sm.Filter)
		if err != nil {
			return
		}
		h.Subscribe(s, nil)
		h.Publish("t", c, payload)
		for _, m := range r.take()[1:] {
			if strings.Contains(m, "\n") {
				t.Fatalf("delivered message holds a newline: %q", m)
			}
			var d decoded
			if err := json.Unmarshal([]byte(m), &d); err != nil {
				t.Fatalf("delivered message is not JSON: %s: %v", m, err)
			}
			if d.Sub != sm.Sub || d.Seq != 1 {
				t.Fatalf("delivered %s, want sub %q seq 1", m, sm.Sub)
			}
		}
	})
}
