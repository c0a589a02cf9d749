package listener

import (
	"fmt"
	"math"
	"time"
)

// Backoff is the retry policy of the listener's connection: capped
// exponential backoff with full jitter. The n-th consecutive failed attempt
// (n = 0, 1, …) is followed by a wait drawn uniformly from
// [0, min(Max, Initial·Multiplier^n)). A zero field takes its default.
type Backoff struct {
	// Initial is the ceiling of the wait after the first failure. Default 100ms.
	Initial time.Duration
	// Max caps the ceiling of every wait. Default 10s.
	Max time.Duration
	// Multiplier grows the ceiling after each further failure. Default 2.
	Multiplier float64
}

// The defaults of Backoff.
const (
	DefaultBackoffInitial    = 100 * time.Millisecond
	DefaultBackoffMax        = 10 * time.Second
	DefaultBackoffMultiplier = 2.0
)

// withDefaults returns b with zero fields set to their defaults, or an error
// naming the first field that is out of range.
func (b Backoff) withDefaults() (Backoff, error) {
	if b.Initial == 0 {
		b.Initial = DefaultBackoffInitial
	}
	if b.Max == 0 {
		b.Max = DefaultBackoffMax
	}
	if b.Multiplier == 0 {
		b.Multiplier = DefaultBackoffMultiplier
	}
	switch {
	case b.Initial < 0:
		return b, fmt.Errorf("backoff initial %v is negative", b.Initial)
	case b.Max < b.Initial:
		return b, fmt.Errorf("backoff max %v is below initial %v", b.Max, b.Initial)
	case b.Multiplier < 1 || math.IsNaN(b.Multiplier) || math.IsInf(b.Multiplier, 0):
		return b, fmt.Errorf("backoff multiplier %v is not a finite number >= 1", b.Multiplier)
	}
	return b, nil
}

// ceiling is the upper bound of the wait after failure number attempt (0-based).
func (b Backoff) ceiling(attempt int) time.Duration {
	c := float64(b.Initial) * math.Pow(b.Multiplier, float64(attempt))
	if c >= float64(b.Max) {
		return b.Max
	}
	return time.Duration(c)
}

// delay is the wait after failure number attempt, with r drawn uniformly
// from [0, 1) supplying the jitter.
func (b Backoff) delay(attempt int, r float64) time.Duration {
	return time.Duration(r * float64(b.ceiling(attempt)))
}
