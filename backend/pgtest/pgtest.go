// Package pgtest gives tests a real PostgreSQL: one throwaway server per test
// binary (started the way `ripple dev` starts one, by package devdb), or the
// server named by RIPPLE_TEST_DATABASE_URL, and a fresh database per test.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ripple-rt/ripple/backend/devdb"
)

// EnvURL names the environment variable that points tests at an existing
// server instead of a throwaway one. Its user must be allowed to create databases.
const EnvURL = "RIPPLE_TEST_DATABASE_URL"

var (
	once     sync.Once
	server   *devdb.Postgres
	adminURL string
	startErr error
	counter  atomic.Int64
)

// Main runs the tests of a package and stops the shared server afterwards.
// Call it from TestMain: func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if server != nil {
		if err := server.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: stop server:", err)
		}
	}
	os.Exit(code)
}

func shared(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		if u := os.Getenv(EnvURL); u != "" {
			adminURL = u
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		server, startErr = devdb.Start(ctx, devdb.Options{})
		if startErr == nil {
			adminURL = server.URL
		}
	})
	if startErr != nil {
		t.Fatalf("pgtest: start PostgreSQL: %v", startErr)
	}
	return adminURL
}

// NewDatabase creates an empty database for this test on the shared server
// and returns its URL. The database is dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := shared(t)
	name := fmt.Sprintf("ripple_test_%d_%d", os.Getpid(), counter.Add(1))
	exec(t, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() {
		exec(t, admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	return devdb.WithDatabase(admin, name)
}

// Cluster starts a server of the test's own, for tests that stop or restart
// PostgreSQL, and stops it when the test ends.
func Cluster(t testing.TB) *devdb.Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := devdb.Start(ctx, devdb.Options{})
	if err != nil {
		t.Fatalf("pgtest: start PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if err := pg.Stop(); err != nil {
			t.Errorf("pgtest: stop PostgreSQL: %v", err)
		}
	})
	return pg
}

func exec(t testing.TB, connURL, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}
