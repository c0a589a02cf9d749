// Package schema holds Ripple's database side and applies it: the SQL
// migrations that install ripple.notify_row_change (the trigger function that
// sends every row change with pg_notify), ripple.enable and ripple.disable,
// and a separate set of demo tables.
//
// The SQL lives in numbered files under migrations/ and demo/, embedded into
// the binary. [Apply] and [ApplyDemo] run the files that a database has not
// seen yet, record them in ripple.schema_migrations, and hold a Postgres
// advisory lock while they do, so running them twice, or from two processes
// at once, is safe. [Enable] and [Disable] switch notifications on and off
// per table; [EnabledTables] lists the channels to listen on.
package schema

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB is what the functions of this package need from a database handle.
// Both *pgx.Conn and *pgxpool.Pool satisfy it.
type DB interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// ErrNotApplied reports that the database lacks Ripple's schema: run [Apply]
// (`ripple schema apply`) first. Errors wrapping it also wrap the database error.
var ErrNotApplied = errors.New("ripple schema not applied (run `ripple schema apply`)")

// Postgres error codes that mean a ripple object is missing.
const (
	codeUndefinedSchema   = "3F000" // invalid_schema_name
	codeUndefinedTable    = "42P01" // undefined_table
	codeUndefinedFunction = "42883" // undefined_function
)

// notApplied wraps err with ErrNotApplied when it is a Postgres error with
// one of codes: the codes that, for the statement that failed, can only mean
// that a ripple object is missing.
func notApplied(err error, codes ...string) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && slices.Contains(codes, pgErr.Code) {
		return fmt.Errorf("%w: %w", ErrNotApplied, err)
	}
	return err
}
