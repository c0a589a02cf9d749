package hub

import (
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/ripple-rt/ripple/backend/protocol"
)

// Kind tells a [Subscriber] what a [Message] carries.
type Kind uint8

// The kinds of message a Subscriber receives.
const (
	// KindChange is a row change. It is the only kind a subscriber may drop
	// when it cannot keep up (and must then send a resync instead).
	KindChange Kind = iota
	// KindSubscribed is the ack of a subscription.
	KindSubscribed
	// KindResync tells the client to refetch the subscription's data; Reason says why.
	KindResync
	// KindReply is any other message a subscriber sends on its own account
	// (unsubscribed acks, errors, pongs).
	KindReply
)

// Message is one outbound message, pre-encoded in shared pieces so that a
// broadcast encodes a change once and hands the same bytes to every
// subscriber. On the wire a v1 message is Head, then Body, then the
// subscription's own tail (`,"sub":"<id>"}`); a seed-protocol subscription
// receives Body alone (the bare payload). A Message without a Sub is Head
// followed by Body. The byte slices are shared and must not be modified.
type Message struct {
	// Kind is what the message carries.
	Kind Kind
	// Reason is why a KindResync message was sent.
	Reason protocol.ResyncReason
	// Sub is the subscription the message belongs to, if any.
	Sub *Subscription
	// Head is the shared start of the message, e.g. `{"type":"change","seq":7,"change":`.
	Head []byte
	// Body is the shared rest: the change payload JSON for KindChange.
	Body []byte
}

// AppendParts appends the byte slices that make up m on the wire to parts,
// without copying them, ready for [github.com/lxzan/gws.Conn.Writev].
func (m *Message) AppendParts(parts [][]byte) [][]byte {
	if m.Sub != nil && m.Sub.seed {
		return append(parts, m.Body)
	}
	if len(m.Head) > 0 {
		parts = append(parts, m.Head)
	}
	if len(m.Body) > 0 {
		parts = append(parts, m.Body)
	}
	if m.Sub != nil {
		parts = append(parts, m.Sub.tail)
	}
	return parts
}

// Len returns the number of bytes m takes on the wire.
func (m *Message) Len() int {
	if m.Sub != nil && m.Sub.seed {
		return len(m.Body)
	}
	n := len(m.Head) + len(m.Body)
	if m.Sub != nil {
		n += len(m.Sub.tail)
	}
	return n
}

// resyncHeads holds the shared start of a resync message for each reason.
var resyncHeads = map[protocol.ResyncReason][]byte{}

func init() {
	for _, r := range []protocol.ResyncReason{protocol.ResyncEpoch, protocol.ResyncTooOld, protocol.ResyncGap, protocol.ResyncSlowConsumer} {
		resyncHeads[r] = []byte(`{"type":"resync","reason":` + quote(string(r)))
	}
}

// NewResync returns the resync message for sub with reason.
func NewResync(sub *Subscription, reason protocol.ResyncReason) Message {
	head, ok := resyncHeads[reason]
	if !ok {
		head = []byte(`{"type":"resync","reason":` + quote(string(reason)))
	}
	return Message{Kind: KindResync, Reason: reason, Sub: sub, Head: head}
}

// Subscriber receives the messages of its subscriptions. The gateway's
// connections implement it.
type Subscriber interface {
	// Enqueue queues m for sending and returns at once. The hub calls it
	// with a channel's lock held, in the channel's commit order, so it must
	// never block, wait for the network, or call back into the Hub. A
	// subscriber that cannot keep up deals with it on its own (drops its
	// queued changes and sends a resync, or closes).
	Enqueue(m Message)
}

// Subscription is one subscription of one [Subscriber] to one channel,
// optionally filtered and restricted by an authorization rule. Create it
// with [NewSubscription] or [NewSeedSubscription] and start it with
// [Hub.Subscribe].
type Subscription struct {
	id         string
	channel    string
	cond       condition // scope conditions, then the client's filter
	view       *View
	seed       bool
	subscriber Subscriber
	// tail is the pre-encoded end of every v1 message: `,"sub":"<id>"}`.
	tail []byte
	// index is the position in the channel's subscription list, guarded by the channel's lock.
	index  int
	active atomic.Bool
}

// NewSubscription returns a protocol v1 subscription named id (the client's
// sub) on channel for subscriber. A nil filter selects every row; a filter
// that cannot be evaluated returns a *protocol.Error with code bad_filter.
func NewSubscription(subscriber Subscriber, id, channel string, f *protocol.Filter) (*Subscription, error) {
	s := &Subscription{id: id, channel: channel, subscriber: subscriber, index: -1}
	if f != nil {
		cf, err := compileFilter(f)
		if err != nil {
			err.Sub = id
			return nil, err
		}
		s.cond = condition{cf}
	}
	s.tail = []byte(`,"sub":` + quote(id) + `}`)
	return s, nil
}

// NewSeedSubscription returns a seed-protocol subscription on channel: it
// receives every change as the bare payload, with no acks and no resyncs.
func NewSeedSubscription(subscriber Subscriber, channel string) *Subscription {
	return &Subscription{channel: channel, seed: true, subscriber: subscriber, index: -1}
}

// Restrict applies an authorization rule to s: every change is matched
// on the scope conditions ANDed with the client's filter (so a filter can
// only narrow a scope), and seen through view (nil: every column). A scope
// condition that cannot be evaluated returns an error. Call it before
// [Hub.Subscribe].
func (s *Subscription) Restrict(scope []protocol.Filter, view *View) error {
	cond := make(condition, 0, len(scope)+len(s.cond))
	for i := range scope {
		cf, err := compileFilter(&scope[i])
		if err != nil {
			return fmt.Errorf("scope on column %q: %w", scope[i].Column, err)
		}
		cond = append(cond, cf)
	}
	s.cond = append(cond, s.cond...)
	s.view = view
	return nil
}

// ID returns the client's name for the subscription ("" for the seed protocol).
func (s *Subscription) ID() string { return s.id }

// Channel returns the channel the subscription is on.
func (s *Subscription) Channel() string { return s.channel }

// Seed reports whether the subscription speaks the seed protocol.
func (s *Subscription) Seed() bool { return s.seed }

// Active reports whether the subscription is subscribed: from the start of
// [Hub.Subscribe] (so while its ack and replay are enqueued) until
// [Hub.Unsubscribe].
func (s *Subscription) Active() bool { return s.active.Load() }

// quote returns s as a JSON string.
func quote(s string) string {
	b, _ := json.Marshal(s) // a string always marshals (invalid UTF-8 is replaced)
	return string(b)
}
