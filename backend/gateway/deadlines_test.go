package gateway

import (
	"testing"
	"time"
)

func TestDeadlinesFireOnceWhenDue(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_800_000_000, 0)
	d := newDeadlines(t0)
	a, b, gone := &conn{}, &conn{}, &conn{}
	d.set(a, t0.Add(1500*time.Millisecond), tokenExpires)
	d.set(b, t0.Add(time.Second), graceEnds)
	d.set(gone, t0.Add(time.Second), graceEnds)
	d.set(gone, time.Time{}, 0) // closed: forgotten
	fired := map[*conn]deadlineKind{}
	expire := func(c *conn, k deadlineKind) {
		if _, twice := fired[c]; twice {
			t.Fatal("a deadline fired twice")
		}
		fired[c] = k
	}
	d.fire(t0.Add(999*time.Millisecond), expire)
	if len(fired) != 0 {
		t.Fatalf("fired early: %v", fired)
	}
	d.fire(t0.Add(time.Second), expire)
	if len(fired) != 1 || fired[b] != graceEnds {
		t.Fatalf("at 1s: %v, want only b's grace", fired)
	}
	// a sends a fresh token before its deadline: the old one is replaced.
	d.set(a, t0.Add(time.Hour), tokenExpires)
	d.fire(t0.Add(3*time.Second), expire)
	if len(fired) != 1 {
		t.Fatalf("a replaced deadline fired: %v", fired)
	}
	d.fire(t0.Add(time.Hour), expire)
	if fired[a] != tokenExpires || len(d.buckets) != 0 {
		t.Fatalf("at 1h: %v, buckets left %d", fired, len(d.buckets))
	}
	// A deadline already past fires at the next tick, not never.
	d.set(gone, t0, graceEnds)
	d.fire(t0.Add(time.Hour+time.Second), expire)
	if _, ok := fired[gone]; !ok {
		t.Fatal("a deadline set in the past never fired")
	}
}

func TestTokenBucket(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_800_000_000, 0)
	var b tokenBucket
	take := func(at time.Time) bool { return b.take(at, 2, 3) }
	for i := range 3 {
		if !take(t0) {
			t.Fatalf("burst message %d refused", i)
		}
	}
	if take(t0) {
		t.Fatal("a message over the burst passed")
	}
	half := t0.Add(500 * time.Millisecond)
	if !take(half) || take(half) {
		t.Fatal("half a second at 2/s should admit exactly one message")
	}
	later := t0.Add(time.Hour)
	if !take(later) || !take(later) || !take(later) || take(later) {
		t.Fatal("an idle bucket refills to its burst, no further")
	}
}
