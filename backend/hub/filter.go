package hub

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/ripple-rt/ripple/backend/protocol"
)

// filter is a compiled protocol.Filter.
type filter struct {
	column string
	op     protocol.FilterOp
	values []scalar
}

// scalarKind is the JSON type of a scalar.
type scalarKind uint8

const (
	kindNull scalarKind = iota
	kindBool
	kindNumber
	kindString
)

// scalar is a comparable JSON scalar. Numbers are held exactly as int64
// when they are integers that fit, as float64 otherwise.
type scalar struct {
	kind scalarKind
	b    bool
	s    string
	num  number
}

// number is a JSON number.
type number struct {
	isInt bool
	i     int64
	f     float64
}

func (a number) equal(b number) bool {
	if a.isInt && b.isInt {
		return a.i == b.i
	}
	return a.float() == b.float()
}

func (a number) float() float64 {
	if a.isInt {
		return float64(a.i)
	}
	return a.f
}

func parseNumber(text string) (number, bool) {
	if i, err := strconv.ParseInt(text, 10, 64); err == nil {
		return number{isInt: true, i: i}, true
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return number{}, false
	}
	return floatNumber(f), true
}

func floatNumber(f float64) number {
	if f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
		return number{isInt: true, i: int64(f)}
	}
	return number{f: f}
}

// toScalar converts a value decoded from JSON (or built by Go code) to a
// scalar; ok is false for arrays, objects and types JSON cannot hold.
func toScalar(v any) (scalar, bool) {
	switch v := v.(type) {
	case nil:
		return scalar{kind: kindNull}, true
	case bool:
		return scalar{kind: kindBool, b: v}, true
	case string:
		return scalar{kind: kindString, s: v}, true
	case json.Number:
		n, ok := parseNumber(string(v))
		return scalar{kind: kindNumber, num: n}, ok
	case float64:
		return scalar{kind: kindNumber, num: floatNumber(v)}, true
	case float32:
		return scalar{kind: kindNumber, num: floatNumber(float64(v))}, true
	case int:
		return scalar{kind: kindNumber, num: number{isInt: true, i: int64(v)}}, true
	case int64:
		return scalar{kind: kindNumber, num: number{isInt: true, i: v}}, true
	case int32:
		return scalar{kind: kindNumber, num: number{isInt: true, i: int64(v)}}, true
	default:
		return scalar{}, false
	}
}

// equal compares two scalars the way JSON values compare, except that a
// string equals a number when it is that number's text ("42" equals 42):
// clients often carry bigint ids as strings while the trigger sends numbers.
func (a scalar) equal(b scalar) bool {
	switch {
	case a.kind == b.kind:
		switch a.kind {
		case kindNull:
			return true
		case kindBool:
			return a.b == b.b
		case kindNumber:
			return a.num.equal(b.num)
		default:
			return a.s == b.s
		}
	case a.kind == kindString && b.kind == kindNumber:
		n, ok := parseNumber(a.s)
		return ok && n.equal(b.num)
	case a.kind == kindNumber && b.kind == kindString:
		n, ok := parseNumber(b.s)
		return ok && a.num.equal(n)
	default:
		return false
	}
}

// compileFilter checks f and converts its values to scalars.
func compileFilter(f *protocol.Filter) (*filter, *protocol.Error) {
	if f.Column == "" {
		return nil, protocol.Errorf(protocol.ErrBadFilter, "filter needs a column")
	}
	cf := &filter{column: f.Column, op: f.Op}
	switch f.Op {
	case protocol.FilterEq, protocol.FilterNeq:
		v, ok := toScalar(f.Value)
		if !ok {
			return nil, protocol.Errorf(protocol.ErrBadFilter, "filter op %q needs a scalar value", f.Op)
		}
		cf.values = []scalar{v}
	case protocol.FilterIn:
		list, ok := f.Value.([]any)
		if !ok {
			return nil, protocol.Errorf(protocol.ErrBadFilter, `filter op "in" needs an array value`)
		}
		cf.values = make([]scalar, 0, len(list))
		for _, item := range list {
			v, ok := toScalar(item)
			if !ok {
				return nil, protocol.Errorf(protocol.ErrBadFilter, `filter op "in" needs an array of scalars`)
			}
			cf.values = append(cf.values, v)
		}
	default:
		return nil, protocol.Errorf(protocol.ErrBadFilter, "unknown filter op %q (want eq, neq or in)", f.Op)
	}
	return cf, nil
}

// verdict is the result of evaluating a filter on a row: a row may lack the
// column (a truncated payload carries only its key), and then it is unknown.
type verdict uint8

const (
	verdictUnknown verdict = iota
	verdictMatch
	verdictNoMatch
)

// matchValue evaluates the filter on the column's value v.
func (f *filter) matchValue(v any) verdict {
	sv, ok := toScalar(v)
	if !ok {
		// Arrays and objects equal no scalar.
		if f.op == protocol.FilterNeq {
			return verdictMatch
		}
		return verdictNoMatch
	}
	var hit bool
	for _, want := range f.values {
		if sv.equal(want) {
			hit = true
			break
		}
	}
	if f.op == protocol.FilterNeq {
		hit = !hit
	}
	if hit {
		return verdictMatch
	}
	return verdictNoMatch
}

// lookup finds the filter's column in the first row that has it.
func (f *filter) lookup(rows ...protocol.Row) (any, bool) {
	for _, r := range rows {
		if v, ok := r[f.column]; ok {
			return v, true
		}
	}
	return nil, false
}

func (f *filter) match(rows ...protocol.Row) verdict {
	v, ok := f.lookup(rows...)
	if !ok {
		return verdictUnknown
	}
	return f.matchValue(v)
}

// condition is the AND of a subscription's filters: the scope an
// authorization rule imposes and the client's own filter. A nil condition
// selects every row.
type condition []*filter

// match ANDs the filters' verdicts: no match if any says no, a match if
// all say yes, unknown otherwise.
func (c condition) match(rows ...protocol.Row) verdict {
	all := verdictMatch
	for _, f := range c {
		switch f.match(rows...) {
		case verdictNoMatch:
			return verdictNoMatch
		case verdictUnknown:
			all = verdictUnknown
		}
	}
	return all
}

// variant is the form in which a change reaches a subscription.
type variant uint8

const (
	variantNone   variant = iota // the change does not concern the subscription
	variantAsIs                  // the change as received
	variantInsert                // an UPDATE that moved the row into the condition
	variantDelete                // an UPDATE that moved the row out of the condition
	// variantDeleteKey is an UPDATE whose previous row is unknown (no old)
	// and whose new row is outside the condition: the subscriber may hold
	// the row, so it gets a DELETE; as the row's values now belong to
	// someone else, the DELETE carries only the row's key when a [View]
	// names the key columns.
	variantDeleteKey
)

// variantFor decides how change c reaches a subscription with condition
// cond. INSERT is matched on new, DELETE on old; an UPDATE is matched on
// new and on the previous row (new overlaid with old, which holds the
// previous values of the changed columns, so a column absent from old did
// not change): moving in makes it an INSERT, moving out a DELETE. An
// UPDATE without old (the seed's trigger, or a hydrated change) has an
// unknown previous row: it is delivered as is when new matches and as a
// DELETE when it does not, which is harmless to a client that does not
// hold the row and essential to one that does. When the column is missing
// (a truncated payload that could not be hydrated) the change is delivered
// as is: a client can always ignore a change, never recover a missed one.
func (cond condition) variantFor(c *protocol.NotificationPayload) variant {
	if len(cond) == 0 {
		return variantAsIs
	}
	switch c.Op {
	case protocol.OpInsert:
		return asIsUnlessNoMatch(cond.match(c.New, c.Key))
	case protocol.OpDelete:
		return asIsUnlessNoMatch(cond.match(c.Old, c.Key))
	case protocol.OpUpdate:
		now := cond.match(c.New, c.Key)
		if now == verdictUnknown {
			return variantAsIs
		}
		if c.Old == nil {
			if now == verdictNoMatch {
				return variantDeleteKey
			}
			return variantAsIs
		}
		before := cond.match(c.Old, c.New, c.Key)
		switch {
		case before == verdictNoMatch && now == verdictMatch:
			return variantInsert
		case before == verdictMatch && now == verdictNoMatch:
			return variantDelete
		default:
			return asIsUnlessNoMatch(now)
		}
	default:
		return variantAsIs
	}
}

func asIsUnlessNoMatch(v verdict) variant {
	if v == verdictNoMatch {
		return variantNone
	}
	return variantAsIs
}
