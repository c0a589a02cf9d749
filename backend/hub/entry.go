package hub

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/ripple-rt/ripple/backend/protocol"
)

// entry is one change of a channel, with its encoded forms. The forms are
// made lazily, at most once each, under the channel's lock; once made they
// are never modified, so subscribers may read them without a lock.
type entry struct {
	seq    uint64
	change protocol.NotificationPayload
	raw    []byte
	// head is the shared start of the v1 change message: `{"type":"change","seq":N,"change":`.
	head []byte
	// asInsert and asDelete are the payload re-encoded as an INSERT (an
	// UPDATE that moved the row into a filter) or a DELETE (out of it).
	asInsert []byte
	asDelete []byte
}

func newEntry(seq uint64, change protocol.NotificationPayload, raw []byte) *entry {
	// v1 frames separate messages with newlines, so a payload may hold none.
	// Postgres embeds json columns verbatim, pretty-printing included.
	if bytes.IndexByte(raw, '\n') >= 0 {
		var compact bytes.Buffer
		if json.Compact(&compact, raw) == nil {
			raw = compact.Bytes()
		}
	}
	head := make([]byte, 0, 48)
	head = append(head, `{"type":"change","seq":`...)
	head = strconv.AppendUint(head, seq, 10)
	head = append(head, `,"change":`...)
	return &entry{seq: seq, change: change, raw: raw, head: head}
}

// message returns the message that delivers e to s, or false when e does
// not concern s.
func (e *entry) message(s *Subscription) (Message, bool) {
	if s.seed {
		return Message{Kind: KindChange, Sub: s, Body: e.raw}, true
	}
	var body []byte
	switch s.filter.variantFor(&e.change) {
	case variantNone:
		return Message{}, false
	case variantAsIs:
		body = e.raw
	case variantInsert:
		body = e.insertForm()
	case variantDelete:
		body = e.deleteForm()
	}
	return Message{Kind: KindChange, Sub: s, Head: e.head, Body: body}, true
}

func (e *entry) insertForm() []byte {
	if e.asInsert == nil {
		c := e.change
		c.Op, c.Old = protocol.OpInsert, nil
		e.asInsert = e.encode(&c)
	}
	return e.asInsert
}

func (e *entry) deleteForm() []byte {
	if e.asDelete == nil {
		prev := make(protocol.Row, len(e.change.New))
		for k, v := range e.change.New {
			prev[k] = v
		}
		for k, v := range e.change.Old {
			prev[k] = v
		}
		c := e.change
		c.Op, c.New, c.Old = protocol.OpDelete, nil, prev
		e.asDelete = e.encode(&c)
	}
	return e.asDelete
}

// encode encodes a derived form of the change. Rows decoded from JSON always
// encode; should a row built by Go code not (a NaN), the change goes out as
// received rather than not at all.
func (e *entry) encode(c *protocol.NotificationPayload) []byte {
	b, err := json.Marshal(c)
	if err != nil {
		return e.raw
	}
	return b
}
