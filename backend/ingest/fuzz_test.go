package ingest

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/ripple-rt/ripple/backend/protocol"
)

// FuzzHandle feeds arbitrary payloads through Handle (without a pool) and
// checks that nothing panics, that a payload is either published or counted
// as bad, and that what is published is a valid change whose raw bytes
// decode back to it.
func FuzzHandle(f *testing.F) {
	for _, seed := range []string{
		`{"op":"INSERT","table":"projects","new":{"id":1,"name":"Dam survey"}}`,
		`{"op":"UPDATE","table":"invoices","schema":"billing","new":{"id":3,"paid":true},"old":{"id":3,"paid":false}}`,
		`{"op":"DELETE","table":"projects","old":{"id":1}}`,
		`{"op":"DELETE","table":"docs","schema":"public","truncated":true,"key":{"id":1}}`,
		`{"op":"UPDATE","table":"docs","schema":"public","truncated":true}`,
		`{"op":"INSERT","table":"t","new":{"a":[1,{"b":null}],"c":1e400}}`,
		`{"op":"INSERT","table":"t","new":{}} x`,
		"{\"op\":\"DELETE\",\n\"table\":\"t\",\"old\":{\"j\":[1,\r\n2]}}",
		`not json`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		pub := &recorder{}
		ing := New(Options{Publisher: pub})
		ing.Handle(context.Background(), note("projects", payload))
		bad := value(t, ing.metrics.BadPayloads)
		if len(pub.changes)+int(bad) != 1 {
			t.Fatalf("published %d and counted %v bad for one payload", len(pub.changes), bad)
		}
		if bad == 1 {
			return
		}
		got := pub.changes[0]
		switch got.change.Op {
		case protocol.OpInsert, protocol.OpUpdate, protocol.OpDelete:
		default:
			t.Fatalf("published op %q", got.change.Op)
		}
		if strings.ContainsAny(got.raw, "\r\n") {
			t.Fatalf("raw %q holds a line break", got.raw)
		}
		back, err := decode([]byte(got.raw))
		if err != nil {
			t.Fatalf("raw %q does not decode: %v", got.raw, err)
		}
		if !reflect.DeepEqual(back, got.change) {
			t.Fatalf("raw %q decodes to %+v, published %+v", got.raw, back, got.change)
		}
	})
}
