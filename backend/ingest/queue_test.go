package ingest

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ripple-rt/ripple/backend/internal/logbuf"
)

// TestWatchQueueReportsAndWarns holds a LISTENing session inside a
// transaction (it cannot consume), sends notifications, and checks that
// the queue usage rises, is reported, and is warned about once.
func TestWatchQueueReportsAndWarns(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := testCtx(t)
	stuck, err := d.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Release()
	exec(t, stuck, "LISTEN stuck")
	tx, err := stuck.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // the test is over
	exec(t, d.pool, "SELECT pg_notify('stuck', g::text) FROM generate_series(1, 2000) AS g")

	readings := make(chan float64, 100)
	var logs logbuf.Buffer
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- WatchQueue(wctx, QueueOptions{
			Pool:     d.pool,
			Interval: 5 * time.Millisecond,
			WarnAt:   1e-9, // any use at all
			Report: func(u float64) {
				select {
				case readings <- u:
				default:
				}
			},
			Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		})
	}()
	for i := 0; i < 3; i++ { // several readings, so a repeated warning would show
		select {
		case u := <-readings:
			if u <= 0 {
				t.Fatalf("reading %d: usage %v with 2000 notifications pending", i, u)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no reading")
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "usage=") {
		t.Fatalf("warning without the usage: %s", logs.String())
	}
}

func TestWatchQueueNeedsPoolAndReport(t *testing.T) {
	t.Parallel()
	if err := WatchQueue(context.Background(), QueueOptions{}); err == nil {
		t.Fatal("no error without options")
	}
}
