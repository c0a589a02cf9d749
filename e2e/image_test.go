package e2e_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/ripple-rt/ripple/e2e/harness"
)

// TestPostgresImageContract checks that the image the suite runs (the
// official one, or the local one tools/pgimage builds) honours the official
// image's contract the harness relies on: user, password, database and
// initdb arguments from the environment, init scripts (.sql and .sh) run
// once, a restart that keeps the data, and STOPSIGNAL SIGINT.
func TestPostgresImageContract(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := postgres.Run(ctx, harness.Image(),
		postgres.WithDatabase("contract"),
		postgres.WithUsername("alice"),
		postgres.WithPassword("secret"),
		postgres.WithInitScripts("testdata/initdb/01-table.sql", "testdata/initdb/02-script.sh"),
		testcontainers.WithEnv(map[string]string{"POSTGRES_INITDB_ARGS": "--data-checksums"}),
		postgres.BasicWaitStrategies(),
	)
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatal(err)
	}

	check := func(when string) {
		t.Helper()
		url, err := c.ConnectionString(ctx, "sslmode=disable")
		if err != nil {
			t.Fatal(err)
		}
		conn := connectWhenUp(t, ctx, url)
		defer conn.Close(ctx)
		var user, db, note, who, checksums string
		if err := conn.QueryRow(ctx, `SELECT current_user, current_database(),
			(SELECT note FROM from_sql WHERE id = 1), (SELECT who FROM from_sh), current_setting('data_checksums')`).
			Scan(&user, &db, &note, &who, &checksums); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if user != "alice" || db != "contract" || note != "init SQL ran in contract" || who != "alice" || checksums != "on" {
			t.Errorf("%s: user %q, database %q, init SQL note %q, init script user %q, data_checksums %s",
				when, user, db, note, who, checksums)
		}
	}
	check("after the first start")

	info, err := c.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.StopSignal != "SIGINT" {
		t.Errorf("stop signal %q, want SIGINT (Postgres' fast shutdown)", info.Config.StopSignal)
	}

	timeout := 10 * time.Second
	if err := c.Stop(ctx, &timeout); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	logs, err := c.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(logs)
	logs.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The first start runs the init scripts on a temporary server, then the
	// real one; the restart skips init.
	if n := strings.Count(string(out), "running /docker-entrypoint-initdb.d/01-table.sql"); n != 1 {
		t.Errorf("the init SQL ran %d times, want once", n)
	}
	check("after a restart")
}

// connectWhenUp connects to url, retrying while the server is still
// starting (a restarted container answers before Postgres accepts
// connections), until ctx ends.
func connectWhenUp(t *testing.T, ctx context.Context, url string) *pgx.Conn {
	t.Helper()
	for {
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			if err = conn.Ping(ctx); err == nil {
				return conn
			}
			conn.Close(ctx)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("connect to %s: %v", url, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
