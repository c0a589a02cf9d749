package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/ripple-rt/ripple/backend/hub"
	"github.com/ripple-rt/ripple/backend/protocol"
)

// AnyChannel is the rule name that applies to every channel without a rule
// of its own.
const AnyChannel = "*"

// Rules are the authorization rules of a rules file (RIPPLE_RULES). A nil
// *Rules allows every channel, unscoped, with every column.
type Rules struct {
	channels map[string]*rule
}

// rule is one channel's compiled rule.
type rule struct {
	allow []Condition
	scope []ScopeRule
	view  *hub.View
}

// RulesFile is the JSON shape of a rules file.
type RulesFile struct {
	// Channels maps a channel name (or "*" for every channel without its
	// own rule) to its rule. A channel without a rule (and no "*") is
	// forbidden.
	Channels map[string]ChannelRule `json:"channels"`
}

// ChannelRule is the rule of one channel.
type ChannelRule struct {
	// Allow lists the conditions a token's claims must all meet to
	// subscribe. Empty: every authenticated client may subscribe.
	Allow []Condition `json:"allow"`
	// Scope lists the row conditions a subscriber is held to: the row's
	// Column must equal the token's Claim (or be one of its values when the
	// claim is an array). Every change is matched against them, ANDed with
	// the client's filter. A token without the claim may not subscribe.
	Scope []ScopeRule `json:"scope"`
	// Omit lists columns never sent, in any change.
	Omit []string `json:"omit"`
	// Key lists the row's key columns. Default ["id"]. When an UPDATE with
	// an unknown previous row leaves a subscriber's scope, the DELETE it
	// receives carries only these columns.
	Key []string `json:"key"`
}

// Condition is a test on one claim. With neither Equals nor In the claim
// must be present and not null, "" or [].
type Condition struct {
	// Claim names the claim: a top-level claim name, or a dotted path into
	// nested objects ("app_metadata.role") when no top-level claim has
	// that exact name.
	Claim string `json:"claim"`
	// Equals, when set, is the value the claim must equal (or, for an
	// array claim, hold).
	Equals any `json:"equals,omitempty"`
	// In, when set, lists the values the claim must be one of (or, for an
	// array claim, hold one of).
	In []any `json:"in,omitempty"`
}

// ScopeRule holds a subscriber to the rows whose Column equals its token's Claim.
type ScopeRule struct {
	Column string `json:"column"`
	Claim  string `json:"claim"`
}

// LoadRules reads and checks a rules file.
func LoadRules(path string) (*Rules, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	r, err := ParseRules(raw)
	if err != nil {
		return nil, fmt.Errorf("rules file %s: %w", path, err)
	}
	return r, nil
}

// ParseRules parses the JSON of a rules file. Unknown fields are an error,
// so that a misspelt "omit" cannot silently send a secret.
func ParseRules(raw []byte) (*Rules, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var f RulesFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not a rules file: %w", err)
	}
	if f.Channels == nil {
		return nil, errors.New(`no "channels" object`)
	}
	r := &Rules{channels: make(map[string]*rule, len(f.Channels))}
	for name, cr := range f.Channels {
		if name == "" {
			return nil, errors.New("a channel rule has an empty name")
		}
		for _, c := range cr.Allow {
			if c.Claim == "" {
				return nil, fmt.Errorf("channel %q: an allow condition has no claim", name)
			}
			if c.Equals != nil && c.In != nil {
				return nil, fmt.Errorf("channel %q: allow condition on %q has both equals and in", name, c.Claim)
			}
		}
		for _, s := range cr.Scope {
			if s.Column == "" || s.Claim == "" {
				return nil, fmt.Errorf("channel %q: a scope needs a column and a claim", name)
			}
		}
		key := cr.Key
		if key == nil {
			key = []string{"id"}
		}
		for _, k := range key {
			if slices.Contains(cr.Omit, k) {
				return nil, fmt.Errorf("channel %q: key column %q is omitted: clients could not tell rows apart", name, k)
			}
		}
		r.channels[name] = &rule{allow: cr.Allow, scope: cr.Scope, view: hub.NewView(cr.Omit, key)}
	}
	return r, nil
}

// Covers reports whether a rule (its own or "*") applies to channel; a
// channel not covered is forbidden to everyone. A nil *Rules covers every channel.
func (r *Rules) Covers(channel string) bool {
	if r == nil {
		return true
	}
	return r.channels[channel] != nil || r.channels[AnyChannel] != nil
}

// Grant is what [Rules.Authorize] lets one token do on one channel.
type Grant struct {
	// Scope are the conditions every change is matched against.
	Scope []protocol.Filter
	// View is what the subscriber sees of a row (shared by every grant of
	// the same rule, so changes are encoded once per rule). Nil: everything.
	View *hub.View
	// fingerprint identifies the rule and scope values, to tell whether a
	// new token changes what a subscription may see.
	fingerprint string
}

// Same reports whether g and o grant the same rows and columns.
func (g *Grant) Same(o *Grant) bool { return g.fingerprint == o.fingerprint }

// Authorize decides whether a holder of claims may subscribe to channel,
// and on what terms. The error says why not, without claim values; it is
// meant for the client (code forbidden).
func (r *Rules) Authorize(channel string, claims map[string]any) (*Grant, error) {
	if r == nil {
		return &Grant{}, nil
	}
	ru := r.channels[channel]
	if ru == nil {
		if ru = r.channels[AnyChannel]; ru == nil {
			return nil, fmt.Errorf("no rule lets anyone subscribe to %s", channel)
		}
	}
	for _, c := range ru.allow {
		if !c.holds(claims) {
			return nil, fmt.Errorf("the token's claim %q does not allow subscribing to %s", c.Claim, channel)
		}
	}
	g := &Grant{View: ru.view, Scope: make([]protocol.Filter, 0, len(ru.scope))}
	var fp strings.Builder
	fmt.Fprintf(&fp, "%p", ru)
	for _, s := range ru.scope {
		v, ok := claim(claims, s.Claim)
		if !ok || empty(v) {
			return nil, fmt.Errorf("the token has no claim %q, which %s is scoped by", s.Claim, channel)
		}
		f := protocol.Filter{Column: s.Column, Op: protocol.FilterEq, Value: v}
		if _, isList := v.([]any); isList {
			f.Op = protocol.FilterIn
		}
		b, err := json.Marshal(f)
		if err != nil {
			return nil, fmt.Errorf("the token's claim %q cannot scope %s", s.Claim, channel)
		}
		fp.WriteByte(' ')
		fp.Write(b)
		g.Scope = append(g.Scope, f)
	}
	g.fingerprint = fp.String()
	return g, nil
}

// claim finds a claim by its exact name, else by a dotted path.
func claim(claims map[string]any, name string) (any, bool) {
	if v, ok := claims[name]; ok {
		return v, true
	}
	var cur any = claims
	for _, part := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case []any:
		return len(v) == 0
	}
	return false
}

// holds reports whether claims meet c.
func (c Condition) holds(claims map[string]any) bool {
	v, ok := claim(claims, c.Claim)
	if !ok || empty(v) {
		return false
	}
	var want []any
	switch {
	case c.Equals != nil:
		want = []any{c.Equals}
	case c.In != nil:
		want = c.In
	default:
		return true
	}
	have := []any{v}
	if list, ok := v.([]any); ok {
		have = list
	}
	for _, h := range have {
		for _, w := range want {
			if sameValue(h, w) {
				return true
			}
		}
	}
	return false
}

// sameValue compares two decoded JSON scalars; numbers compare by their text.
func sameValue(a, b any) bool {
	an, aNum := a.(json.Number)
	bn, bNum := b.(json.Number)
	if aNum && bNum {
		return numberText(an) == numberText(bn)
	}
	if aNum || bNum {
		return false
	}
	switch a.(type) {
	case string, bool:
		return a == b
	}
	return false
}

// numberText normalises a JSON number's text ("1.0" and "1" are equal).
func numberText(n json.Number) string {
	if f, err := n.Float64(); err == nil {
		return fmt.Sprint(f)
	}
	return string(n)
}
