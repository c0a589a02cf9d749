package schema_test

import (
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ripple-rt/ripple/backend/pgtest"
	"github.com/ripple-rt/ripple/schema"
)

// Both handles a CLI may hold satisfy schema.DB.
var (
	_ schema.DB = (*pgx.Conn)(nil)
	_ schema.DB = (*pgxpool.Pool)(nil)
)

// recorded returns the versions ripple.schema_migrations holds for set.
func recorded(t *testing.T, conn *pgx.Conn, set string) []int {
	t.Helper()
	rows, err := conn.Query(testCtx(t),
		"SELECT version FROM ripple.schema_migrations WHERE migration_set = $1 ORDER BY version", set)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	return versions
}

// fileVersions returns 1..n for the n migration files in dir.
func fileVersions(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	var versions []int
	for i := range entries {
		versions = append(versions, i+1)
	}
	return versions
}

func TestApplyTwiceIsNoOp(t *testing.T) {
	t.Parallel()
	_, conn := appliedDB(t)
	ctx := testCtx(t)
	var before string
	if err := conn.QueryRow(ctx, "SELECT max(applied_at)::text FROM ripple.schema_migrations").Scan(&before); err != nil {
		t.Fatalf("read applied_at: %v", err)
	}
	if err := schema.Apply(ctx, conn); err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if got, want := recorded(t, conn, "ripple"), fileVersions(t, "migrations"); !slices.Equal(got, want) {
		t.Errorf("recorded ripple versions = %v, want %v", got, want)
	}
	var after string
	if err := conn.QueryRow(ctx, "SELECT max(applied_at)::text FROM ripple.schema_migrations").Scan(&after); err != nil {
		t.Fatalf("read applied_at: %v", err)
	}
	if after != before {
		t.Errorf("second Apply recorded a migration again: applied_at %s, then %s", before, after)
	}
}

func TestApplyConcurrently(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	const workers = 4
	conns := make([]*pgx.Conn, workers)
	for i := range conns {
		conns[i] = connect(t, url)
	}
	ctx := testCtx(t)
	start := make(chan struct{})
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i, conn := range conns {
		wg.Go(func() {
			<-start
			// Half apply Ripple's set, half the demo set: both share the
			// migrations table, which neither has created yet.
			if i%2 == 0 {
				errs[i] = schema.Apply(ctx, conn)
			} else {
				errs[i] = schema.ApplyDemo(ctx, conn)
			}
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("worker %d: %v", i, err)
		}
	}
	if got, want := recorded(t, conns[0], "ripple"), fileVersions(t, "migrations"); !slices.Equal(got, want) {
		t.Errorf("recorded ripple versions = %v, want %v", got, want)
	}
	if got, want := recorded(t, conns[0], "demo"), fileVersions(t, "demo"); !slices.Equal(got, want) {
		t.Errorf("recorded demo versions = %v, want %v", got, want)
	}
}

func TestDemoTables(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	ctx := testCtx(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	t.Cleanup(pool.Close)
	for range 2 {
		if err := schema.ApplyDemo(ctx, pool); err != nil {
			t.Fatalf("ApplyDemo: %v", err)
		}
	}
	if err := schema.Apply(ctx, pool); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := schema.EnableDemo(ctx, pool); err != nil {
		t.Fatalf("EnableDemo: %v", err)
	}
	conn := connect(t, url)
	want := slices.Sorted(slices.Values(schema.DemoTables()))
	if got := enabledTables(t, conn); !slices.Equal(got, want) {
		t.Errorf("EnabledTables = %q, want %q", got, want)
	}
	if got, want := recorded(t, conn, "demo"), fileVersions(t, "demo"); !slices.Equal(got, want) {
		t.Errorf("recorded demo versions = %v, want %v", got, want)
	}

	listener := listen(t, url, "projects")
	execAll(t, listener, "LISTEN extraction_jobs")
	execAll(t, conn,
		"INSERT INTO projects (id, organization_id, name) VALUES (1, 'org-1', 'Harbour survey')",
		"INSERT INTO extraction_jobs (id, project_id, organization_id, document_name) VALUES (1, 1, 'org-1', 'scan.pdf')",
		"UPDATE extraction_jobs SET status = 'running', progress = 40",
		"DELETE FROM projects",
	)
	steps := []struct{ channel, op string }{
		{"projects", "INSERT"},
		{"extraction_jobs", "INSERT"},
		{"extraction_jobs", "UPDATE"},
		{"projects", "DELETE"},
		{"extraction_jobs", "DELETE"}, // by ON DELETE CASCADE
	}
	for _, step := range steps {
		got := next(t, listener)
		if got.channel != step.channel || got.payload["op"] != step.op {
			t.Errorf("notification %s %v, want %s %s: %s", got.channel, got.payload["op"], step.channel, step.op, got.raw)
		}
	}
}
