package protocol_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/ripple-rt/ripple/backend/protocol"
)

func TestDecodeClient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		frame string
		want  any
		code  protocol.ErrorCode
	}{
		{"auth", `{"type":"auth","token":"t"}`, &protocol.AuthMessage{Type: "auth", Token: "t"}, ""},
		{"auth without token", `{"type":"auth"}`, nil, protocol.ErrBadMessage},
		{"subscribe", `{"type":"subscribe","sub":"s1","channel":"projects"}`,
			&protocol.SubscribeMessage{Type: "subscribe", Sub: "s1", Channel: "projects"}, ""},
		{"subscribe with filter and resume", `{"type":"subscribe","sub":"s1","channel":"jobs","filter":{"column":"project_id","op":"eq","value":7},"resume":{"epoch":"e","seq":3}}`,
			&protocol.SubscribeMessage{Type: "subscribe", Sub: "s1", Channel: "jobs",
				Filter: &protocol.Filter{Column: "project_id", Op: protocol.FilterEq, Value: json.Number("7")},
				Resume: &protocol.Position{Epoch: "e", Seq: 3}}, ""},
		{"filter in", `{"type":"subscribe","sub":"s","channel":"c","filter":{"column":"status","op":"in","value":["a","b"]}}`,
			&protocol.SubscribeMessage{Type: "subscribe", Sub: "s", Channel: "c",
				Filter: &protocol.Filter{Column: "status", Op: protocol.FilterIn, Value: []any{"a", "b"}}}, ""},
		{"null filter", `{"type":"subscribe","sub":"s","channel":"c","filter":null}`,
			&protocol.SubscribeMessage{Type: "subscribe", Sub: "s", Channel: "c"}, ""},
		{"subscribe without sub", `{"type":"subscribe","channel":"c"}`, nil, protocol.ErrBadMessage},
		{"subscribe without channel", `{"type":"subscribe","sub":"s"}`, nil, protocol.ErrBadMessage},
		{"sub too long", `{"type":"subscribe","sub":"` + strings.Repeat("x", 129) + `","channel":"c"}`, nil, protocol.ErrBadMessage},
		{"resume without epoch", `{"type":"subscribe","sub":"s","channel":"c","resume":{"seq":1}}`, nil, protocol.ErrBadMessage},
		{"unknown filter op", `{"type":"subscribe","sub":"s","channel":"c","filter":{"column":"a","op":"like","value":"x"}}`, nil, protocol.ErrBadFilter},
		{"filter without column", `{"type":"subscribe","sub":"s","channel":"c","filter":{"op":"eq","value":1}}`, nil, protocol.ErrBadFilter},
		{"in without array", `{"type":"subscribe","sub":"s","channel":"c","filter":{"column":"a","op":"in","value":1}}`, nil, protocol.ErrBadFilter},
		{"eq with array", `{"type":"subscribe","sub":"s","channel":"c","filter":{"column":"a","op":"eq","value":[1]}}`, nil, protocol.ErrBadFilter},
		{"filter not an object", `{"type":"subscribe","sub":"s","channel":"c","filter":"x"}`, nil, protocol.ErrBadFilter},
		{"unsubscribe", `{"type":"unsubscribe","sub":"s1"}`, &protocol.UnsubscribeMessage{Type: "unsubscribe", Sub: "s1"}, ""},
		{"unsubscribe without sub", `{"type":"unsubscribe"}`, nil, protocol.ErrBadMessage},
		{"ping", `{"type":"ping","ref":"r"}`, &protocol.PingMessage{Type: "ping", Ref: "r"}, ""},
		{"unknown type", `{"type":"hello"}`, nil, protocol.ErrUnknownType},
		{"no type", `{}`, nil, protocol.ErrBadMessage},
		{"malformed", `{"type":`, nil, protocol.ErrBadMessage},
		{"not an object", `[1,2]`, nil, protocol.ErrBadMessage},
		{"too large", `{"type":"ping","ref":"` + strings.Repeat("x", 300) + `"}`, nil, protocol.ErrMessageTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := protocol.DecodeClient([]byte(tt.frame), 300)
			if tt.code != "" {
				if err == nil || err.Code != tt.code {
					t.Fatalf("DecodeClient(%s) error = %v, want code %s", tt.frame, err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeClient(%s): %v", tt.frame, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("DecodeClient(%s) = %#v, want %#v", tt.frame, got, tt.want)
			}
		})
	}
}

func TestDecodeClientErrorNamesTheSub(t *testing.T) {
	t.Parallel()
	_, err := protocol.DecodeClient([]byte(`{"type":"subscribe","sub":"s9","channel":"c","filter":{"column":"a","op":"??"}}`), 0)
	if err == nil || err.Sub != "s9" {
		t.Fatalf("error %v does not name sub s9", err)
	}
}

func TestDecodeSeed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		frame string
		want  *protocol.SeedMessage
		code  protocol.ErrorCode
	}{
		{`{"type":"subscribe","channel":"projects"}`, &protocol.SeedMessage{Type: "subscribe", Channel: "projects"}, ""},
		{`{"type":"unsubscribe","channel":"projects"}`, &protocol.SeedMessage{Type: "unsubscribe", Channel: "projects"}, ""},
		{`{"type":"subscribe"}`, nil, protocol.ErrBadMessage},
		{`{"type":"ping"}`, nil, protocol.ErrUnknownType},
		{`nope`, nil, protocol.ErrBadMessage},
	}
	for _, tt := range tests {
		got, err := protocol.DecodeSeed([]byte(tt.frame), 1024)
		if tt.code != "" {
			if err == nil || err.Code != tt.code {
				t.Errorf("DecodeSeed(%s) error = %v, want %s", tt.frame, err, tt.code)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("DecodeSeed(%s) = %#v, %v", tt.frame, got, err)
		}
	}
}

// FuzzDecodeClient checks that no input panics and that every failure carries
// one of the documented codes.
func FuzzDecodeClient(f *testing.F) {
	for _, s := range []string{`{"type":"subscribe","sub":"s","channel":"c","filter":{"column":"a","op":"in","value":[1,"x",null]}}`,
		`{"type":"ping"}`, `{"type":"auth","token":"x"}`, `{"type":"unsubscribe","sub":"s"}`, `{`, `null`} {
		f.Add([]byte(s))
	}
	known := map[protocol.ErrorCode]bool{protocol.ErrBadMessage: true, protocol.ErrUnknownType: true,
		protocol.ErrBadFilter: true, protocol.ErrMessageTooLarge: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := protocol.DecodeClient(data, 4096)
		if err != nil {
			if !known[err.Code] {
				t.Fatalf("unexpected code %q", err.Code)
			}
			return
		}
		if msg == nil {
			t.Fatal("nil message without error")
		}
	})
}

// FuzzDecodeSeed checks that no seed-protocol frame panics, that every
// failure carries a documented code and that every success is a subscribe
// or unsubscribe naming a channel.
func FuzzDecodeSeed(f *testing.F) {
	for _, s := range []string{`{"type":"subscribe","channel":"projects"}`, `{"type":"unsubscribe","channel":"c"}`,
		`{"type":"ping"}`, `{"type":"subscribe"}`, `{`, `null`} {
		f.Add([]byte(s))
	}
	known := map[protocol.ErrorCode]bool{protocol.ErrBadMessage: true, protocol.ErrUnknownType: true,
		protocol.ErrMessageTooLarge: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := protocol.DecodeSeed(data, 4096)
		if err != nil {
			if !known[err.Code] {
				t.Fatalf("unexpected code %q", err.Code)
			}
			return
		}
		if (msg.Type != "subscribe" && msg.Type != "unsubscribe") || msg.Channel == "" {
			t.Fatalf("decoded %+v from %q", msg, data)
		}
	})
}

func BenchmarkDecodeSubscribe(b *testing.B) {
	frame := []byte(`{"type":"subscribe","sub":"s1","channel":"extraction_jobs","filter":{"column":"project_id","op":"eq","value":42},"resume":{"epoch":"abc","seq":17}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := protocol.DecodeClient(frame, 65536); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeChange(b *testing.B) {
	msg := protocol.ChangeMessage{Type: "change", Sub: "s1", Seq: 42, Change: protocol.NotificationPayload{
		Op: protocol.OpInsert, Table: "projects", Schema: "public",
		New: protocol.Row{"id": 1, "name": "Survey", "organization_id": "org-1", "status": "active"}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(msg); err != nil {
			b.Fatal(err)
		}
	}
}
