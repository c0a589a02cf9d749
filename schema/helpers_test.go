package schema_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ripple-rt/ripple/backend/pgtest"
	"github.com/ripple-rt/ripple/schema"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testCtx is a context that ends with the test or after a minute.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// connect opens a connection that is closed when the test ends.
func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(testCtx(t), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// appliedDB returns the URL of a fresh database with Ripple's schema applied
// and a connection to it.
func appliedDB(t testing.TB) (string, *pgx.Conn) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	conn := connect(t, url)
	if err := schema.Apply(testCtx(t), conn); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return url, conn
}

// execAll runs each statement on conn.
func execAll(t testing.TB, conn *pgx.Conn, statements ...string) {
	t.Helper()
	for _, sql := range statements {
		if _, err := conn.Exec(testCtx(t), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

// listen opens a connection listening on channel.
func listen(t testing.TB, url, channel string) *pgx.Conn {
	t.Helper()
	conn := connect(t, url)
	execAll(t, conn, "LISTEN "+pgx.Identifier{channel}.Sanitize())
	return conn
}

// notification is one received notification with its payload decoded.
type notification struct {
	channel string
	raw     string
	payload map[string]any
}

// next waits up to ten seconds for the next notification on conn.
func next(t testing.TB, conn *pgx.Conn) notification {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := conn.WaitForNotification(ctx)
	if err != nil {
		t.Fatalf("wait for notification: %v", err)
	}
	var payload map[string]any
	if err := json.Unmarshal([]byte(n.Payload), &payload); err != nil {
		t.Fatalf("payload is not a JSON object: %v: %s", err, n.Payload)
	}
	return notification{channel: n.Channel, raw: n.Payload, payload: payload}
}

// jsonObject decodes a JSON object written in a test.
func jsonObject(t testing.TB, s string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad JSON in test: %v: %s", err, s)
	}
	return v
}

// assertPayload fails unless got holds exactly the JSON object want.
func assertPayload(t testing.TB, got notification, want string) {
	t.Helper()
	if w := jsonObject(t, want); !reflect.DeepEqual(got.payload, w) {
		t.Errorf("payload\n got: %s\nwant: %s", got.raw, want)
	}
}

// enabledTables returns schema.EnabledTables or fails the test.
func enabledTables(t testing.TB, conn *pgx.Conn) []string {
	t.Helper()
	channels, err := schema.EnabledTables(testCtx(t), conn)
	if err != nil {
		t.Fatalf("EnabledTables: %v", err)
	}
	return channels
}
