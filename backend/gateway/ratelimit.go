package gateway

import "time"

// tokenBucket is a connection's rate limit: it holds up to burst tokens,
// refilled at rate per second; each admitted message takes one. It is
// touched only by the connection's read goroutine.
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
}

// take reports whether a message may pass at now, and takes its token.
func (b *tokenBucket) take(now time.Time) bool {
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
