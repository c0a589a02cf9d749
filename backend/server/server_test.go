package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lxzan/gws"

	"github.com/ripple-rt/ripple/backend/config"
	"github.com/ripple-rt/ripple/backend/pgtest"
	"github.com/ripple-rt/ripple/backend/protocol"
	"github.com/ripple-rt/ripple/backend/server"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env is a database with Ripple's schema, two enabled tables and a running gateway.
type env struct {
	t     *testing.T
	db    *pgx.Conn
	srv   *server.Server
	url   string
	dbURL string
}

const tables = `
CREATE TABLE items (id bigint PRIMARY KEY, project_id int, name text);
CREATE TABLE others (id bigint PRIMARY KEY, note text);
CREATE TABLE legacy (id bigint PRIMARY KEY, title text);
-- The seed's own trigger function: payload without "schema".
CREATE FUNCTION public.notify_row_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM pg_notify(TG_TABLE_NAME, json_build_object('op', TG_OP, 'table', TG_TABLE_NAME, 'old', row_to_json(OLD))::text);
  ELSE
    PERFORM pg_notify(TG_TABLE_NAME, json_build_object('op', TG_OP, 'table', TG_TABLE_NAME, 'new', row_to_json(NEW))::text);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER legacy_notify AFTER INSERT OR UPDATE OR DELETE ON legacy FOR EACH ROW EXECUTE FUNCTION public.notify_row_change();
`

// start prepares a fresh database and starts a gateway on it; edit may
// change the configuration first.
func start(t *testing.T, edit func(*config.Config)) *env {
	t.Helper()
	dbURL := pgtest.NewDatabase(t)
	prepare(t, dbURL)
	db, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	cfg := testConfig(dbURL)
	if edit != nil {
		edit(&cfg)
	}
	srv := serve(t, cfg)
	return &env{t: t, db: db, srv: srv, url: srv.WebSocketURL(), dbURL: dbURL}
}

func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

// expectChange waits for a change and checks its op, seq and row id.
func expectChange(t *testing.T, c *client, sub string, op protocol.Op, seq uint64, id float64) frame {
	t.Helper()
	f := c.expect("change")
	row := f.Change.New
	if op == protocol.OpDelete {
		row = f.Change.Old
	}
	if f.Sub != sub || f.Change.Op != op || f.Seq != seq || row["id"] != id {
		t.Fatalf("got %s, want %s of id %v with seq %d on %s", f.raw, op, id, seq, sub)
	}
	return f
}

func TestChangesReachSubscribersInOrder(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	c := dial(t, e.url, protocol.Subprotocol)
	ack := c.subscribe("s1", "items", nil)
	if ack.Epoch != e.srv.Epoch() || ack.Seq != 0 {
		t.Fatalf("ack %s: want epoch %s, seq 0", ack.raw, e.srv.Epoch())
	}
	other := dial(t, e.url, protocol.Subprotocol)
	other.subscribe("o", "others", nil)

	e.exec(`INSERT INTO items VALUES (1, 7, 'first')`)
	f := expectChange(t, c, "s1", protocol.OpInsert, 1, 1)
	if f.Change.New["name"] != "first" || f.Change.Table != "items" || f.Change.Schema != "public" {
		t.Fatalf("insert payload %s", f.raw)
	}
	e.exec(`UPDATE items SET name = 'renamed' WHERE id = 1`)
	f = expectChange(t, c, "s1", protocol.OpUpdate, 2, 1)
	if f.Change.New["name"] != "renamed" || f.Change.Old["name"] != "first" {
		t.Fatalf("update payload %s", f.raw)
	}
	e.exec(`DELETE FROM items WHERE id = 1`)
	expectChange(t, c, "s1", protocol.OpDelete, 3, 1)

	// The other channel's subscriber saw none of that: its first message is its own change.
	e.exec(`INSERT INTO others VALUES (9, 'x')`)
	expectChange(t, other, "o", protocol.OpInsert, 1, 9)
}

func TestFilteredSubscription(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	c := dial(t, e.url, protocol.Subprotocol)
	c.subscribe("p7", "items", &protocol.Filter{Column: "project_id", Op: protocol.FilterEq, Value: 7})

	e.exec(`INSERT INTO items VALUES (1, 8, 'other project')`)
	e.exec(`INSERT INTO items VALUES (2, 7, 'mine')`)
	expectChange(t, c, "p7", protocol.OpInsert, 2, 2)
	e.exec(`DELETE FROM items WHERE id = 1`) // not ours, matched on old
	e.exec(`UPDATE items SET project_id = 8 WHERE id = 2`)
	f := expectChange(t, c, "p7", protocol.OpDelete, 4, 2) // moved out of the filter
	if f.Change.Old["id"] != float64(2) {
		t.Fatalf("moved-out row arrives as DELETE with its key: %s", f.raw)
	}
	e.exec(`UPDATE items SET project_id = 7 WHERE id = 2`)
	expectChange(t, c, "p7", protocol.OpInsert, 5, 2) // moved back in
	e.exec(`DELETE FROM items WHERE id = 2`)
	expectChange(t, c, "p7", protocol.OpDelete, 6, 2)
}

func TestLargeRowArrivesWhole(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	c := dial(t, e.url, protocol.Subprotocol)
	c.subscribe("s", "items", nil)
	big := strings.Repeat("ripple ", 2000) // 14,000 bytes: over pg_notify's limit
	e.exec(`INSERT INTO items VALUES (1, 7, $1)`, big)
	f := expectChange(t, c, "s", protocol.OpInsert, 1, 1)
	if f.Change.Truncated || f.Change.New["name"] != big {
		t.Fatalf("large row not hydrated: truncated=%v, name of %d bytes", f.Change.Truncated, len(fmt.Sprint(f.Change.New["name"])))
	}
}

func TestSeedProtocolClientGetsBarePayloads(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	c := dial(t, e.url, "")
	c.send(map[string]string{"type": "subscribe", "channel": "items"})
	// The seed protocol has no ack: write until the first change arrives.
	deadline := time.Now().Add(10 * time.Second)
	for id := 1; ; id++ {
		e.exec(`INSERT INTO items VALUES ($1, 1, 'seed')`, id)
		select {
		case f := <-c.frames:
			if f.Type != "" || f.Change.Op != "" {
				t.Fatalf("seed client got an envelope: %s", f.raw)
			}
			var bare protocol.NotificationPayload
			if err := json.Unmarshal(f.raw, &bare); err != nil || bare.Op != protocol.OpInsert || bare.Table != "items" || bare.New["name"] != "seed" {
				t.Fatalf("seed client got %s", f.raw)
			}
			return
		case <-time.After(100 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("seed client got no change")
			}
		}
	}
}

func TestSeedTriggerPayloads(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	c := dial(t, e.url, protocol.Subprotocol)
	c.subscribe("l", "legacy", nil)
	e.exec(`INSERT INTO legacy VALUES (1, 'old trigger')`)
	f := expectChange(t, c, "l", protocol.OpInsert, 1, 1)
	if f.Change.New["title"] != "old trigger" {
		t.Fatalf("seed payload %s", f.raw)
	}
	e.exec(`DELETE FROM legacy WHERE id = 1`)
	expectChange(t, c, "l", protocol.OpDelete, 2, 1)
}

func TestErrorCodesLeaveTheConnectionUsable(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *config.Config) { c.MaxSubscriptions = 2 })
	c := dial(t, e.url, protocol.Subprotocol)
	c.subscribe("a", "items", nil)
	tests := []struct {
		name  string
		frame string
		code  protocol.ErrorCode
	}{
		{"malformed JSON", `{"type":`, protocol.ErrBadMessage},
		{"unknown type", `{"type":"launch"}`, protocol.ErrUnknownType},
		{"unknown channel", `{"type":"subscribe","sub":"x","channel":"nope"}`, protocol.ErrUnknownChannel},
		{"bad filter", `{"type":"subscribe","sub":"x","channel":"items","filter":{"column":"id","op":"like","value":1}}`, protocol.ErrBadFilter},
		{"duplicate sub", `{"type":"subscribe","sub":"a","channel":"items"}`, protocol.ErrDuplicateSub},
		{"unknown sub", `{"type":"unsubscribe","sub":"zzz"}`, protocol.ErrUnknownSub},
	}
	for i, tt := range tests {
		if err := c.conn.WriteMessage(gws.OpcodeText, []byte(tt.frame)); err != nil {
			t.Fatal(err)
		}
		f := c.expect("error")
		if protocol.ErrorCode(f.Code) != tt.code || f.Message == "" {
			t.Errorf("%s: got %s, want code %s", tt.name, f.raw, tt.code)
		}
		c.roundTrip(fmt.Sprint(i))
	}
	c.subscribe("b", "others", nil)
	c.send(protocol.SubscribeMessage{Type: "subscribe", Sub: "c", Channel: "items"})
	if f := c.expect("error"); protocol.ErrorCode(f.Code) != protocol.ErrTooManySubscriptions || f.Sub != "c" {
		t.Errorf("third subscription: got %s", f.raw)
	}
	c.roundTrip("after-limit")
	// Still subscribed and receiving.
	e.exec(`INSERT INTO items VALUES (1, 1, 'still here')`)
	expectChange(t, c, "a", protocol.OpInsert, 1, 1)

	// An oversized frame is answered with message_too_large and close 4008.
	huge := `{"type":"ping","ref":"` + strings.Repeat("x", 5000) + `"}`
	if err := c.conn.WriteMessage(gws.OpcodeText, []byte(huge)); err != nil {
		t.Fatal(err)
	}
	if f := c.expect("error"); protocol.ErrorCode(f.Code) != protocol.ErrMessageTooLarge {
		t.Fatalf("oversized frame: got %s", f.raw)
	}
	assertCloseCode(t, c.waitClose(), protocol.ClosePolicy)
}

func TestListenerReconnectsAfterTermination(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	c := dial(t, e.url, protocol.Subprotocol)
	c.subscribe("s", "items", nil)
	e.exec(`INSERT INTO items VALUES (1, 1, 'before')`)
	expectChange(t, c, "s", protocol.OpInsert, 1, 1)

	var n int
	err := e.db.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'listen%'`).Scan(&n)
	if err != nil || n != 1 {
		t.Fatalf("terminate the listener's backend: n=%d err=%v", n, err)
	}
	// After the listener is back, the subscription is told to resync: changes may have been missed.
	if f := c.expect("resync"); f.Sub != "s" || f.Reason != string(protocol.ResyncGap) {
		t.Fatalf("after reconnect: got %s", f.raw)
	}
	waitFor(t, "readyz to answer 200", func() bool { return status(t, e.srv.URL()+"/readyz") == http.StatusOK })
	e.exec(`INSERT INTO items VALUES (2, 1, 'after')`)
	f := c.expect("change")
	if f.Change.New["id"] != float64(2) {
		t.Fatalf("after reconnect: got %s", f.raw)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if got := status(t, e.srv.URL()+path); got != http.StatusOK {
			t.Errorf("%s: status %d", path, got)
		}
	}
	resp, err := http.Get(e.srv.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := new(strings.Builder)
	if _, err := io.Copy(body, resp.Body); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ripple_connections", "ripple_listener_reconnects_total", "ripple_messages_out_total"} {
		if !strings.Contains(body.String(), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func TestCloseSendsGoingAway(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	c := dial(t, e.url, protocol.Subprotocol)
	c.subscribe("s", "items", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	assertCloseCode(t, c.waitClose(), protocol.CloseGoingAway)
}

func assertCloseCode(t *testing.T, err error, want uint16) {
	t.Helper()
	var ce *gws.CloseError
	if !errors.As(err, &ce) || ce.Code != want {
		t.Fatalf("close error %v, want code %d", err, want)
	}
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
