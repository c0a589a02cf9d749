package hub

import "github.com/ripple-rt/ripple/backend/protocol"

// View is what an authorization rule lets its subscribers see of a
// channel's rows: every column but the omitted ones, which are stripped
// from new, old and key of every change (as received, as an INSERT or a
// DELETE, replayed or hydrated). Key names the row's key columns: a DELETE
// sent because an UPDATE with an unknown previous row left the
// subscriber's scope carries only them.
//
// A View is immutable. Subscriptions that share a *View share the encoded
// forms of each change, so a rule should make one View and hand the same
// pointer to all its subscriptions.
type View struct {
	omit map[string]bool
	key  []string
}

// NewView returns a View that omits the columns omit; key names the key
// columns. Without key columns, or when a row lacks them, a key-only
// DELETE is not sent at all (the view never lets a row's new values
// reach a subscriber outside its scope).
func NewView(omit, key []string) *View {
	v := &View{omit: make(map[string]bool, len(omit)), key: append([]string(nil), key...)}
	for _, c := range omit {
		v.omit[c] = true
	}
	return v
}

// Omits reports whether v strips column. A client's filter may not name
// such a column: which changes arrive would tell what the column holds.
func (v *View) Omits(column string) bool { return v != nil && v.omit[column] }

// strip returns row without the omitted columns, and whether it held any
// (if not, row itself is returned).
func (v *View) strip(row protocol.Row) (protocol.Row, bool) {
	if v == nil || row == nil {
		return row, false
	}
	hit := false
	for c := range v.omit {
		if _, ok := row[c]; ok {
			hit = true
			break
		}
	}
	if !hit {
		return row, false
	}
	out := make(protocol.Row, len(row))
	for k, val := range row {
		if !v.omit[k] {
			out[k] = val
		}
	}
	return out, true
}

// keyOf returns the key columns of row, or nil when v names none or row
// lacks one of them.
func (v *View) keyOf(row protocol.Row) protocol.Row {
	if v == nil || len(v.key) == 0 {
		return nil
	}
	out := make(protocol.Row, len(v.key))
	for _, c := range v.key {
		val, ok := row[c]
		if !ok {
			return nil
		}
		out[c] = val
	}
	return out
}
