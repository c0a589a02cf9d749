package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ripple-rt/ripple/backend/metrics"
	"github.com/ripple-rt/ripple/backend/pgtest"
	"github.com/ripple-rt/ripple/backend/protocol"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// published is one Publish call.
type published struct {
	channel string
	change  protocol.NotificationPayload
	raw     string
}

// recorder is a Publisher that records every call.
type recorder struct {
	mu      sync.Mutex
	changes []published
	gaps    []string
}

func (r *recorder) Publish(channel string, change protocol.NotificationPayload, raw []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, published{channel, change, string(raw)})
}

func (r *recorder) Gap(channel string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gaps = append(r.gaps, channel)
}

// only returns the one change published, failing the test otherwise.
func (r *recorder) only(t *testing.T) published {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.changes) != 1 {
		t.Fatalf("published %d changes, want 1: %+v", len(r.changes), r.changes)
	}
	p := r.changes[0]
	r.changes = nil
	return p
}

// checkRaw fails the test unless raw is the JSON of change.
func checkRaw(t *testing.T, p published) {
	t.Helper()
	back, err := decode([]byte(p.raw))
	if err != nil {
		t.Fatalf("raw %s does not decode: %v", p.raw, err)
	}
	if !reflect.DeepEqual(back, p.change) {
		t.Fatalf("raw %s decodes to %+v, not the published change %+v", p.raw, back, p.change)
	}
}

// value reads a counter.
func value(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func note(channel, payload string) *pgconn.Notification {
	return &pgconn.Notification{PID: 4242, Channel: channel, Payload: payload}
}

func TestValidPayloadsPassOnUnchanged(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		channel string
		sent    string // the notification's payload, if not payload
		payload string // what is published as raw
		want    protocol.NotificationPayload
	}{
		{
			name:    "line breaks between tokens removed",
			channel: "projects",
			sent:    "{\"op\":\"INSERT\",\r\n \"table\":\"projects\",\"new\":{\"id\":1,\"doc\":{\n\"a\": \"x\\ny\"}}}",
			payload: `{"op":"INSERT","table":"projects","new":{"id":1,"doc":{"a":"x\ny"}}}`,
			want:    protocol.NotificationPayload{Op: protocol.OpInsert, Table: "projects", New: protocol.Row{"id": json.Number("1"), "doc": map[string]any{"a": "x\ny"}}},
		},
		{
			name:    "seed insert",
			channel: "projects",
			payload: `{"op":"INSERT","table":"projects","new":{"id":1,"name":"Dam survey"}}`,
			want:    protocol.NotificationPayload{Op: protocol.OpInsert, Table: "projects", New: protocol.Row{"id": json.Number("1"), "name": "Dam survey"}},
		},
		{
			name:    "seed update",
			channel: "projects",
			payload: `{"op":"UPDATE","table":"projects","new":{"id":9007199254740993,"price":12.50}}`,
			want:    protocol.NotificationPayload{Op: protocol.OpUpdate, Table: "projects", New: protocol.Row{"id": json.Number("9007199254740993"), "price": json.Number("12.50")}},
		},
		{
			name:    "seed delete",
			channel: "projects",
			payload: `{"op":"DELETE","table":"projects","old":{"id":1,"name":null}}`,
			want:    protocol.NotificationPayload{Op: protocol.OpDelete, Table: "projects", Old: protocol.Row{"id": json.Number("1"), "name": nil}},
		},
		{
			name:    "ripple update in another schema",
			channel: "billing.invoices",
			payload: `{"op":"UPDATE","table":"invoices","schema":"billing","new":{"id":3,"paid":true},"old":{"id":3,"paid":false}}`,
			want: protocol.NotificationPayload{Op: protocol.OpUpdate, Table: "invoices", Schema: "billing",
				New: protocol.Row{"id": json.Number("3"), "paid": true}, Old: protocol.Row{"id": json.Number("3"), "paid": false}},
		},
		{
			name:    "truncated without key",
			channel: "projects",
			payload: `{"op":"UPDATE","table":"projects","schema":"public","truncated":true}`,
			want:    protocol.NotificationPayload{Op: protocol.OpUpdate, Table: "projects", Schema: "public", Truncated: true},
		},
		{
			name:    "truncated insert without a pool",
			channel: "projects",
			payload: `{"op":"INSERT","table":"projects","schema":"public","truncated":true,"key":{"id":5}}`,
			want:    protocol.NotificationPayload{Op: protocol.OpInsert, Table: "projects", Schema: "public", Truncated: true, Key: protocol.Row{"id": json.Number("5")}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pub := &recorder{}
			m := metrics.New(nil)
			ing := New(Options{Publisher: pub, Metrics: m})
			if tt.sent == "" {
				tt.sent = tt.payload
			}
			ing.Handle(context.Background(), note(tt.channel, tt.sent))
			got := pub.only(t)
			if got.channel != tt.channel || !reflect.DeepEqual(got.change, tt.want) {
				t.Fatalf("published %s %+v, want %s %+v", got.channel, got.change, tt.channel, tt.want)
			}
			if got.raw != tt.payload {
				t.Fatalf("raw = %s, want the notification's bytes %s", got.raw, tt.payload)
			}
			if n := value(t, m.NotificationsIn.WithLabelValues(tt.channel)); n != 1 {
				t.Fatalf("NotificationsIn = %v, want 1", n)
			}
			if n := value(t, m.BadPayloads) + value(t, m.HydrationFailures); n != 0 {
				t.Fatalf("bad payloads + hydration failures = %v, want 0", n)
			}
		})
	}
}

func TestTruncatedDeleteBecomesDeleteByKey(t *testing.T) {
	t.Parallel()
	pub := &recorder{}
	ing := New(Options{Publisher: pub})
	ing.Handle(context.Background(), note("billing.invoices",
		`{"op":"DELETE","table":"invoices","schema":"billing","truncated":true,"key":{"org":7,"id":"a<b"}}`))
	got := pub.only(t)
	want := protocol.NotificationPayload{Op: protocol.OpDelete, Table: "invoices", Schema: "billing",
		Old: protocol.Row{"org": json.Number("7"), "id": "a<b"}}
	if !reflect.DeepEqual(got.change, want) {
		t.Fatalf("published %+v, want %+v", got.change, want)
	}
	checkRaw(t, got)
	if strings.Contains(got.raw, "truncated") || strings.Contains(got.raw, `\u003c`) {
		t.Fatalf("raw %s: want no truncated flag and no HTML escaping", got.raw)
	}
}

func TestBadPayloadsAreCountedAndSkipped(t *testing.T) {
	t.Parallel()
	const secret = "123-45-6789" // row data that must never reach the log
	bad := []string{
		``,
		`not json`,
		`null`,
		`[]`,
		`"INSERT"`,
		`{}`,
		`{"op":"MERGE","table":"projects","new":{"ssn":"` + secret + `"}}`,
		`{"op":"INSERT","new":{"ssn":"` + secret + `"}}`,
		`{"op":"INSERT","table":"projects"}`,
		`{"op":"INSERT","table":"projects","new":null}`,
		`{"op":"UPDATE","table":"projects","old":{"id":1}}`,
		`{"op":"DELETE","table":"projects","new":{"id":1}}`,
		`{"op":"INSERT","table":"projects","new":{"ssn":"` + secret + `"}} {}`,
		`{"op":"INSERT","table":"projects","new":{"ssn":"` + secret + `"`,
		`{"op":"INSERT","table":"projects","new":["` + secret + `"]}`,
		`{"op":1,"table":"projects","new":{}}`,
	}
	var logs bytes.Buffer
	pub := &recorder{}
	m := metrics.New(nil)
	ing := New(Options{Publisher: pub, Metrics: m, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	clock := time.Now()
	ing.throttle.now = func() time.Time { return clock }
	for _, payload := range bad {
		ing.Handle(context.Background(), note("projects", payload))
		clock = clock.Add(logEvery) // each gets its line
	}
	if len(pub.changes) != 0 {
		t.Fatalf("published %+v", pub.changes)
	}
	if n := value(t, m.BadPayloads); n != float64(len(bad)) {
		t.Fatalf("BadPayloads = %v, want %d", n, len(bad))
	}
	if n := value(t, m.NotificationsIn.WithLabelValues("projects")); n != float64(len(bad)) {
		t.Fatalf("NotificationsIn = %v, want %d", n, len(bad))
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != len(bad) {
		t.Fatalf("%d log lines for %d bad payloads:\n%s", len(lines), len(bad), logs.String())
	}
	for _, line := range lines {
		if !strings.Contains(line, "channel=projects") || !strings.Contains(line, "bytes=") || !strings.Contains(line, "sender_pid=4242") {
			t.Errorf("log line lacks context: %s", line)
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatalf("row data leaked into the log:\n%s", logs.String())
	}
}

// TestLogLinesAreThrottled sends a flood of bad payloads: one line per
// channel and logEvery, each saying how many were not logged, and every
// payload counted.
func TestLogLinesAreThrottled(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	m := metrics.New(nil)
	ing := New(Options{Publisher: &recorder{}, Metrics: m, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	clock := time.Now()
	ing.throttle.now = func() time.Time { return clock }
	flood := func(channel string, n int) {
		for range n {
			ing.Handle(context.Background(), note(channel, "garbage"))
		}
	}
	flood("projects", 100)
	flood("billing.invoices", 3)
	clock = clock.Add(logEvery - time.Millisecond)
	flood("projects", 10)
	clock = clock.Add(time.Millisecond)
	flood("projects", 1)

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	want := []string{
		"channel=projects bytes=7 sender_pid=4242 error=\"not a change object: invalid character 'g' looking for beginning of value\" similar_not_logged=0",
		"channel=billing.invoices bytes=7 sender_pid=4242 error=\"not a change object: invalid character 'g' looking for beginning of value\" similar_not_logged=0",
		"channel=projects bytes=7 sender_pid=4242 error=\"not a change object: invalid character 'g' looking for beginning of value\" similar_not_logged=109",
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), logs.String())
	}
	for i, w := range want {
		if !strings.HasSuffix(lines[i], w) {
			t.Errorf("line %d = %s\nwant it to end with %s", i, lines[i], w)
		}
	}
	if n := value(t, m.BadPayloads); n != 114 {
		t.Fatalf("BadPayloads = %v, want 114", n)
	}
}

func TestGapIsPassedOn(t *testing.T) {
	t.Parallel()
	pub := &recorder{}
	ing := New(Options{Publisher: pub})
	ing.Gap("billing.invoices")
	ing.Gap("projects")
	if want := []string{"billing.invoices", "projects"}; !reflect.DeepEqual(pub.gaps, want) {
		t.Fatalf("gaps = %v, want %v", pub.gaps, want)
	}
}

func TestHydrateSQLQuotesAndSortsColumns(t *testing.T) {
	t.Parallel()
	got := hydrateSQL("billing", `odd"table`, protocol.Row{"org": 1, `we"ird`: 2, "id": 3})
	want := `SELECT row_to_json(ripple_row) FROM "billing"."odd""table" AS ripple_row, ` +
		`jsonb_populate_record(NULL::"billing"."odd""table", $1::jsonb) AS ripple_key ` +
		`WHERE ripple_row."id" = ripple_key."id" AND ripple_row."org" = ripple_key."org" AND ripple_row."we""ird" = ripple_key."we""ird"`
	if got != want {
		t.Fatalf("hydrateSQL =\n%s\nwant\n%s", got, want)
	}
}
