package harness

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ripple-rt/ripple/backend/protocol"
)

// Querier is what SelectRows needs: *pgx.Conn and *pgxpool.Pool have it.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// SelectRows reads the rows of table that pass filter (nil: all rows) as a
// JSON array of objects, ordered by id. Postgres renders each row with
// to_json, as the notify trigger does, so the result compares directly with
// what the client cached from change payloads.
func SelectRows(ctx context.Context, db Querier, table string, filter *protocol.Filter) (json.RawMessage, error) {
	sql := "SELECT coalesce(json_agg(t ORDER BY t.id), '[]'::json) FROM " + pgx.Identifier{table}.Sanitize() + " t"
	var args []any
	if filter != nil {
		value, err := json.Marshal(filter.Value)
		if err != nil {
			return nil, fmt.Errorf("filter value: %w", err)
		}
		col := "to_jsonb(t) -> $2::text"
		switch filter.Op {
		case protocol.FilterEq:
			sql += " WHERE " + col + " = $1::jsonb"
		case protocol.FilterNeq:
			sql += " WHERE " + col + " IS DISTINCT FROM $1::jsonb"
		case protocol.FilterIn:
			sql += " WHERE $1::jsonb @> jsonb_build_array(" + col + ")"
		default:
			return nil, fmt.Errorf("filter op %q not supported", filter.Op)
		}
		args = []any{string(value), filter.Column}
	}
	var rows json.RawMessage
	if err := db.QueryRow(ctx, sql, args...).Scan(&rows); err != nil {
		return nil, fmt.Errorf("select %s: %w", table, err)
	}
	return rows, nil
}
