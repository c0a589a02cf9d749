package schema_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ripple-rt/ripple/backend/pgtest"
	"github.com/ripple-rt/ripple/schema"
)

func TestEnableAndDisableAreIdempotent(t *testing.T) {
	t.Parallel()
	url, conn := appliedDB(t)
	ctx := testCtx(t)
	execAll(t, conn,
		"CREATE TABLE items (id int PRIMARY KEY)",
		"CREATE TABLE marker (id int PRIMARY KEY)",
	)
	for range 2 {
		if err := schema.Enable(ctx, conn, "items", "marker"); err != nil {
			t.Fatalf("Enable: %v", err)
		}
	}
	var triggers int
	if err := conn.QueryRow(ctx,
		"SELECT count(*) FROM pg_trigger WHERE tgrelid = 'items'::regclass AND NOT tgisinternal").Scan(&triggers); err != nil {
		t.Fatalf("count triggers: %v", err)
	}
	if triggers != 1 {
		t.Errorf("items has %d triggers after enabling twice, want 1", triggers)
	}
	if got := enabledTables(t, conn); !slices.Equal(got, []string{"items", "marker"}) {
		t.Errorf("EnabledTables = %q, want [items marker]", got)
	}

	for range 2 {
		if err := schema.Disable(ctx, conn, "items"); err != nil {
			t.Fatalf("Disable: %v", err)
		}
	}
	if got := enabledTables(t, conn); !slices.Equal(got, []string{"marker"}) {
		t.Errorf("EnabledTables after Disable = %q, want [marker]", got)
	}

	// Notifications arrive in commit order: if the disabled table still
	// notified, its change would come before the marker's.
	listener := listen(t, url, "items")
	execAll(t, listener, "LISTEN marker")
	execAll(t, conn, "INSERT INTO items VALUES (1)", "INSERT INTO marker VALUES (1)")
	if got := next(t, listener); got.channel != "marker" {
		t.Errorf("first notification after Disable on %q, want marker: %s", got.channel, got.raw)
	}
}

func TestEnableErrors(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("s", 40) + "." + strings.Repeat("t", 30)
	tests := []struct {
		name   string
		ddl    string
		tables []string
		want   string
	}{
		{
			name:   "no primary key",
			ddl:    "CREATE TABLE nopk (a int)",
			tables: []string{"nopk"},
			want:   "table nopk has no primary key",
		},
		{
			name:   "view",
			ddl:    "CREATE VIEW v AS SELECT 1 AS a",
			tables: []string{"v"},
			want:   "v is not a table",
		},
		{
			name:   "partitioned table",
			ddl:    "CREATE TABLE parts (id int PRIMARY KEY) PARTITION BY RANGE (id)",
			tables: []string{"parts"},
			want:   "table parts is partitioned; enable its partitions instead",
		},
		{
			name:   "missing table",
			ddl:    "SELECT 1",
			tables: []string{"missing"},
			want:   `relation "missing" does not exist`,
		},
		{
			name:   "channel name too long",
			ddl:    "CREATE SCHEMA " + long[:40] + "; CREATE TABLE " + long + " (id int PRIMARY KEY)",
			tables: []string{long},
			want:   "is longer than 63 bytes",
		},
		{
			name:   "one bad table enables none",
			ddl:    "CREATE TABLE items (id int PRIMARY KEY); CREATE TABLE nopk (a int)",
			tables: []string{"items", "nopk"},
			want:   "table nopk has no primary key",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, conn := appliedDB(t)
			execAll(t, conn, tt.ddl)
			err := schema.Enable(testCtx(t), conn, tt.tables...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Enable(%q) error = %v, want one containing %q", tt.tables, err, tt.want)
			}
			if got := enabledTables(t, conn); len(got) != 0 {
				t.Errorf("EnabledTables after failed Enable = %q, want none", got)
			}
		})
	}
}

func TestNotAppliedError(t *testing.T) {
	t.Parallel()
	conn := connect(t, pgtest.NewDatabase(t))
	ctx := testCtx(t)
	execAll(t, conn, "CREATE TABLE items (id int PRIMARY KEY)")
	if err := schema.Enable(ctx, conn, "items"); !errors.Is(err, schema.ErrNotApplied) {
		t.Errorf("Enable before Apply: error = %v, want ErrNotApplied", err)
	}
	if err := schema.Disable(ctx, conn, "items"); !errors.Is(err, schema.ErrNotApplied) {
		t.Errorf("Disable before Apply: error = %v, want ErrNotApplied", err)
	}
	if _, err := schema.EnabledTables(ctx, conn); !errors.Is(err, schema.ErrNotApplied) {
		t.Errorf("EnabledTables before Apply: error = %v, want ErrNotApplied", err)
	}
}

func TestMissingTableIsNotNotApplied(t *testing.T) {
	t.Parallel()
	_, conn := appliedDB(t)
	err := schema.Enable(testCtx(t), conn, "missing")
	if err == nil || errors.Is(err, schema.ErrNotApplied) {
		t.Errorf("Enable of a missing table: error = %v, want a plain error", err)
	}
}
