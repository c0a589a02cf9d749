package hub

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/ripple-rt/ripple/backend/protocol"
)

// entry is one change of a channel, with its encoded forms. The forms are
// made lazily, at most once each per (variant, view), under the channel's
// lock; once made they are never modified, so subscribers may read them
// without a lock.
type entry struct {
	change protocol.NotificationPayload
	raw    []byte
	// head is the shared start of the v1 change message: `{"type":"change","seq":N,"change":`.
	head []byte
	// forms are the payload re-encoded for a variant other than as-is, or
	// for a view that strips columns. nil bodies mean "not sent".
	forms []form
}

// form is one encoded form of an entry's change.
type form struct {
	variant variant
	view    *View
	body    []byte
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
	return &entry{change: change, raw: raw, head: head}
}

// message returns the message that delivers e to s, or false when e does
// not concern s.
func (e *entry) message(s *Subscription) (Message, bool) {
	v := s.cond.variantFor(&e.change)
	if v == variantNone {
		return Message{}, false
	}
	body := e.body(v, s.view)
	if body == nil {
		return Message{}, false
	}
	if s.seed {
		return Message{Kind: KindChange, Sub: s, Body: body}, true
	}
	return Message{Kind: KindChange, Sub: s, Head: e.head, Body: body}, true
}

// body returns the encoding of the change in variant v seen through view,
// nil when it is not to be sent.
func (e *entry) body(v variant, view *View) []byte {
	if v == variantAsIs && view == nil {
		return e.raw
	}
	for i := range e.forms {
		if e.forms[i].variant == v && e.forms[i].view == view {
			return e.forms[i].body
		}
	}
	b := e.encodeForm(v, view)
	e.forms = append(e.forms, form{variant: v, view: view, body: b})
	return b
}

func (e *entry) encodeForm(v variant, view *View) []byte {
	c := e.change
	switch v {
	case variantInsert:
		c.Op, c.Old = protocol.OpInsert, nil
	case variantDelete:
		c.Op, c.New, c.Old = protocol.OpDelete, nil, overlay(c.New, c.Old)
	case variantDeleteKey:
		c.Op, c.New, c.Old = protocol.OpDelete, nil, c.New
		if view != nil {
			if c.Old = view.keyOf(e.change.New); c.Old == nil {
				if c.Old = view.keyOf(e.change.Key); c.Old == nil {
					return nil
				}
			}
			c.Key = nil
		}
	}
	if view != nil {
		var n, o, k bool
		c.New, n = view.strip(c.New)
		c.Old, o = view.strip(c.Old)
		c.Key, k = view.strip(c.Key)
		if v == variantAsIs && !n && !o && !k {
			return e.raw // nothing to strip
		}
	}
	b, err := json.Marshal(&c)
	if err != nil {
		// Rows decoded from JSON always encode; should a row built by Go
		// code not (a NaN), the change goes out as received rather than
		// not at all, unless a view had to strip columns from it.
		if view != nil {
			return nil
		}
		return e.raw
	}
	return b
}

// overlay returns the previous row of an UPDATE: new overlaid with old.
func overlay(newRow, oldRow protocol.Row) protocol.Row {
	prev := make(protocol.Row, len(newRow))
	for k, v := range newRow {
		prev[k] = v
	}
	for k, v := range oldRow {
		prev[k] = v
	}
	return prev
}
