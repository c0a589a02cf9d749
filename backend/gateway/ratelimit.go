package gateway

import "time"

// tokenBucket is a connection's rate limit: it holds up to burst tokens,
// refilled at rate per second; each admitted message takes one. Rate and
// burst are the server's, passed in, so each connection keeps 16 bytes.
// It is touched only by the connection's read goroutine.
type tokenBucket struct {
	tokens float64
	last   int64 // unix nanoseconds of the previous take; 0 before the first
}

// take reports whether a message may pass at now, and takes its token.
func (b *tokenBucket) take(now time.Time, rate, burst float64) bool {
	ns := now.UnixNano()
	if b.last == 0 {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+float64(ns-b.last)/float64(time.Second)*rate)
	}
	b.last = ns
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
