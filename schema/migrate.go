package schema

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var rippleFiles embed.FS

//go:embed demo/*.sql
var demoFiles embed.FS

// Migration sets, as recorded in ripple.schema_migrations.migration_set.
const (
	rippleSet = "ripple"
	demoSet   = "demo"
)

// lockKey is the advisory lock held while migrations are applied: the bytes
// of "ripple" read as a number, unlikely to collide with an application's keys.
const lockKey int64 = 0x726970706c65

// bootstrapSQL creates the migrations table. It runs under the advisory lock
// and only when the table is missing, so a role without CREATE rights can
// still run Apply against an up-to-date database.
const bootstrapSQL = `
CREATE SCHEMA IF NOT EXISTS ripple;

-- One row per applied migration file, per set ("ripple" or "demo").
CREATE TABLE IF NOT EXISTS ripple.schema_migrations (
  migration_set text        NOT NULL,
  version       integer     NOT NULL,
  name          text        NOT NULL,
  applied_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (migration_set, version)
);`

// migration is one numbered SQL file.
type migration struct {
	version int
	name    string // file name without the number and ".sql"
	sql     string
}

// fileName matches NNNN_name.sql.
var fileName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// Apply brings Ripple's own schema up to date: the ripple schema, the
// notify_row_change trigger function, ripple.enable and ripple.disable. It
// applies, in order and in one transaction, the embedded migrations the
// database has not recorded yet. Running it again is a no-op; concurrent
// runs wait for each other on an advisory lock.
func Apply(ctx context.Context, db DB) error {
	return apply(ctx, db, rippleSet, rippleFiles, "migrations")
}

// ApplyDemo creates the demo tables (see [DemoTables]) the same way [Apply]
// creates Ripple's schema, recorded as a separate set. It does not enable
// notifications on them: call [EnableDemo] after [Apply] for that.
func ApplyDemo(ctx context.Context, db DB) error {
	return apply(ctx, db, demoSet, demoFiles, "demo")
}

func apply(ctx context.Context, db DB, set string, fsys fs.FS, dir string) error {
	migrations, err := load(fsys, dir)
	if err != nil {
		return err
	}
	// Read committed: each statement sees what other appliers committed
	// before this one got the lock, whatever the session's default level.
	tx, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("apply %s migrations: begin: %w", set, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit

	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey); err != nil {
		return fmt.Errorf("apply %s migrations: lock: %w", set, err)
	}
	applied, err := appliedVersions(ctx, tx, set)
	if err != nil {
		return fmt.Errorf("apply %s migrations: %w", set, err)
	}
	for _, m := range migrations {
		if applied[m.version] {
			continue
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("apply %s migration %04d_%s: %w", set, m.version, m.name, err)
		}
		if _, err := tx.Exec(ctx,
			"INSERT INTO ripple.schema_migrations (migration_set, version, name) VALUES ($1, $2, $3)",
			set, m.version, m.name); err != nil {
			return fmt.Errorf("record %s migration %04d_%s: %w", set, m.version, m.name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("apply %s migrations: commit: %w", set, err)
	}
	return nil
}

// appliedVersions creates the migrations table when it is missing and
// returns the versions of set that it records.
func appliedVersions(ctx context.Context, tx pgx.Tx, set string) (map[int]bool, error) {
	var exists bool
	if err := tx.QueryRow(ctx,
		"SELECT to_regclass('ripple.schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return nil, fmt.Errorf("find migrations table: %w", err)
	}
	if !exists {
		if _, err := tx.Exec(ctx, bootstrapSQL); err != nil {
			return nil, fmt.Errorf("create migrations table: %w", err)
		}
	}
	rows, err := tx.Query(ctx,
		"SELECT version FROM ripple.schema_migrations WHERE migration_set = $1", set)
	if err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	applied := make(map[int]bool, len(versions))
	for _, v := range versions {
		applied[v] = true
	}
	return applied, nil
}

// load reads the NNNN_name.sql files of dir, ordered by number.
func load(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations %s: %w", dir, err)
	}
	var migrations []migration
	for _, e := range entries {
		parts := fileName.FindStringSubmatch(e.Name())
		if parts == nil {
			return nil, fmt.Errorf("migration %s/%s: name is not NNNN_name.sql", dir, e.Name())
		}
		version, _ := strconv.Atoi(parts[1]) // four digits always parse
		sql, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s/%s: %w", dir, e.Name(), err)
		}
		migrations = append(migrations, migration{version: version, name: parts[2], sql: string(sql)})
	}
	slices.SortFunc(migrations, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(migrations); i++ {
		if migrations[i].version == migrations[i-1].version {
			return nil, fmt.Errorf("migrations %s: version %04d used twice", dir, migrations[i].version)
		}
	}
	if len(migrations) == 0 {
		return nil, fmt.Errorf("migrations %s: no files", dir)
	}
	return migrations, nil
}
