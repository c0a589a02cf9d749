package gateway

import (
	"sync"
	"time"
)

// deadlines is one timer wheel for every connection's authentication
// deadline (the end of the grace period for its first token, then its
// token's exp), so that no connection keeps a timer of its own. Deadlines
// fall into one-second buckets; one ticker fires the due buckets.
type deadlines struct {
	mu      sync.Mutex
	buckets map[int64]map[*conn]struct{} // by unix second, rounded up
	fired   int64                        // every bucket up to this second has fired
}

func newDeadlines(now time.Time) *deadlines {
	return &deadlines{buckets: make(map[int64]map[*conn]struct{}), fired: now.Unix()}
}

// deadlineKind says what passes at a connection's deadline.
type deadlineKind uint8

const (
	graceEnds    deadlineKind = iota + 1 // the connection sent no valid token in time
	tokenExpires                         // its token's exp
)

// set makes at c's deadline of kind, replacing the one it had. A zero at
// removes it.
func (d *deadlines) set(c *conn, at time.Time, kind deadlineKind) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.removeLocked(c)
	if at.IsZero() {
		return
	}
	sec := at.Unix()
	if at.After(time.Unix(sec, 0)) {
		sec++ // round up: the bucket fires once the deadline has passed
	}
	if sec <= d.fired {
		sec = d.fired + 1
	}
	b := d.buckets[sec]
	if b == nil {
		b = make(map[*conn]struct{})
		d.buckets[sec] = b
	}
	b[c] = struct{}{}
	c.deadlineSlot, c.deadlineKind = sec, kind
}

func (d *deadlines) removeLocked(c *conn) {
	if c.deadlineSlot == 0 {
		return
	}
	if b := d.buckets[c.deadlineSlot]; b != nil {
		delete(b, c)
		if len(b) == 0 {
			delete(d.buckets, c.deadlineSlot)
		}
	}
	c.deadlineSlot = 0
}

// fire calls expire for every connection whose deadline is at or before
// now, and forgets those deadlines. expire runs under the wheel's lock,
// so a fresh token (which calls set) cannot slip in between the check and
// the close; it must not call back into d.
func (d *deadlines) fire(now time.Time, expire func(*conn, deadlineKind)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	until := now.Unix()
	if len(d.buckets) == 0 {
		d.fired = until
		return
	}
	for sec := d.fired + 1; sec <= until; sec++ {
		for c := range d.buckets[sec] {
			c.deadlineSlot = 0
			expire(c, c.deadlineKind)
		}
		delete(d.buckets, sec)
	}
	d.fired = max(d.fired, until)
}
