package ingest

import (
	"sync"
	"time"
)

// logEvery is the shortest time between two log lines of one kind on one
// channel. The lines in between are held back and only counted (the metrics
// count every event), so a flood of bad notifications cannot flood the log.
const logEvery = 10 * time.Second

// throttle lets one log line per key through every logEvery.
type throttle struct {
	now  func() time.Time
	mu   sync.Mutex
	keys map[string]*throttled
}

type throttled struct {
	next time.Time // the earliest time of the next line
	held int       // lines held back since the last one
}

func newThrottle() *throttle {
	return &throttle{now: time.Now, keys: make(map[string]*throttled)}
}

// allow reports whether a line for key may be logged now and, if so, how
// many lines for key were held back since the last one.
func (t *throttle) allow(key string) (ok bool, held int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	k := t.keys[key]
	if k == nil {
		k = &throttled{}
		t.keys[key] = k
	}
	if now.Before(k.next) {
		k.held++
		return false, 0
	}
	held = k.held
	k.next, k.held = now.Add(logEvery), 0
	return true, held
}
