package schema

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// DemoTables returns the tables that [ApplyDemo] creates, parents first:
// projects, extraction_jobs, extraction_results, data_layers and
// supplier_matches. All live in the public schema, so each name is also the
// table's channel.
func DemoTables() []string {
	return []string{"projects", "extraction_jobs", "extraction_results", "data_layers", "supplier_matches"}
}

// Enable installs the Ripple trigger on each table (ripple.enable), so that
// its row changes are sent on the table's channel. Table names are read as
// SQL reads them: "billing.invoices" names a table in schema billing, and a
// mixed-case or odd name needs double quotes (`"Odd Name"`). Enabling an
// enabled table refreshes its trigger. A table without a primary key is an
// error ("table X has no primary key"). All tables are enabled in one
// transaction: on error, none is.
func Enable(ctx context.Context, db DB, tables ...string) error {
	return forEachTable(ctx, db, "enable", "SELECT ripple.enable($1::regclass)", tables)
}

// Disable removes the Ripple trigger from each table (ripple.disable). A
// table without the trigger is left as it is. All tables are disabled in one
// transaction: on error, none is.
func Disable(ctx context.Context, db DB, tables ...string) error {
	return forEachTable(ctx, db, "disable", "SELECT ripple.disable($1::regclass)", tables)
}

// EnableDemo enables the Ripple trigger on every table of [DemoTables].
func EnableDemo(ctx context.Context, db DB) error {
	return Enable(ctx, db, DemoTables()...)
}

func forEachTable(ctx context.Context, db DB, verb, sql string, tables []string) error {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return fmt.Errorf("%s: begin: %w", verb, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	for _, table := range tables {
		if _, err := tx.Exec(ctx, sql, table); err != nil {
			return fmt.Errorf("%s %q: %w", verb, table, notApplied(err, codeUndefinedSchema, codeUndefinedFunction))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("%s: commit: %w", verb, err)
	}
	return nil
}

// EnabledTables returns the channels of all tables whose changes Ripple
// sends (every table with a trigger calling ripple.notify_row_change), sorted:
// the table name, or "schema.table" outside the public schema. The gateway
// listens on these when no channel list is configured.
func EnabledTables(ctx context.Context, db DB) ([]string, error) {
	rows, err := db.Query(ctx, "SELECT channel FROM ripple.enabled_tables ORDER BY channel")
	if err != nil {
		return nil, fmt.Errorf("list enabled tables: %w", notApplied(err, codeUndefinedSchema, codeUndefinedTable))
	}
	channels, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list enabled tables: %w", notApplied(err, codeUndefinedSchema, codeUndefinedTable))
	}
	return channels, nil
}
