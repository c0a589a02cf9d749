// Package hub fans row changes out to subscriptions. It keeps, per channel,
// a monotonically increasing seq, a ring buffer of recent changes for
// resume, and the subscriptions, sharded by channel the way centrifuge's
// hub is. Each change is encoded at most once per form it takes (as
// received, as an INSERT, as a DELETE) and per [View] of an authorization
// rule, lazily, and the same bytes go to every subscriber.
package hub

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"

	"github.com/ripple-rt/ripple/backend/protocol"
)

// DefaultRingSize is the number of changes kept per channel for resume when
// [Options.RingSize] is zero.
const DefaultRingSize = 1024

// numShards is the number of shards the channels are spread over.
const numShards = 64

// Options configures a Hub.
type Options struct {
	// RingSize is how many recent changes each channel keeps so that a
	// reconnecting client can resume. Default 1024 ([DefaultRingSize]).
	// Memory: each kept change holds its raw payload and its decoded row
	// (at most 8000 bytes as the trigger sends it, the whole row once
	// hydrated), about 2.3 × the payload + 0.9 KB as measured, plus the
	// derived forms made for its subscribers (INSERT/DELETE forms of
	// UPDATEs that moved rows across a filter or scope, and one form per
	// authorization rule that strips columns); so 1024 changes of 600
	// bytes cost about 2.1 MiB per channel, of 2 KB about 5.3 MiB.
	RingSize int
}

// Hub holds the subscriptions and recent changes of every channel.
// Its methods are safe for concurrent use.
type Hub struct {
	epoch       string
	quotedEpoch string
	ringSize    int
	seed        maphash.Seed
	shards      [numShards]shard
}

type shard struct {
	mu       sync.RWMutex
	channels map[string]*channel
}

// channel is the state of one channel. mu orders Publish, Gap, Subscribe
// and Unsubscribe: everything a subscriber receives is enqueued under it.
type channel struct {
	mu     sync.Mutex
	name   string
	quoted string // name as a JSON string
	seq    uint64
	// gapAt is the seq at the most recent gap (hasGap): notifications
	// after change gapAt may have been lost, so no resume from a position
	// at or before it may be served from the ring.
	gapAt  uint64
	hasGap bool
	ring   []*entry // entry with seq n at n % len(ring)
	subs   []*Subscription
}

// New returns a Hub with a fresh random epoch.
func New(opts Options) (*Hub, error) {
	if opts.RingSize < 0 {
		return nil, fmt.Errorf("hub: RingSize must not be negative, got %d", opts.RingSize)
	}
	if opts.RingSize == 0 {
		opts.RingSize = DefaultRingSize
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("hub: make epoch: %w", err)
	}
	h := &Hub{epoch: hex.EncodeToString(b[:]), ringSize: opts.RingSize, seed: maphash.MakeSeed()}
	h.quotedEpoch = quote(h.epoch)
	for i := range h.shards {
		h.shards[i].channels = make(map[string]*channel)
	}
	return h, nil
}

// Epoch returns the random id of this process's change streams: a resume
// position is only valid in the epoch it came from.
func (h *Hub) Epoch() string { return h.epoch }

// Seq returns the current seq of channel (0 before its first change).
func (h *Hub) Seq(name string) uint64 {
	ch := h.channel(name)
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.seq
}

func (h *Hub) channel(name string) *channel {
	sh := &h.shards[maphash.String(h.seed, name)%numShards]
	sh.mu.RLock()
	ch, ok := sh.channels[name]
	sh.mu.RUnlock()
	if ok {
		return ch
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if ch, ok = sh.channels[name]; !ok {
		ch = &channel{name: name, quoted: quote(name), ring: make([]*entry, h.ringSize)}
		sh.channels[name] = ch
	}
	return ch
}

// Publish records change as the next change of channel and enqueues it to
// every subscription it concerns. raw is the change's JSON as received (or
// re-encoded after hydration): one valid JSON object. The hub keeps it and
// sends it as is (compacted if it holds a newline), so the caller must not
// modify it afterwards. Publish must be called from one goroutine, in
// commit order.
func (h *Hub) Publish(name string, change protocol.NotificationPayload, raw []byte) {
	ch := h.channel(name)
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.seq++
	e := newEntry(ch.seq, change, raw)
	ch.ring[ch.seq%uint64(len(ch.ring))] = e
	for _, s := range ch.subs {
		if m, ok := e.message(s); ok {
			s.subscriber.Enqueue(m)
		}
	}
}

// Gap records that the listener lost notifications on channel (it
// reconnected): no resume crosses this point, and every v1 subscription on
// the channel gets a resync with reason listener_gap.
func (h *Hub) Gap(name string) {
	ch := h.channel(name)
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.gapAt, ch.hasGap = ch.seq, true
	for _, s := range ch.subs {
		if !s.seed {
			s.subscriber.Enqueue(NewResync(s, protocol.ResyncGap))
		}
	}
}

// Subscribe starts s. Atomically with respect to Publish, it enqueues the
// `subscribed` ack and then, when resume is given, either the missed
// changes from the ring (filtered, in order) or a resync, so no live change
// can come before them. Resume rules: same epoch, no gap since the
// position, and the ring still holds seq+1 → replay; otherwise resync with
// reason epoch_changed, listener_gap or position_unavailable.
// Seed-protocol subscriptions get no ack and no resume.
func (h *Hub) Subscribe(s *Subscription, resume *protocol.Position) {
	ch := h.channel(s.channel)
	ch.mu.Lock()
	defer ch.mu.Unlock()
	// Active before anything is enqueued: a subscriber that overflows
	// during the replay must resync s, not drop its changes silently.
	s.active.Store(true)
	if !s.seed {
		s.subscriber.Enqueue(Message{Kind: KindSubscribed, Sub: s, Head: h.subscribedHead(ch)})
		if resume != nil {
			h.resume(ch, s, resume)
		}
	}
	s.index = len(ch.subs)
	ch.subs = append(ch.subs, s)
}

func (h *Hub) subscribedHead(ch *channel) []byte {
	b := make([]byte, 0, 64+len(ch.quoted)+len(h.quotedEpoch))
	b = append(b, `{"type":"subscribed","channel":`...)
	b = append(b, ch.quoted...)
	b = append(b, `,"epoch":`...)
	b = append(b, h.quotedEpoch...)
	b = append(b, `,"seq":`...)
	return strconv.AppendUint(b, ch.seq, 10)
}

// resume replays the changes after pos to s, or enqueues a resync. The
// caller holds ch.mu.
func (h *Hub) resume(ch *channel, s *Subscription, pos *protocol.Position) {
	var reason protocol.ResyncReason
	switch {
	case pos.Epoch != h.epoch:
		reason = protocol.ResyncEpoch
	case pos.Seq > ch.seq:
		reason = protocol.ResyncTooOld
	case ch.hasGap && ch.gapAt >= pos.Seq:
		reason = protocol.ResyncGap
	case pos.Seq == ch.seq:
		return
	case ch.seq-pos.Seq > uint64(len(ch.ring)):
		reason = protocol.ResyncTooOld
	}
	if reason != "" {
		s.subscriber.Enqueue(NewResync(s, reason))
		return
	}
	for seq := pos.Seq + 1; seq <= ch.seq; seq++ {
		e := ch.ring[seq%uint64(len(ch.ring))]
		if m, ok := e.message(s); ok {
			s.subscriber.Enqueue(m)
		}
	}
}

// Unsubscribe stops s. After it returns, nothing more is enqueued for s.
// Unsubscribing a subscription that is not active does nothing.
func (h *Hub) Unsubscribe(s *Subscription) {
	ch := h.channel(s.channel)
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if s.index < 0 {
		return
	}
	last := len(ch.subs) - 1
	moved := ch.subs[last]
	ch.subs[s.index] = moved
	moved.index = s.index
	ch.subs[last] = nil
	ch.subs = ch.subs[:last]
	s.index = -1
	s.active.Store(false)
}
