package gateway

import (
	"encoding/json"
	"testing"
)

// FuzzClientMessage sends one arbitrary frame from a real v1 connection:
// whatever it is, every answer is a well-formed server message and the
// connection still answers a ping afterwards.
func FuzzClientMessage(f *testing.F) {
	for _, seed := range []string{
		`{"type":"subscribe","sub":"a","channel":"projects","filter":{"column":"id","op":"in","value":[1,"2",null]},"resume":{"epoch":"x","seq":3}}`,
		`{"type":"unsubscribe","sub":"a"}`,
		`{"type":"auth","token":"t"}`,
		`{"type":"ping","ref":"r"}`,
		`{"type":"subscribe","sub":"","channel":"projects"}`,
		`{"type":"subscribe","sub":"a","channel":"projects","filter":{"column":"id","op":"eq","value":{"a":1}}}`,
		`[1,2]`, `null`, `"\u0000"`, "\xff\xfe",
	} {
		f.Add([]byte(seed))
	}
	s := newTestServer(f, 0, nil)
	known := map[string]bool{"subscribed": true, "unsubscribed": true, "change": true, "resync": true, "pong": true, "error": true}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > DefaultMaxMessageSize {
			return
		}
		c := dialV1(t, s.url)
		if err := c.socket.WriteMessage(1, data); err != nil {
			t.Fatal(err)
		}
		c.send(`{"type":"ping","ref":"fuzz-sync"}`)
		for {
			raw := c.next()
			var m serverMsg
			if err := json.Unmarshal([]byte(raw), &m); err != nil {
				t.Fatalf("answer to %q is not JSON: %q", data, raw)
			}
			if !known[m.Type] {
				t.Fatalf("answer to %q has unknown type: %q", data, raw)
			}
			if m.Type == "error" && (m.Code == "" || m.Message == "") {
				t.Fatalf("error without code or message: %q", raw)
			}
			if m.Type == "pong" && m.Ref == "fuzz-sync" {
				return
			}
		}
	})
}
