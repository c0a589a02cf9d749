package ingest

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ripple-rt/ripple/backend/metrics"
	"github.com/ripple-rt/ripple/backend/pgtest"
	"github.com/ripple-rt/ripple/backend/protocol"
	"github.com/ripple-rt/ripple/schema"
)

// big is a column value that makes a row's JSON exceed the 8000-byte limit
// of pg_notify, so the trigger sends a truncated change.
var big = strings.Repeat("x", 9000)

// db is a fresh database with Ripple's schema and two enabled tables: docs
// (public, key id) and billing.invoices (key org, id).
type db struct {
	pool   *pgxpool.Pool
	listen *pgx.Conn
}

func newDB(t testing.TB) *db {
	t.Helper()
	ctx := testCtx(t)
	url := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := schema.Apply(ctx, pool); err != nil {
		t.Fatal(err)
	}
	exec(t, pool, `CREATE TABLE docs (id bigint PRIMARY KEY, title text, body text)`)
	exec(t, pool, `CREATE SCHEMA billing`)
	exec(t, pool, `CREATE TABLE billing.invoices (org int, id text, amount numeric, note text, PRIMARY KEY (org, id))`)
	if err := schema.Enable(ctx, pool, "docs", "billing.invoices"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	exec(t, conn, `LISTEN docs`)
	exec(t, conn, `LISTEN "billing.invoices"`)
	return &db{pool: pool, listen: conn}
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func exec(t testing.TB, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, sql string, args ...any) {
	t.Helper()
	if _, err := db.Exec(testCtx(t), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// next waits for the next notification and checks whether it is truncated.
func (d *db) next(t testing.TB, truncated bool) *pgconn.Notification {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := d.listen.WaitForNotification(ctx)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	change, err := decode([]byte(n.Payload))
	if err != nil {
		t.Fatalf("notification %.200s: %v", n.Payload, err)
	}
	if got := change.Truncated; got != truncated {
		t.Fatalf("notification %.200s: truncated = %v, want %v", n.Payload, got, truncated)
	}
	return n
}

// ingest returns an Ingest that hydrates through d's pool, the recorder
// it publishes to and the metrics it counts into.
func (d *db) ingest() (*Ingest, *recorder, *metrics.Metrics) {
	pub, m := &recorder{}, metrics.New(nil)
	return New(Options{Publisher: pub, Pool: d.pool, Metrics: m}), pub, m
}

// noHydrationFailures fails the test if m counted a hydration failure.
func noHydrationFailures(t *testing.T, m *metrics.Metrics) {
	t.Helper()
	if n := value(t, m.HydrationFailures); n != 0 {
		t.Fatalf("HydrationFailures = %v, want 0", n)
	}
}

func TestHydratesTruncatedInsertAndUpdate(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ing, pub, m := d.ingest()
	ctx := testCtx(t)

	tests := []struct {
		name    string
		sql     string
		args    []any
		channel string
		want    protocol.NotificationPayload
	}{
		{
			name:    "insert in public",
			sql:     `INSERT INTO docs VALUES (9007199254740993, 'Dam <survey>', $1)`,
			args:    []any{big},
			channel: "docs",
			want: protocol.NotificationPayload{Op: protocol.OpInsert, Table: "docs", Schema: "public",
				New: protocol.Row{"id": json.Number("9007199254740993"), "title": "Dam <survey>", "body": big}},
		},
		{
			name:    "insert with composite key in another schema",
			sql:     `INSERT INTO billing.invoices VALUES (7, 'INV-1', 12.50, $1)`,
			args:    []any{big},
			channel: "billing.invoices",
			want: protocol.NotificationPayload{Op: protocol.OpInsert, Table: "invoices", Schema: "billing",
				New: protocol.Row{"org": json.Number("7"), "id": "INV-1", "amount": json.Number("12.50"), "note": big}},
		},
		{
			name:    "update",
			sql:     `UPDATE billing.invoices SET amount = 99, note = $1 || 'y' WHERE org = 7`,
			args:    []any{big},
			channel: "billing.invoices",
			want: protocol.NotificationPayload{Op: protocol.OpUpdate, Table: "invoices", Schema: "billing",
				// No Old: the trigger's "old" is only the previous key, not a previous-row image.
				New: protocol.Row{"org": json.Number("7"), "id": "INV-1", "amount": json.Number("99"), "note": big + "y"}},
		},
	}
	for _, tt := range tests {
		exec(t, d.pool, tt.sql, tt.args...)
		n := d.next(t, true)
		ing.Handle(ctx, n)
		got := pub.only(t)
		if got.channel != tt.channel || !reflect.DeepEqual(got.change, tt.want) {
			t.Fatalf("%s: published %s %.300v, want %s %.300v", tt.name, got.channel, got.change, tt.channel, tt.want)
		}
		checkRaw(t, got)
	}
	noHydrationFailures(t, m)
}

// TestTruncatedUpdateOfThePrimaryKey: a large UPDATE that changes the
// primary key goes out as a DELETE of the previous key followed by the
// hydrated UPDATE, so a client drops the row under its old key.
func TestTruncatedUpdateOfThePrimaryKey(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ing, pub, m := d.ingest()
	ctx := testCtx(t)

	exec(t, d.pool, `INSERT INTO billing.invoices VALUES (7, 'INV-1', 1, $1)`, big)
	exec(t, d.pool, `UPDATE billing.invoices SET id = 'INV-2' WHERE org = 7`)
	ing.Handle(ctx, d.next(t, true))
	pub.only(t) // the INSERT
	ing.Handle(ctx, d.next(t, true))

	pub.mu.Lock()
	got := pub.changes
	pub.mu.Unlock()
	want := []protocol.NotificationPayload{
		{Op: protocol.OpDelete, Table: "invoices", Schema: "billing", Old: protocol.Row{"org": json.Number("7"), "id": "INV-1"}},
		{Op: protocol.OpUpdate, Table: "invoices", Schema: "billing",
			New: protocol.Row{"org": json.Number("7"), "id": "INV-2", "amount": json.Number("1"), "note": big}},
	}
	if len(got) != len(want) {
		t.Fatalf("published %d changes, want %d: %.500v", len(got), len(want), got)
	}
	for n, w := range want {
		if got[n].channel != "billing.invoices" || !reflect.DeepEqual(got[n].change, w) {
			t.Fatalf("change %d: published %s %.300v, want %.300v", n, got[n].channel, got[n].change, w)
		}
		checkRaw(t, got[n])
	}
	noHydrationFailures(t, m)
}

// TestDeletedRowPassesOnTruncated: a truncated INSERT whose row was deleted
// before ingest read it goes out as the truncated change; the truncated
// DELETE that follows goes out as a DELETE by key.
func TestDeletedRowPassesOnTruncated(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ing, pub, m := d.ingest()
	ctx := testCtx(t)

	exec(t, d.pool, `INSERT INTO docs VALUES (1, 'gone soon', $1)`, big)
	exec(t, d.pool, `DELETE FROM docs WHERE id = 1`)
	insert, del := d.next(t, true), d.next(t, true)

	ing.Handle(ctx, insert)
	got := pub.only(t)
	wantInsert := protocol.NotificationPayload{Op: protocol.OpInsert, Table: "docs", Schema: "public",
		Truncated: true, Key: protocol.Row{"id": json.Number("1")}}
	if !reflect.DeepEqual(got.change, wantInsert) || got.raw != insert.Payload {
		t.Fatalf("published %+v (raw %s), want %+v as sent", got.change, got.raw, wantInsert)
	}

	ing.Handle(ctx, del)
	got = pub.only(t)
	wantDelete := protocol.NotificationPayload{Op: protocol.OpDelete, Table: "docs", Schema: "public",
		Old: protocol.Row{"id": json.Number("1")}}
	if !reflect.DeepEqual(got.change, wantDelete) {
		t.Fatalf("published %+v, want %+v", got.change, wantDelete)
	}
	checkRaw(t, got)
	noHydrationFailures(t, m) // a deleted row is no failure
}

func TestHydrationFailuresAreCountedAndPassedOnTruncated(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	exec(t, d.pool, `INSERT INTO docs VALUES (1, 'private', 'secret')`)
	tests := []struct {
		name    string
		channel string
		payload string
	}{
		{"table does not exist", "ghost",
			`{"op":"INSERT","table":"ghost","schema":"public","truncated":true,"key":{"id":1}}`},
		{"key column does not exist", "docs",
			`{"op":"UPDATE","table":"docs","schema":"public","truncated":true,"key":{"nope":1}}`},
		{"key of the wrong type", "docs",
			`{"op":"UPDATE","table":"docs","schema":"public","truncated":true,"key":{"id":"one"}}`},
		{"payload names another table than its channel", "billing.invoices",
			`{"op":"INSERT","table":"docs","schema":"public","truncated":true,"key":{"id":1}}`},
		{"seed payload without schema on a qualified channel", "billing.docs",
			`{"op":"INSERT","table":"docs","truncated":true,"key":{"id":1}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ing, pub, m := d.ingest()
			ing.Handle(testCtx(t), note(tt.channel, tt.payload))
			got := pub.only(t)
			if !got.change.Truncated || got.change.New != nil || got.raw != tt.payload {
				t.Fatalf("published %+v (raw %s), want the truncated change as sent", got.change, got.raw)
			}
			if n := value(t, m.HydrationFailures); n != 1 {
				t.Fatalf("HydrationFailures = %v, want 1", n)
			}
		})
	}
}

func TestSeedTriggerPayloadIsHydratedFromPublic(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	exec(t, d.pool, `INSERT INTO docs VALUES (5, 'seed', 'body')`)
	pub := &recorder{}
	ing := New(Options{Publisher: pub, Pool: d.pool})
	// The seed's trigger sends no schema; a truncated payload from a
	// seed-compatible trigger means public.
	ing.Handle(testCtx(t), note("docs", `{"op":"UPDATE","table":"docs","truncated":true,"key":{"id":5}}`))
	got := pub.only(t)
	want := protocol.NotificationPayload{Op: protocol.OpUpdate, Table: "docs",
		New: protocol.Row{"id": json.Number("5"), "title": "seed", "body": "body"}}
	if !reflect.DeepEqual(got.change, want) {
		t.Fatalf("published %+v, want %+v", got.change, want)
	}
	checkRaw(t, got)
}

func TestHydrationUsesThePrimaryKeyIndex(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	exec(t, d.pool, `INSERT INTO billing.invoices SELECT g % 50, 'INV-' || g, g, '' FROM generate_series(1, 20000) AS g`)
	exec(t, d.pool, `ANALYZE billing.invoices`)
	rows, err := d.pool.Query(testCtx(t), "EXPLAIN "+hydrateSQL("billing", "invoices", protocol.Row{"org": 1, "id": "x"}),
		`{"org":1,"id":"INV-1"}`)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	if !strings.Contains(text, "Index Scan using invoices_pkey") || strings.Contains(text, "Seq Scan") {
		t.Fatalf("hydration does not use the primary key:\n%s", text)
	}
}
