package listener

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestBackoffDefaultsAndValidation(t *testing.T) {
	t.Parallel()
	b, err := Backoff{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	want := Backoff{Initial: DefaultBackoffInitial, Max: DefaultBackoffMax, Multiplier: DefaultBackoffMultiplier}
	if b != want {
		t.Fatalf("defaults = %+v, want %+v", b, want)
	}
	for _, bad := range []Backoff{
		{Initial: -time.Second},
		{Initial: time.Second, Max: time.Millisecond},
		{Multiplier: 0.5},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func TestBackoffDelayGrowsCapsAndJitters(t *testing.T) {
	t.Parallel()
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2}
	tests := []struct {
		attempt int
		r       float64
		want    time.Duration
	}{
		{0, 0.999999, 99999900 * time.Nanosecond},
		{1, 0.5, 100 * time.Millisecond},
		{2, 0.5, 200 * time.Millisecond},
		{3, 0.5, 400 * time.Millisecond},
		{4, 0.5, 500 * time.Millisecond}, // ceiling 1600ms capped at 1s
		{60, 0.5, 500 * time.Millisecond},
		{5000, 0.25, 250 * time.Millisecond}, // no overflow far past the cap
		{3, 0, 0},                            // full jitter reaches zero
	}
	for _, tt := range tests {
		if got := b.delay(tt.attempt, tt.r); got != tt.want {
			t.Errorf("delay(%d, %v) = %v, want %v", tt.attempt, tt.r, got, tt.want)
		}
	}
}

// TestRunBacksOffWhileConnectFails drives Run with a Connect that always
// fails and a fake sleeper, and checks the waits it chose.
func TestRunBacksOffWhileConnectFails(t *testing.T) {
	t.Parallel()
	const failures = 8
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	attempts := 0
	l, err := New(Config{
		Connect: func(context.Context) (*pgx.Conn, error) {
			attempts++
			if attempts == failures {
				cancel()
			}
			return nil, errors.New("connection refused")
		},
		Channels: []string{"projects"},
		Handler:  nopHandler{},
		Backoff:  Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	jitter := []float64{0.9, 0.5, 0.1, 0.99}
	var delays []time.Duration
	l.random = func() float64 { return jitter[len(delays)%len(jitter)] }
	l.sleep = func(_ context.Context, d time.Duration) error { delays = append(delays, d); return nil }

	if err := l.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	ms := time.Millisecond
	want := []time.Duration{
		90 * ms,  // 0.9 × 100ms
		100 * ms, // 0.5 × 200ms
		40 * ms,  // 0.1 × 400ms
		792 * ms, // 0.99 × 800ms
		900 * ms, // 0.9 × 1s (capped)
		500 * ms, // 0.5 × 1s
		100 * ms, // 0.1 × 1s
	}
	if !slices.Equal(delays, want) {
		t.Fatalf("delays = %v, want %v", delays, want)
	}
	if l.Ready() {
		t.Fatal("Ready after never connecting")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	connect := func(context.Context) (*pgx.Conn, error) { return nil, errors.New("unused") }
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no connect", Config{Channels: []string{"a"}, Handler: nopHandler{}}},
		{"no handler", Config{Connect: connect, Channels: []string{"a"}}},
		{"no channels", Config{Connect: connect, Handler: nopHandler{}}},
		{"empty channel", Config{Connect: connect, Handler: nopHandler{}, Channels: []string{""}}},
		{"duplicate channel", Config{Connect: connect, Handler: nopHandler{}, Channels: []string{"a", "a"}}},
		{"channel too long", Config{Connect: connect, Handler: nopHandler{}, Channels: []string{strings.Repeat("x", 64)}}},
		{"NUL in channel", Config{Connect: connect, Handler: nopHandler{}, Channels: []string{"a\x00b"}}},
		{"bad backoff", Config{Connect: connect, Handler: nopHandler{}, Channels: []string{"a"}, Backoff: Backoff{Multiplier: 0.1}}},
		{"negative timeout", Config{Connect: connect, Handler: nopHandler{}, Channels: []string{"a"}, ConnectTimeout: -1}},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg); err == nil {
			t.Errorf("%s: New accepted it", tt.name)
		}
	}
	if _, err := New(Config{Connect: connect, Handler: nopHandler{}, Channels: []string{strings.Repeat("x", 63), "billing.invoices"}}); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

type nopHandler struct{}

func (nopHandler) Handle(context.Context, *pgconn.Notification) {}
func (nopHandler) Gap(string)                                   {}
