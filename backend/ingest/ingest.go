// Package ingest turns the listener's raw notifications into row changes
// for the hub: it decodes each payload, completes truncated changes, counts
// what it sees, and passes every change on in the order it arrived.
//
// A payload it cannot parse is logged (channel, size and sender, never the
// row data), counted in [metrics.Metrics.BadPayloads] and skipped. Log lines
// of one kind are limited to one per channel every 10s.
//
// Truncated changes (the trigger's fallback for rows of 8000 bytes or more)
// are completed as follows:
//
//   - INSERT and UPDATE are hydrated: the row is read back by its key with
//     one SELECT over Options.Pool, and passed on with New set, Truncated
//     false and Key cleared. A hydrated UPDATE goes out without Old: the
//     trigger's "old" holds only the previous primary key, not the previous
//     values of the changed columns, so the previous row is unknown (the hub
//     then treats the UPDATE as one that may have moved the row out of a
//     filter). When that previous key differs from the key (the UPDATE
//     changed the primary key), a DELETE carrying the previous key is
//     published first, so clients drop the row under its old key. A row that
//     no longer exists (it was deleted since; that DELETE follows) is passed
//     on as the truncated change, and so is one whose hydration failed
//     (logged and counted in [metrics.Metrics.HydrationFailures]): clients
//     refetch on a truncated change.
//   - DELETE needs only the key: it is passed on with Old set to the key,
//     Truncated false and Key cleared, so clients remove the row as they do
//     for any DELETE. Old then lacks the other columns: a filter on another
//     column cannot be evaluated on it (the hub should deliver such a DELETE,
//     which is harmless for a client that does not hold the row).
//   - A truncated change without a key (its key alone was too large) is
//     passed on unchanged.
//
// Hydration runs synchronously on the caller's goroutine (the listener's),
// which keeps changes in commit order at the cost of one round trip per
// truncated change; changes that are not truncated never wait on Postgres.
//
// Payloads from the seed's own trigger ({"op","table","new"|"old"}, no
// "schema") are accepted; a missing schema means public. Changes are passed
// on as decoded: Ripple does not add the schema to them, so the raw bytes of
// an unchanged notification go out as Postgres sent them, except that line
// breaks between JSON tokens are removed (every raw is one line, as the
// gateway's newline-separated batches need).
package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ripple-rt/ripple/backend/metrics"
	"github.com/ripple-rt/ripple/backend/protocol"
)

// Publisher receives the decoded changes (the hub implements it).
type Publisher interface {
	// Publish passes on one change of channel. raw is the JSON of change,
	// always one line: the notification's own bytes when ingest left the
	// change as it came, re-encoded after hydration. Publish may keep raw;
	// ingest does not touch it again.
	Publish(channel string, change protocol.NotificationPayload, raw []byte)
	// Gap reports that notifications on channel may have been lost.
	Gap(channel string)
}

// Options configures an [Ingest]. Publisher is required.
type Options struct {
	// Publisher receives every change and gap. Required.
	Publisher Publisher
	// Pool hydrates truncated INSERT and UPDATE changes. A few connections
	// suffice: hydration runs one query at a time. Nil disables hydration
	// (truncated changes are passed on as they are).
	Pool *pgxpool.Pool
	// Metrics counts notifications, bad payloads and hydration failures.
	// Nil counts into a private set nobody exports.
	Metrics *metrics.Metrics
	// Logger receives a line for each skipped payload and failed
	// hydration, at most one per kind and channel every 10s (the metrics
	// count them all); nil logs nothing.
	Logger *slog.Logger
	// HydrateTimeout bounds one hydration query. Default 5s.
	HydrateTimeout time.Duration
}

// DefaultHydrateTimeout is the default of Options.HydrateTimeout.
const DefaultHydrateTimeout = 5 * time.Second

// Ingest is the step between the listener and the hub. Its methods match
// the listener's Handler, so an *Ingest plugs straight into it.
type Ingest struct {
	pub      Publisher
	pool     *pgxpool.Pool
	metrics  *metrics.Metrics
	log      *slog.Logger
	throttle *throttle
	timeout  time.Duration
}

// New returns an Ingest for opts. It panics if opts.Publisher is nil.
func New(opts Options) *Ingest {
	if opts.Publisher == nil {
		panic("ingest: Options.Publisher is required")
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New(nil)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.HydrateTimeout <= 0 {
		opts.HydrateTimeout = DefaultHydrateTimeout
	}
	return &Ingest{
		pub:      opts.Publisher,
		pool:     opts.Pool,
		metrics:  opts.Metrics,
		log:      opts.Logger,
		throttle: newThrottle(),
		timeout:  opts.HydrateTimeout,
	}
}

// Gap passes a gap on channel to the Publisher.
func (i *Ingest) Gap(channel string) { i.pub.Gap(channel) }

// Handle decodes one notification, completes it if it is truncated (see
// the package documentation) and publishes it. It never panics on a bad
// payload: it logs, counts and skips it.
func (i *Ingest) Handle(ctx context.Context, n *pgconn.Notification) {
	i.metrics.NotificationsIn.WithLabelValues(n.Channel).Inc()
	raw := oneLine([]byte(n.Payload))
	change, err := decode(raw)
	if err != nil {
		i.metrics.BadPayloads.Inc()
		if ok, held := i.throttle.allow("bad payload " + n.Channel); ok {
			i.log.Warn("ingest: skipped a notification that is not a row change",
				"channel", n.Channel, "bytes", len(raw), "sender_pid", n.PID, "error", err,
				"similar_not_logged", held)
		}
		return
	}
	if change.Truncated && len(change.Key) > 0 {
		if full, fullRaw, ok := i.complete(ctx, n.Channel, change); ok {
			if del, delRaw, moved := i.keyChanged(n.Channel, change); moved {
				i.pub.Publish(n.Channel, del, delRaw)
			}
			change, raw = full, fullRaw
		}
	}
	i.pub.Publish(n.Channel, change, raw)
}

// keyChanged returns the DELETE of the row under its previous key when the
// truncated UPDATE change moved it to another primary key, or false.
func (i *Ingest) keyChanged(channel string, change protocol.NotificationPayload) (protocol.NotificationPayload, []byte, bool) {
	if change.Op != protocol.OpUpdate || len(change.Old) == 0 || reflect.DeepEqual(change.Old, change.Key) {
		return protocol.NotificationPayload{}, nil, false
	}
	del := protocol.NotificationPayload{Op: protocol.OpDelete, Table: change.Table, Schema: change.Schema, Old: change.Old}
	raw, err := encode(del)
	if err != nil {
		i.hydrationFailed(context.Background(), channel, change, fmt.Errorf("encode the DELETE of the previous key: %w", err))
		return protocol.NotificationPayload{}, nil, false
	}
	return del, raw, true
}

// complete returns the full form of a truncated change and its JSON, or
// false to pass the change on truncated.
func (i *Ingest) complete(ctx context.Context, channel string, change protocol.NotificationPayload) (protocol.NotificationPayload, []byte, bool) {
	if change.Op == protocol.OpDelete {
		change.Old, change.Key, change.Truncated = change.Key, nil, false
	} else {
		if i.pool == nil {
			return change, nil, false
		}
		row, err := i.hydrate(ctx, channel, change)
		if err != nil {
			i.hydrationFailed(ctx, channel, change, err)
			return change, nil, false
		}
		if row == nil {
			return change, nil, false // deleted since; its DELETE follows
		}
		change.New, change.Old, change.Key, change.Truncated = row, nil, nil, false
	}
	raw, err := encode(change)
	if err != nil {
		i.hydrationFailed(ctx, channel, change, fmt.Errorf("encode the completed change: %w", err))
		return change, nil, false
	}
	return change, raw, true
}

// hydrationFailed logs and counts a failure to complete a truncated change,
// unless it is only the end of ctx (shutdown).
func (i *Ingest) hydrationFailed(ctx context.Context, channel string, change protocol.NotificationPayload, err error) {
	if ctx.Err() != nil {
		return
	}
	i.metrics.HydrationFailures.Inc()
	if ok, held := i.throttle.allow("hydration " + channel); ok {
		i.log.Warn("ingest: could not hydrate a truncated change; passing it on truncated",
			"channel", channel, "op", change.Op, "schema", change.Schema, "table", change.Table, "error", err,
			"similar_not_logged", held)
	}
}

// hydrate reads the row that change's key names, or nil if there is none.
func (i *Ingest) hydrate(ctx context.Context, channel string, change protocol.NotificationPayload) (protocol.Row, error) {
	schema := change.Schema
	if schema == "" {
		schema = "public"
	}
	if channel != schema+"."+change.Table && (schema != "public" || channel != change.Table) {
		// Hydrate only from the table the channel stands for, so a forged
		// notification cannot make the gateway read another table.
		return nil, fmt.Errorf("payload names table %s.%s, which channel %q does not stand for", schema, change.Table, channel)
	}
	key, err := json.Marshal(change.Key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, i.timeout)
	defer cancel()
	var data []byte
	err = i.pool.QueryRow(ctx, hydrateSQL(schema, change.Table, change.Key), key).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("select %s.%s by key: %w", schema, change.Table, err)
	}
	row, err := decodeRow(data)
	if err != nil {
		return nil, fmt.Errorf("decode row of %s.%s: %w", schema, change.Table, err)
	}
	return row, nil
}

// hydrateSQL is the query that reads one row of schema.table, as JSON
// written the way the trigger writes it (row_to_json), by the columns of
// key, given as one jsonb parameter. jsonb_populate_record turns the key
// back into values of the columns' own types (the inverse of row_to_json),
// so the comparison can use the primary key's index.
// Columns are sorted so that one table's query text is always the same.
func hydrateSQL(schema, table string, key protocol.Row) string {
	tbl := pgx.Identifier{schema, table}.Sanitize()
	cols := make([]string, 0, len(key))
	for col := range key {
		cols = append(cols, col)
	}
	slices.Sort(cols)
	var b strings.Builder
	b.WriteString("SELECT row_to_json(ripple_row) FROM ")
	b.WriteString(tbl)
	b.WriteString(" AS ripple_row, jsonb_populate_record(NULL::")
	b.WriteString(tbl)
	b.WriteString(", $1::jsonb) AS ripple_key WHERE ")
	for n, col := range cols {
		if n > 0 {
			b.WriteString(" AND ")
		}
		c := pgx.Identifier{col}.Sanitize()
		b.WriteString("ripple_row." + c + " = ripple_key." + c)
	}
	return b.String()
}

// oneLine returns raw without line breaks, which the gateway's framing
// reserves as message separators. Valid JSON holds them only as whitespace
// between tokens (a json column copied by the seed's trigger can bring
// some), so compacting removes them; raw that is not JSON is returned as it
// is, for decode to refuse.
func oneLine(raw []byte) []byte {
	if !bytes.ContainsAny(raw, "\r\n") {
		return raw
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

// maxQuoted bounds how much of an unexpected value an error message quotes.
const maxQuoted = 32

// decode parses a notification payload into a change and checks that it is
// one: a known op, a table, and the row the op needs (unless truncated).
// Numbers are kept as json.Number, exactly as Postgres wrote them.
func decode(raw []byte) (protocol.NotificationPayload, error) {
	var p protocol.NotificationPayload
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("not a change object: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return p, errors.New("not a change object: data after the JSON value")
	}
	switch p.Op {
	case protocol.OpInsert, protocol.OpUpdate, protocol.OpDelete:
	default:
		return p, fmt.Errorf("unknown op %.*q", maxQuoted, p.Op)
	}
	if p.Table == "" {
		return p, errors.New("no table")
	}
	if p.Truncated {
		return p, nil
	}
	if p.Op == protocol.OpDelete && p.Old == nil {
		return p, errors.New("DELETE without old")
	}
	if p.Op != protocol.OpDelete && p.New == nil {
		return p, fmt.Errorf("%s without new", p.Op)
	}
	return p, nil
}

// decodeRow parses one row as Postgres's row_to_json wrote it.
func decodeRow(data []byte) (protocol.Row, error) {
	var row protocol.Row
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&row); err != nil {
		return nil, err
	}
	if row == nil {
		return nil, errors.New("row is JSON null")
	}
	return row, nil
}

// encode writes change as one line of JSON, without HTML escaping (the
// way Postgres writes it).
func encode(change protocol.NotificationPayload) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(change); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
