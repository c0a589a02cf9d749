package gateway

import (
	"slices"
	"sync"
	"time"

	"github.com/lxzan/gws"

	"github.com/ripple-rt/ripple/backend/hub"
	"github.com/ripple-rt/ripple/backend/protocol"
)

// maxFrameBytes is the size past which a batch is split into several
// frames (a single larger message still goes out whole).
const maxFrameBytes = 1 << 20

// keepCapacity is the largest queue capacity a connection keeps for reuse
// after a flush. A burst's bigger slices go to bigQueues, shared by every
// connection, so that idle connections stay small and bursts do not
// regrow a slice from scratch each time.
const keepCapacity = 128

// bigQueues holds queue slices of more than keepCapacity that a flush is
// done with, empty, for the next queue that outgrows keepCapacity.
var bigQueues sync.Pool

// partsPool holds the scratch slices of writes (the pieces of a frame
// handed to gws): a write borrows one for its duration, so no connection
// keeps one and a slice grown for a burst serves the next burst.
var partsPool = sync.Pool{New: func() any { return new([][]byte) }}

// growQueue returns items in a slice with room for more: a pooled one when
// one is big enough, else a new one twice as big. The old slice goes to
// bigQueues if it is big.
func growQueue(items []hub.Message) []hub.Message {
	var grown []hub.Message
	if bp, _ := bigQueues.Get().(*[]hub.Message); bp != nil && cap(*bp) > len(items) {
		grown = append((*bp)[:0], items...)
	} else { // a pooled slice too small is left to the garbage collector
		grown = slices.Grow(items, len(items))
	}
	clear(items)
	recycleQueue(items)
	return grown
}

// recycleQueue puts an empty big queue slice into bigQueues; a small one is
// left alone.
func recycleQueue(items []hub.Message) {
	if cap(items) <= keepCapacity {
		return
	}
	items = items[:0]
	bigQueues.Put(&items)
}

var newline = []byte{'\n'}

// linger is how long a flush of a streaming connection (one whose previous
// flush ended less than linger before this one started) waits on the task
// queue for more to write before it ends. gws runs a connection's task
// queue on a new goroutine each time it was empty; a connection streaming
// a few hundred changes a second so keeps one goroutine (and its grown
// stack) instead of starting one per change, while an idle connection has
// none, and a broadcast to idle connections costs no waiting.
const linger = 20 * time.Millisecond

// clockStart is the origin of the monotonic times kept as durations.
var clockStart = time.Now()

// wakeChans and lingerTimers serve lingering flushes, so that no idle
// connection keeps a channel or timer.
var (
	wakeChans    = sync.Pool{New: func() any { return make(chan struct{}, 1) }}
	lingerTimers = sync.Pool{New: func() any {
		t := time.NewTimer(time.Hour)
		t.Stop()
		return t
	}}
)

// sendQueue is a connection's bounded queue of outbound messages. Enqueue
// never blocks: it appends and, if no flush is running, schedules one on
// gws's per-connection task queue (Conn.Async). A flush writes everything
// queued by then as one frame of newline-separated messages (seed
// protocol: one frame per payload), again while more was queued meanwhile,
// and, on a streaming connection, waits up to linger for more before it ends.
type sendQueue struct {
	c *conn

	mu    sync.Mutex
	items []hub.Message
	spare []hub.Message // the previous batch's slice, for reuse
	// running is set while a flush is scheduled or running: it will write
	// what is queued.
	running bool
	// wake is set while the running flush lingers: a signal on it ends the wait.
	wake chan struct{}
	// yield asks the running flush to end at once (with the rest
	// rescheduled) so that other tasks of the task queue run: a ping, a pong.
	yield bool
	// streaming is set when the running flush started within linger of the
	// previous one's end, which ended at ended (since clockStart).
	streaming bool
	ended     time.Duration
	// resyncsPending counts slow_consumer resyncs queued or being written.
	resyncsPending int
	closing        bool // nothing more is queued
	closeCode      uint16
	closeReason    string

	flushFn, closeFn func()
}

func (q *sendQueue) init(c *conn) {
	q.c = c
	q.flushFn, q.closeFn = q.flush, q.writeClose
}

// Enqueue implements [hub.Subscriber]: it queues m without blocking. When
// the queue is full, the connection's queued changes are dropped and every
// subscription that lost one gets a resync (slow_consumer); if that
// happens again before such a resync was written, or on a seed-protocol
// connection (which cannot resync), the connection is closed with 4008.
func (q *sendQueue) Enqueue(m hub.Message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing {
		return
	}
	if m.Kind == hub.KindResync {
		q.c.srv.countResync(m.Reason)
	}
	if len(q.items) >= q.c.srv.opts.SendQueueSize {
		q.overflowLocked(m)
		return
	}
	if len(q.items) == cap(q.items) && cap(q.items) >= keepCapacity {
		q.items = growQueue(q.items)
	}
	q.items = append(q.items, m)
	q.scheduleLocked()
}

func (q *sendQueue) scheduleLocked() {
	if !q.running {
		q.running = true
		q.streaming = time.Since(clockStart)-q.ended < linger
		q.c.socket.Async(q.flushFn)
		return
	}
	q.wakeLocked()
}

// wakeLocked ends the running flush's wait, if it lingers.
func (q *sendQueue) wakeLocked() {
	if q.wake != nil {
		select {
		case q.wake <- struct{}{}:
		default: // already signalled
		}
	}
}

// async runs f on the connection's task queue, after the running flush,
// which ends at once for it.
func (q *sendQueue) async(f func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.c.socket.Async(f)
	if q.running {
		q.yield = true
		q.wakeLocked()
	}
}

func (q *sendQueue) overflowLocked(m hub.Message) {
	if q.c.seed || q.resyncsPending > 0 {
		q.warn("closing a client too slow to read its changes", "queue", len(q.items))
		q.closeLocked(protocol.ClosePolicy, "slow consumer: send queue overflowed", false)
		return
	}
	var affected []*hub.Subscription
	seen := make(map[*hub.Subscription]bool)
	dropped := 0
	dropChange := func(d hub.Message) {
		dropped++
		if !seen[d.Sub] {
			seen[d.Sub] = true
			affected = append(affected, d.Sub)
		}
	}
	kept := q.items[:0]
	for _, it := range q.items {
		if it.Kind == hub.KindChange {
			dropChange(it)
		} else {
			kept = append(kept, it)
		}
	}
	clear(q.items[len(kept):])
	q.items = kept
	if m.Kind == hub.KindChange {
		dropChange(m)
	}
	q.c.srv.opts.Metrics.Drops.Add(float64(dropped))
	for _, s := range affected {
		if s.Active() {
			q.items = append(q.items, hub.NewResync(s, protocol.ResyncSlowConsumer))
			q.resyncsPending++
			q.c.srv.countResync(protocol.ResyncSlowConsumer)
		}
	}
	if m.Kind != hub.KindChange {
		q.items = append(q.items, m)
	}
	q.warn("slow client: dropped its queued changes and asked it to resync", "dropped", dropped, "subscriptions", len(affected))
	if len(q.items) > q.c.srv.opts.SendQueueSize {
		q.closeLocked(protocol.ClosePolicy, "slow consumer: send queue overflowed", false)
		return
	}
	q.scheduleLocked()
}

// warn logs a warning on a goroutine of its own: overflows happen on the
// hub's publisher, under a channel's lock, which must not wait for the
// log's writer.
func (q *sendQueue) warn(msg string, args ...any) {
	go q.c.logger().Warn(msg, args...)
}

// close stops queueing and schedules a close frame with code and reason,
// after what is queued when flushFirst is set, instead of it otherwise.
func (q *sendQueue) close(code uint16, reason string, flushFirst bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closeLocked(code, reason, flushFirst)
}

func (q *sendQueue) closeLocked(code uint16, reason string, flushFirst bool) {
	if q.closing {
		return
	}
	q.closing = true
	if !flushFirst {
		q.dropAllLocked()
	}
	q.closeCode, q.closeReason = code, reason
	// The running flush writes what is left (when flushFirst) and ends
	// without lingering; the close frame follows it on the task queue.
	q.c.socket.Async(q.closeFn)
	q.wakeLocked()
}

// closingNow reports whether the connection is being closed.
func (q *sendQueue) closingNow() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closing
}

// dropAllLocked empties the queue, counting the changes in it as dropped.
func (q *sendQueue) dropAllLocked() {
	dropped := 0
	for _, it := range q.items {
		if it.Kind == hub.KindChange {
			dropped++
		}
	}
	q.c.srv.opts.Metrics.Drops.Add(float64(dropped))
	clear(q.items)
	q.items = q.items[:0]
}

func (q *sendQueue) writeClose() {
	q.mu.Lock()
	code, reason := q.closeCode, q.closeReason
	q.mu.Unlock()
	_ = q.c.socket.WriteClose(code, []byte(reason))
}

// discard is called once the connection is closed: it drops what is queued.
func (q *sendQueue) discard() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closing = true
	q.items, q.spare = nil, nil
	q.wakeLocked()
}

// flush writes everything queued, batch after batch, lingering for more
// between them. It runs on gws's task queue, so flushes, pings and close
// frames of one connection never overlap.
func (q *sendQueue) flush() {
	for {
		q.mu.Lock()
		if len(q.items) == 0 && !q.lingerLocked() {
			q.running, q.yield = false, false
			q.ended = time.Since(clockStart)
			q.mu.Unlock()
			return
		}
		if q.yield && !q.closing { // closing: the rest goes before the close frame
			q.yield = false
			q.c.socket.Async(q.flushFn) // the rest, after the other tasks
			q.mu.Unlock()
			return
		}
		batch := q.items
		q.items, q.spare = q.spare, nil
		q.mu.Unlock()
		q.send(batch)
	}
}

// lingerLocked waits up to linger for something to be queued and reports
// whether it was; it does not wait unless the connection is streaming, nor
// when it is closing or other tasks wait. q.mu is held, and released
// during the wait.
func (q *sendQueue) lingerLocked() bool {
	if !q.streaming || q.closing || q.yield {
		return false
	}
	wake := wakeChans.Get().(chan struct{})
	t := lingerTimers.Get().(*time.Timer)
	t.Reset(linger)
	q.wake = wake
	q.mu.Unlock()
	select {
	case <-wake:
	case <-t.C:
	}
	t.Stop()
	lingerTimers.Put(t)
	q.mu.Lock()
	q.wake = nil
	select {
	case <-wake: // signalled after the timer fired
	default:
	}
	wakeChans.Put(wake)
	return len(q.items) > 0
}

// send writes batch and recycles it.
func (q *sendQueue) send(batch []hub.Message) {
	err := q.write(batch)
	if err != nil {
		q.c.debug("write failed", "err", err)
	}

	resyncs := 0
	for i := range batch {
		if batch[i].Kind == hub.KindResync && batch[i].Reason == protocol.ResyncSlowConsumer {
			resyncs++
		}
	}
	n := len(batch)
	clear(batch)
	q.mu.Lock()
	q.resyncsPending -= resyncs
	if cap(batch) <= keepCapacity && !q.closing {
		q.spare = batch[:0]
	} else {
		recycleQueue(batch)
	}
	q.mu.Unlock()
	if err == nil {
		q.c.srv.opts.Metrics.MessagesOut.Add(float64(n))
	}
}

// write sends batch: for v1 as frames of newline-separated messages, for
// the seed protocol one frame per payload. The bytes go to gws as they
// are, shared with every other subscriber.
func (q *sendQueue) write(batch []hub.Message) error {
	socket := q.c.socket
	bp := partsPool.Get().(*[][]byte)
	parts := (*bp)[:0]
	defer func() {
		clear(parts)
		*bp = parts[:0]
		partsPool.Put(bp)
	}()
	if q.c.seed {
		for i := range batch {
			parts = batch[i].AppendParts(parts[:0])
			if err := socket.Writev(gws.OpcodeText, parts...); err != nil {
				return err
			}
		}
		return nil
	}
	size := 0
	for i := range batch {
		m := &batch[i]
		n := m.Len()
		if len(parts) > 0 && size+1+n > maxFrameBytes {
			if err := socket.Writev(gws.OpcodeText, parts...); err != nil {
				return err
			}
			parts, size = parts[:0], 0
		}
		if len(parts) > 0 {
			parts = append(parts, newline)
			size++
		}
		parts = m.AppendParts(parts)
		size += n
	}
	return socket.Writev(gws.OpcodeText, parts...)
}

func (s *Server) countResync(reason protocol.ResyncReason) {
	if ctr, ok := s.resyncs[reason]; ok {
		ctr.Inc()
		return
	}
	s.opts.Metrics.Resyncs.WithLabelValues(string(reason)).Inc()
}
