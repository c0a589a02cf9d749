package listener

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ripple-rt/ripple/backend/internal/logbuf"
	"github.com/ripple-rt/ripple/backend/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// waitLimit bounds every wait on the listener; reaching it fails the test.
const waitLimit = 15 * time.Second

// event is one call the listener made on its Handler.
type event struct {
	gap     bool
	channel string
	payload string
}

func (e event) String() string {
	if e.gap {
		return "gap " + e.channel
	}
	return e.channel + ":" + e.payload
}

// recorder is a Handler that records every call, in order.
type recorder struct {
	events chan event
	onGap  func(channel string) // runs inside Gap, on the listener goroutine
}

func newRecorder() *recorder { return &recorder{events: make(chan event, 10000)} }

func (r *recorder) Handle(_ context.Context, n *pgconn.Notification) {
	r.events <- event{channel: n.Channel, payload: n.Payload}
}

func (r *recorder) Gap(channel string) {
	if r.onGap != nil {
		r.onGap(channel)
	}
	r.events <- event{gap: true, channel: channel}
}

// expect fails the test unless the next events are exactly want.
func (r *recorder) expect(t *testing.T, want ...event) {
	t.Helper()
	timeout := time.After(waitLimit)
	for i, w := range want {
		select {
		case got := <-r.events:
			if got != w {
				t.Fatalf("event %d = %v, want %v", i, got, w)
			}
		case <-timeout:
			t.Fatalf("timed out waiting for event %d (%v)", i, w)
		}
	}
}

// expectNone fails the test if an event is waiting.
func (r *recorder) expectNone(t *testing.T) {
	t.Helper()
	select {
	case got := <-r.events:
		t.Fatalf("unexpected event %v", got)
	default:
	}
}

// dialer opens the listener's connections and remembers the backend of the
// latest, so a test can kill exactly that one.
type dialer struct {
	cfg *pgx.ConnConfig
	pid atomic.Uint32
}

func newDialer(t *testing.T, url string) *dialer {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	return &dialer{cfg: cfg}
}

func (d *dialer) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, d.cfg)
	if err == nil {
		d.pid.Store(conn.PgConn().PID())
	}
	return conn, err
}

// kill terminates the backend of the latest connection.
func (d *dialer) kill(t *testing.T, db *pgxpool.Pool) {
	t.Helper()
	var done bool
	if err := db.QueryRow(context.Background(), "SELECT pg_terminate_backend($1)", d.pid.Load()).Scan(&done); err != nil || !done {
		t.Fatalf("terminate backend %d: %v %v", d.pid.Load(), done, err)
	}
}

// start runs l until the test ends and waits for Run to return then.
func start(t *testing.T, l *Listener) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(waitLimit):
			return errors.New("Run did not return after cancel")
		}
	})
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return stop
}

func waitReady(t *testing.T, l *Listener) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := l.WaitReady(ctx); err != nil {
		t.Fatalf("listener not ready: %v", err)
	}
}

func newPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func notify(t *testing.T, db *pgxpool.Pool, channel, payload string) {
	t.Helper()
	if _, err := db.Exec(context.Background(), "SELECT pg_notify($1, $2)", channel, payload); err != nil {
		t.Fatalf("notify %s: %v", channel, err)
	}
}

func TestDeliversInCommitOrderAcrossChannels(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	db := newPool(t, url)
	rec := newRecorder()
	channels := []string{"projects", "billing.invoices", `Odd "Name"`}
	l, err := New(Config{Connect: newDialer(t, url).connect, Channels: channels, Handler: rec})
	if err != nil {
		t.Fatal(err)
	}
	start(t, l)
	waitReady(t, l)

	// One transaction per batch: Postgres delivers at commit, in order.
	var want []event
	ctx := context.Background()
	for batch := 0; batch < 5; batch++ {
		tx, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 30; i++ {
			ch := channels[i%len(channels)]
			payload := fmt.Sprintf(`{"n":%d}`, batch*100+i)
			if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", ch, payload); err != nil {
				t.Fatal(err)
			}
			want = append(want, event{channel: ch, payload: payload})
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rec.expect(t, want...)
	rec.expectNone(t) // no gap on a clean start
}

func TestUnlistenedChannelIsNotDelivered(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	db := newPool(t, url)
	rec := newRecorder()
	l, err := New(Config{Connect: newDialer(t, url).connect, Channels: []string{"billing.invoices"}, Handler: rec})
	if err != nil {
		t.Fatal(err)
	}
	start(t, l)
	waitReady(t, l)
	// "invoices" and "billing" are other channels than the one identifier "billing.invoices".
	notify(t, db, "invoices", "no")
	notify(t, db, "billing", "no")
	notify(t, db, "billing.invoices", "yes")
	rec.expect(t, event{channel: "billing.invoices", payload: "yes"})
	rec.expectNone(t)
}

// TestReconnectsAfterBackendTerminated kills the listener's backend and
// checks that it comes back, that the gap is reported only once LISTEN is
// active again, and that changes made after readiness flow.
func TestReconnectsAfterBackendTerminated(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	db := newPool(t, url)
	rec := newRecorder()
	// Inside Gap, a notification sent at once must reach the listener: this
	// is what makes a client's refetch on resync safe.
	rec.onGap = func(channel string) {
		notify(t, db, channel, "sent-during-gap")
	}
	var reconnects atomic.Int32
	channels := []string{"projects", "billing.invoices"}
	dial := newDialer(t, url)
	l, err := New(Config{
		Connect:     dial.connect,
		Channels:    channels,
		Handler:     rec,
		OnReconnect: func() { reconnects.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, l)
	waitReady(t, l)
	notify(t, db, "projects", "before")
	rec.expect(t, event{channel: "projects", payload: "before"})

	for round := 1; round <= 2; round++ {
		dial.kill(t, db)
		rec.expect(t,
			event{gap: true, channel: "projects"},
			event{gap: true, channel: "billing.invoices"},
			event{channel: "projects", payload: "sent-during-gap"},
			event{channel: "billing.invoices", payload: "sent-during-gap"},
		)
		waitReady(t, l)
		after := "after-" + strconv.Itoa(round)
		notify(t, db, "billing.invoices", after)
		rec.expect(t, event{channel: "billing.invoices", payload: after})
		if got := reconnects.Load(); got != int32(round) {
			t.Fatalf("OnReconnect called %d times after %d reconnects", got, round)
		}
	}
	rec.expectNone(t)
}

// TestGapAfterFailedStart: a listener whose first connects fail backs off
// (growing, capped, jittered waits), and once listening reports a gap,
// because clients may have been served while it was not.
func TestGapAfterFailedStart(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	db := newPool(t, url)
	rec := newRecorder()
	real := newDialer(t, url).connect
	const failures = 5
	attempts := 0
	l, err := New(Config{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			attempts++
			if attempts <= failures {
				return nil, errors.New("connection refused")
			}
			return real(ctx)
		},
		Channels: []string{"projects"},
		Handler:  rec,
		Backoff:  Backoff{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	jitter := []float64{0.5, 0.9, 0.5, 0.1, 0.5}
	var delays []time.Duration // written by Run before it is ready, read after
	l.random = func() float64 { return jitter[len(delays)] }
	l.sleep = func(_ context.Context, d time.Duration) error { delays = append(delays, d); return nil }
	start(t, l)
	waitReady(t, l)
	ms := time.Millisecond
	if want := []time.Duration{5 * ms, 18 * ms, 20 * ms, 4 * ms, 20 * ms}; !slices.Equal(delays, want) {
		t.Fatalf("delays = %v, want %v", delays, want)
	}
	rec.expect(t, event{gap: true, channel: "projects"})
	notify(t, db, "projects", "x")
	rec.expect(t, event{channel: "projects", payload: "x"})
}

// TestFlappingConnectionBacksOff kills every connection as soon as it is
// listening: each loss must count as a failure, so the waits grow instead
// of the listener reconnecting in a tight loop.
func TestFlappingConnectionBacksOff(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	db := newPool(t, url)
	rec := newRecorder()
	dial := newDialer(t, url)
	l, err := New(Config{
		Connect:  dial.connect,
		Channels: []string{"projects"},
		Handler:  rec,
		// Every connection here lives far less than Max: none is stable.
		Backoff: Backoff{Initial: time.Millisecond, Max: time.Hour, Multiplier: 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	delays := make(chan time.Duration, 100)
	l.random = func() float64 { return 0.5 }
	l.sleep = func(_ context.Context, d time.Duration) error { delays <- d; return nil }
	start(t, l)
	waitReady(t, l)
	for round := 0; round < 4; round++ {
		dial.kill(t, db)
		rec.expect(t, event{gap: true, channel: "projects"}) // listening again
	}
	ms := time.Millisecond
	want := []time.Duration{ms / 2, 5 * ms, 50 * ms, 500 * ms}
	for i, w := range want {
		if got := <-delays; got != w {
			t.Fatalf("wait %d = %v, want %v", i, got, w)
		}
	}
}

// TestHealthCheckKeepsIdleConnectionUsable lets several silent health-check
// periods pass (each ends WaitForNotification by deadline and pings) and
// checks that notifications still arrive.
func TestHealthCheckKeepsIdleConnectionUsable(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	db := newPool(t, url)
	rec := newRecorder()
	dial := newDialer(t, url)
	l, err := New(Config{
		Connect:           dial.connect,
		Channels:          []string{"projects"},
		Handler:           rec,
		HealthCheckPeriod: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, l)
	waitReady(t, l)
	// The backend's last statement becomes the ping once a period passed in silence.
	deadline := time.Now().Add(waitLimit)
	for {
		var query string
		err := db.QueryRow(context.Background(),
			"SELECT query FROM pg_stat_activity WHERE pid = $1", dial.pid.Load()).Scan(&query)
		if err != nil {
			t.Fatal(err)
		}
		if query == "-- ping" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no health check seen; last query %q", query)
		}
		time.Sleep(5 * time.Millisecond) // polling interval of a condition wait
	}
	notify(t, db, "projects", "still-here")
	rec.expect(t, event{channel: "projects", payload: "still-here"})
	rec.expectNone(t)
	if !l.Ready() {
		t.Fatal("not ready after health checks")
	}
}

func TestCancelStopsRunPromptly(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	tests := []struct {
		name    string
		connect func(context.Context) (*pgx.Conn, error)
		ready   bool
	}{
		{"while listening", newDialer(t, url).connect, true},
		{"while backing off", func(context.Context) (*pgx.Conn, error) { return nil, errors.New("refused") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, err := New(Config{
				Connect:  tt.connect,
				Channels: []string{"projects"},
				Handler:  nopHandler{},
				// A long wait: Run must not sit it out.
				Backoff: Backoff{Initial: time.Hour, Max: time.Hour},
			})
			if err != nil {
				t.Fatal(err)
			}
			l.random = func() float64 { return 0.99 }
			sleeping := make(chan struct{})
			l.sleep = func(ctx context.Context, d time.Duration) error {
				close(sleeping) // Connect fails once: Run sleeps once
				return sleepContext(ctx, d)
			}
			stop := start(t, l)
			if tt.ready {
				waitReady(t, l)
			} else {
				select {
				case <-sleeping:
				case <-time.After(waitLimit):
					t.Fatal("Run never started to back off")
				}
			}
			began := time.Now()
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			t.Logf("Run returned %v after cancel", time.Since(began))
			if l.Ready() {
				t.Fatal("Ready after Run returned")
			}
		})
	}
}

func TestRunTwiceIsRefused(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	l, err := New(Config{Connect: newDialer(t, url).connect, Channels: []string{"projects"}, Handler: nopHandler{}})
	if err != nil {
		t.Fatal(err)
	}
	start(t, l)
	waitReady(t, l)
	if err := l.Run(context.Background()); err == nil {
		t.Fatal("second Run accepted")
	}
}

// TestReconnectsAcrossPostgresRestart stops and starts the server itself:
// the listener retries while it is down, then reports the gap and delivers
// what is sent after it is ready again.
func TestReconnectsAcrossPostgresRestart(t *testing.T) {
	t.Parallel()
	pg := pgtest.Cluster(t)
	rec := newRecorder()
	var reconnects atomic.Int32
	var logs logbuf.Buffer
	l, err := New(Config{
		Connect:     newDialer(t, pg.URL).connect,
		Channels:    []string{"projects"},
		Handler:     rec,
		OnReconnect: func() { reconnects.Add(1) },
		Backoff:     Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond},
		Logger:      slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, l)
	waitReady(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pg.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	rec.expect(t, event{gap: true, channel: "projects"})
	waitReady(t, l)
	db := newPool(t, pg.URL)
	notify(t, db, "projects", "after-restart")
	rec.expect(t, event{channel: "projects", payload: "after-restart"})
	if got := reconnects.Load(); got != 1 {
		t.Fatalf("OnReconnect called %d times, want 1", got)
	}
	// One warning for the outage however many attempts failed; retries at debug.
	out := logs.String()
	if n := strings.Count(out, "level=WARN"); n != 1 || !strings.Contains(out, "lost the Postgres connection") {
		t.Fatalf("%d warnings for one outage:\n%s", n, out)
	}
	if strings.Contains(out, "level=ERROR") || !strings.Contains(out, "listening again") {
		t.Fatalf("want no errors and one line when listening again:\n%s", out)
	}
	t.Logf("failed attempts during the restart: %d", strings.Count(out, "connect attempt failed"))
}
