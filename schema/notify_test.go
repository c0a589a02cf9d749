package schema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ripple-rt/ripple/schema"
)

func TestNotifyPayloadPerOperation(t *testing.T) {
	t.Parallel()
	const full = `{"id":1,"name":"bolt","qty":5,"note":null}`
	tests := []struct {
		name   string
		action string
		want   string
	}{
		{
			name:   "insert",
			action: "INSERT INTO items VALUES (2, 'nut', 10, NULL)",
			want:   `{"op":"INSERT","table":"items","schema":"public","new":{"id":2,"name":"nut","qty":10,"note":null}}`,
		},
		{
			name:   "update keeps key and changed column in old",
			action: "UPDATE items SET qty = 6 WHERE id = 1",
			want: `{"op":"UPDATE","table":"items","schema":"public",
				"new":{"id":1,"name":"bolt","qty":6,"note":null},"old":{"id":1,"qty":5}}`,
		},
		{
			name:   "update from null",
			action: "UPDATE items SET note = 'spare'",
			want: `{"op":"UPDATE","table":"items","schema":"public",
				"new":{"id":1,"name":"bolt","qty":5,"note":"spare"},"old":{"id":1,"note":null}}`,
		},
		{
			name:   "update to null",
			action: "UPDATE items SET qty = NULL",
			want: `{"op":"UPDATE","table":"items","schema":"public",
				"new":{"id":1,"name":"bolt","qty":null,"note":null},"old":{"id":1,"qty":5}}`,
		},
		{
			name:   "update without change has only the key in old",
			action: "UPDATE items SET name = name",
			want:   `{"op":"UPDATE","table":"items","schema":"public","new":` + full + `,"old":{"id":1}}`,
		},
		{
			name:   "update of the key has the previous key in old",
			action: "UPDATE items SET id = 7",
			want: `{"op":"UPDATE","table":"items","schema":"public",
				"new":{"id":7,"name":"bolt","qty":5,"note":null},"old":{"id":1}}`,
		},
		{
			name:   "delete",
			action: "DELETE FROM items WHERE id = 1",
			want:   `{"op":"DELETE","table":"items","schema":"public","old":` + full + `}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, conn := appliedDB(t)
			execAll(t, conn,
				"CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, qty integer, note text)",
				"SELECT ripple.enable('items')",
				"INSERT INTO items VALUES (1, 'bolt', 5, NULL)",
			)
			listener := listen(t, url, "items")
			execAll(t, conn, tt.action)
			got := next(t, listener)
			if got.channel != "items" {
				t.Errorf("channel = %q, want items", got.channel)
			}
			assertPayload(t, got, tt.want)
			var compact bytes.Buffer
			if err := json.Compact(&compact, []byte(got.raw)); err != nil || compact.String() != got.raw {
				t.Errorf("payload is not compact JSON: %s", got.raw)
			}
		})
	}
}

func TestNotifyChannelNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ddl     []string
		table   string // as given to Enable and INSERT
		channel string
		want    string
	}{
		{
			name:    "public table",
			ddl:     []string{"CREATE TABLE invoices (id int PRIMARY KEY)"},
			table:   "invoices",
			channel: "invoices",
			want:    `{"op":"INSERT","table":"invoices","schema":"public","new":{"id":1}}`,
		},
		{
			name:    "table outside public",
			ddl:     []string{"CREATE SCHEMA billing", "CREATE TABLE billing.invoices (id int PRIMARY KEY)"},
			table:   "billing.invoices",
			channel: "billing.invoices",
			want:    `{"op":"INSERT","table":"invoices","schema":"billing","new":{"id":1}}`,
		},
		{
			name:    "odd names",
			ddl:     []string{`CREATE SCHEMA "Sales Dept"`, `CREATE TABLE "Sales Dept"."It's ""Q1""\" ("Id" int PRIMARY KEY)`},
			table:   `"Sales Dept"."It's ""Q1""\"`,
			channel: `Sales Dept.It's "Q1"\`,
			want:    `{"op":"INSERT","table":"It's \"Q1\"\\","schema":"Sales Dept","new":{"Id":1}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, conn := appliedDB(t)
			execAll(t, conn, tt.ddl...)
			if err := schema.Enable(testCtx(t), conn, tt.table); err != nil {
				t.Fatalf("Enable: %v", err)
			}
			if got := enabledTables(t, conn); len(got) != 1 || got[0] != tt.channel {
				t.Errorf("EnabledTables = %q, want [%q]", got, tt.channel)
			}
			listener := listen(t, url, tt.channel)
			execAll(t, conn, "INSERT INTO "+tt.table+" VALUES (1)")
			got := next(t, listener)
			if got.channel != tt.channel {
				t.Errorf("channel = %q, want %q", got.channel, tt.channel)
			}
			assertPayload(t, got, tt.want)
		})
	}
}

func TestNotifyCompositeKey(t *testing.T) {
	t.Parallel()
	url, conn := appliedDB(t)
	execAll(t, conn,
		`CREATE TABLE lines ("Order No" text, line int, qty int, note text, PRIMARY KEY ("Order No", line))`,
		"SELECT ripple.enable('lines')",
		"INSERT INTO lines VALUES ('A-1', 2, 5, 'x')",
	)
	listener := listen(t, url, "lines")
	execAll(t, conn, "UPDATE lines SET qty = 6")
	assertPayload(t, next(t, listener), `{"op":"UPDATE","table":"lines","schema":"public",
		"new":{"Order No":"A-1","line":2,"qty":6,"note":"x"},"old":{"Order No":"A-1","line":2,"qty":5}}`)
}

func TestNotifyPayloadIsOneLine(t *testing.T) {
	t.Parallel()
	url, conn := appliedDB(t)
	execAll(t, conn,
		"CREATE TABLE notes (id int PRIMARY KEY, body text, doc json, meta jsonb)",
		"SELECT ripple.enable('notes')",
	)
	listener := listen(t, url, "notes")
	// A json value keeps its own text, line breaks included. \u0000 is valid
	// in json (not in jsonb): it must not break the write; the UPDATE "old"
	// then holds the whole previous row, as the trigger cannot decode it.
	execAll(t, conn,
		`INSERT INTO notes VALUES (1, E'line 1\nline 2\r\t', E'{"a":\r\n  [1,\n 2], "z": "\\u0000"}', '{"b": "x\ny"}')`,
		`UPDATE notes SET doc = E'{\n"c": 3}'`,
		`UPDATE notes SET doc = E'{"d":\n4}'`,
	)
	const body = `"body":"line 1\nline 2\r\t"`
	want := []string{
		`{"op":"INSERT","table":"notes","schema":"public",
			"new":{"id":1,` + body + `,"doc":{"a":[1,2],"z":"\u0000"},"meta":{"b":"x\ny"}}}`,
		`{"op":"UPDATE","table":"notes","schema":"public",
			"new":{"id":1,` + body + `,"doc":{"c":3},"meta":{"b":"x\ny"}},
			"old":{"id":1,` + body + `,"doc":{"a":[1,2],"z":"\u0000"},"meta":{"b":"x\ny"}}}`,
		`{"op":"UPDATE","table":"notes","schema":"public",
			"new":{"id":1,` + body + `,"doc":{"d":4},"meta":{"b":"x\ny"}},"old":{"id":1,"doc":{"c":3}}}`,
	}
	for _, w := range want {
		got := next(t, listener)
		if strings.ContainsAny(got.raw, "\n\r") {
			t.Errorf("payload has a raw line break: %q", got.raw)
		}
		assertPayload(t, got, w)
	}
}

func TestNotifyLargeRowIsTruncated(t *testing.T) {
	t.Parallel()
	url, conn := appliedDB(t)
	execAll(t, conn,
		"CREATE TABLE docs (id bigint PRIMARY KEY, body text)",
		"SELECT ripple.enable('docs')",
	)
	listener := listen(t, url, "docs")
	tests := []struct {
		action string
		want   string
	}{
		{
			action: "INSERT INTO docs VALUES (1, repeat('x', 9000))",
			want:   `{"op":"INSERT","table":"docs","schema":"public","truncated":true,"key":{"id":1}}`,
		},
		{
			action: "UPDATE docs SET body = repeat('y', 9000)",
			want:   `{"op":"UPDATE","table":"docs","schema":"public","truncated":true,"key":{"id":1},"old":{"id":1}}`,
		},
		{
			action: "UPDATE docs SET id = 2",
			want:   `{"op":"UPDATE","table":"docs","schema":"public","truncated":true,"key":{"id":2},"old":{"id":1}}`,
		},
		{
			action: "DELETE FROM docs",
			want:   `{"op":"DELETE","table":"docs","schema":"public","truncated":true,"key":{"id":2}}`,
		},
	}
	for _, tt := range tests {
		execAll(t, conn, tt.action) // fails the test if the write fails
		assertPayload(t, next(t, listener), tt.want)
	}
	// The writes committed.
	execAll(t, conn, "INSERT INTO docs VALUES (3, repeat('z', 20000))")
	next(t, listener)
	var n int
	if err := conn.QueryRow(testCtx(t), "SELECT length(body) FROM docs WHERE id = 3").Scan(&n); err != nil {
		t.Fatalf("read back large row: %v", err)
	}
	if n != 20000 {
		t.Errorf("large row body length = %d, want 20000", n)
	}
}

func TestNotifyPayloadLimitBoundary(t *testing.T) {
	t.Parallel()
	url, conn := appliedDB(t)
	execAll(t, conn,
		"CREATE TABLE docs (id int PRIMARY KEY, body text)",
		"SELECT ripple.enable('docs')",
	)
	listener := listen(t, url, "docs")
	execAll(t, conn, "INSERT INTO docs VALUES (1, '')")
	base := len(next(t, listener).raw) // payload size with an empty body

	// Ids 2 and 3 have as many digits as 1, so the payload grows by exactly
	// the body's length: 7999 bytes is sent whole, 8000 is truncated.
	fill := 7999 - base
	execAll(t, conn, fmt.Sprintf("INSERT INTO docs VALUES (2, repeat('x', %d))", fill))
	if got := next(t, listener); len(got.raw) != 7999 || got.payload["new"] == nil {
		t.Errorf("7999-byte payload: got %d bytes, new = %v", len(got.raw), got.payload["new"] != nil)
	}
	execAll(t, conn, fmt.Sprintf("INSERT INTO docs VALUES (3, repeat('x', %d))", fill+1))
	assertPayload(t, next(t, listener), `{"op":"INSERT","table":"docs","schema":"public","truncated":true,"key":{"id":3}}`)
}

func TestNotifyHugeKeyIsDropped(t *testing.T) {
	t.Parallel()
	url, conn := appliedDB(t)
	execAll(t, conn,
		// A 9000-character key compresses well enough to fit in the index.
		"CREATE TABLE tags (name text PRIMARY KEY)",
		"SELECT ripple.enable('tags')",
	)
	listener := listen(t, url, "tags")
	execAll(t, conn, "INSERT INTO tags VALUES (repeat('k', 9000))")
	assertPayload(t, next(t, listener), `{"op":"INSERT","table":"tags","schema":"public","truncated":true}`)
	execAll(t, conn, "UPDATE tags SET name = repeat('j', 9000)")
	assertPayload(t, next(t, listener), `{"op":"UPDATE","table":"tags","schema":"public","truncated":true}`)
}

func TestNotifyAsWriterWithoutRightsOnRippleSchema(t *testing.T) {
	t.Parallel()
	url, conn := appliedDB(t)
	var role string
	if err := conn.QueryRow(testCtx(t), "SELECT current_database() || '_writer'").Scan(&role); err != nil {
		t.Fatalf("role name: %v", err)
	}
	quoted := pgx.Identifier{role}.Sanitize()
	if _, err := conn.Exec(testCtx(t), "CREATE ROLE "+quoted); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" { // insufficient_privilege
			t.Skipf("the test database's user may not create roles: %v", err)
		}
		t.Fatalf("create role: %v", err)
	}
	t.Cleanup(func() { // roles outlive the test's database
		execAll(t, conn, "DROP OWNED BY "+quoted, "DROP ROLE "+quoted)
	})
	execAll(t, conn,
		"REVOKE ALL ON SCHEMA ripple FROM PUBLIC",
		"CREATE TABLE docs (id int PRIMARY KEY, body text)",
		"GRANT INSERT, UPDATE ON docs TO "+quoted,
		"SELECT ripple.enable('docs')",
	)
	listener := listen(t, url, "docs")
	execAll(t, conn,
		"SET ROLE "+quoted,
		"INSERT INTO docs VALUES (1, 'small')",
		"INSERT INTO docs VALUES (2, repeat('x', 9000))",
		"RESET ROLE",
	)
	assertPayload(t, next(t, listener), `{"op":"INSERT","table":"docs","schema":"public","new":{"id":1,"body":"small"}}`)
	assertPayload(t, next(t, listener), `{"op":"INSERT","table":"docs","schema":"public","truncated":true,"key":{"id":2}}`)
}

func TestNotifyAfterKeyColumnRename(t *testing.T) {
	t.Parallel()
	url, conn := appliedDB(t)
	execAll(t, conn,
		"CREATE TABLE docs (id int PRIMARY KEY, body text)",
		"SELECT ripple.enable('docs')",
		"ALTER TABLE docs RENAME id TO doc_id", // the trigger still names "id"
	)
	listener := listen(t, url, "docs")
	execAll(t, conn,
		"INSERT INTO docs VALUES (1, repeat('x', 9000))",
		"SELECT ripple.enable('docs')", // picks up the new name
		"UPDATE docs SET body = repeat('y', 9000)",
	)
	assertPayload(t, next(t, listener), `{"op":"INSERT","table":"docs","schema":"public","truncated":true}`)
	assertPayload(t, next(t, listener),
		`{"op":"UPDATE","table":"docs","schema":"public","truncated":true,"key":{"doc_id":1},"old":{"doc_id":1}}`)
}
