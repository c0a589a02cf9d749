// This scenario guards the window before a subscription is live: a fetch
// that read the table before the first `subscribed` ack must be followed by a
// refetch, or a write made in between is lost for good (supabase
// realtime-js issue #525's failure).

package e2e_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ripple-rt/ripple/e2e/harness"
)

// heldQuerier reads like its db, then holds each result until released:
// the test decides when an in-flight fetch lands.
type heldQuerier struct {
	db      harness.Querier
	read    chan struct{} // receives once per query, after the read
	release chan struct{}
}

type heldRow struct {
	rows json.RawMessage
	err  error
}

func (r heldRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	*(dest[0].(*json.RawMessage)) = r.rows
	return nil
}

func (q *heldQuerier) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	var r heldRow
	r.err = q.db.QueryRow(ctx, sql, args...).Scan(&r.rows)
	q.read <- struct{}{}
	select {
	case <-q.release:
	case <-ctx.Done():
	}
	return r
}

// TestWriteBeforeSubscriptionLiveDuringFetch: a fetch that read the table
// before the subscription went live, and lands after the first ack, must not
// leave out a write made in between.
func TestWriteBeforeSubscriptionLiveDuringFetch(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.project("org-a", "before")
	// witness is subscribed already: once it has the write, so has the gateway's hub.
	witness := quickJS(t, w.wsURL, w.db)
	witness.Watch("projects", projects)
	witness.WaitReady("projects", true)

	q := &heldQuerier{db: w.db, read: make(chan struct{}, 16), release: make(chan struct{})}
	c := harness.NewClient(t, w.wsURL, q, harness.ClientOptions{})
	h := c.Host()
	h.PauseDials()
	c.Watch("projects", projects)
	select { // the fetch has read the table; the socket is not up
	case <-q.read:
	case <-time.After(20 * time.Second):
		t.Fatal("the query function never read the table")
	}
	w.project("org-a", "between the read and the ack")
	witness.WaitCount("projects", "changes", 1)
	h.ResumeDials()
	c.WaitCount("projects", "acks", 1)
	close(q.release)
	c.WaitData("projects", w.rows("projects", nil))
}
