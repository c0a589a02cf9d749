package demoapi

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SimulatedChange is the answer of POST /api/simulate: what was changed.
type SimulatedChange struct {
	// Action is one of advance_job, add_job, toggle_project, delete_job, add_project.
	Action string `json:"action"`
	// Table is the table written.
	Table string `json:"table"`
	// ID is the row's id.
	ID int64 `json:"id"`
}

// simAction makes one kind of change; ok is false when it found nothing to
// change. weight is its odds (in percent) of being tried first.
type simAction struct {
	name, table string
	weight      int
	run         func(ctx context.Context, pool *pgxpool.Pool) (id int64, ok bool, err error)
}

var simActions = []simAction{
	{"advance_job", "extraction_jobs", 50, func(ctx context.Context, pool *pgxpool.Pool) (int64, bool, error) {
		id, ok, err := returningID(pool.QueryRow(ctx,
			`SELECT id FROM extraction_jobs WHERE status IN ('queued', 'running') ORDER BY random() LIMIT 1`))
		if !ok || err != nil {
			return 0, false, err
		}
		var row []byte
		if err := pool.QueryRow(ctx, advanceSQL, id).Scan(&row); errors.Is(err, pgx.ErrNoRows) {
			return 0, false, nil // finished meanwhile
		} else if err != nil {
			return 0, false, err
		}
		return id, true, nil
	}},
	{"add_job", "extraction_jobs", 30, func(ctx context.Context, pool *pgxpool.Pool) (int64, bool, error) {
		doc := fmt.Sprintf("%s-%04d.pdf", []string{"invoice", "contract", "permit", "survey", "receipt"}[rand.IntN(5)], rand.IntN(10000))
		return returningID(pool.QueryRow(ctx, `
			INSERT INTO extraction_jobs (project_id, organization_id, document_name)
			SELECT id, organization_id, $1 FROM projects ORDER BY random() LIMIT 1
			RETURNING id`, doc))
	}},
	{"toggle_project", "projects", 10, func(ctx context.Context, pool *pgxpool.Pool) (int64, bool, error) {
		return returningID(pool.QueryRow(ctx, `
			UPDATE projects SET status = CASE status WHEN 'active' THEN 'paused' ELSE 'active' END
			WHERE id = (SELECT id FROM projects WHERE status <> 'archived' ORDER BY random() LIMIT 1)
			RETURNING id`))
	}},
	{"delete_job", "extraction_jobs", 5, func(ctx context.Context, pool *pgxpool.Pool) (int64, bool, error) {
		// The oldest finished job of a project that has more than five.
		return returningID(pool.QueryRow(ctx, `
			DELETE FROM extraction_jobs WHERE id = (
				SELECT id FROM extraction_jobs j
				WHERE status IN ('succeeded', 'failed') AND (
					SELECT count(*) FROM extraction_jobs f
					WHERE f.project_id = j.project_id AND f.status IN ('succeeded', 'failed')) > 5
				ORDER BY created_at, id LIMIT 1)
			RETURNING id`))
	}},
	{"add_project", "projects", 5, func(ctx context.Context, pool *pgxpool.Pool) (int64, bool, error) {
		name := fmt.Sprintf("%s %s", []string{"North", "Harbour", "Ridge", "Valley", "Delta"}[rand.IntN(5)],
			[]string{"survey", "audit", "intake", "rollout"}[rand.IntN(4)])
		return returningID(pool.QueryRow(ctx, `
			INSERT INTO projects (name, organization_id)
			SELECT $1, $2 WHERE (SELECT count(*) FROM projects) < 6
			RETURNING id`, name, DefaultOrganization))
	}},
}

// returningID reads the id of the changed row; no row means nothing was changed.
func returningID(row pgx.Row) (int64, bool, error) {
	var id int64
	err := row.Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return id, err == nil, err
}

// simulate makes one random change: it tries an action chosen by weight,
// then the others in order until one finds something to change.
func (a *API) simulate(r *http.Request) (int, any, error) {
	n, first := rand.IntN(100), 0
	for i, act := range simActions {
		if n < act.weight {
			first = i
			break
		}
		n -= act.weight
	}
	for i := range simActions {
		act := simActions[(first+i)%len(simActions)]
		id, ok, err := act.run(r.Context(), a.pool)
		if err != nil {
			return 0, nil, fmt.Errorf("simulate %s: %w", act.name, err)
		}
		if ok {
			return http.StatusOK, SimulatedChange{Action: act.name, Table: act.table, ID: id}, nil
		}
	}
	return 0, nil, errorf(http.StatusConflict, "nothing to simulate")
}

// Seed fills empty demo tables with a few projects and jobs, so the page has
// something to show on first start. It reports whether it inserted anything;
// tables that already hold a project are left alone.
func Seed(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	tag, err := pool.Exec(ctx, `
		WITH p AS (
			INSERT INTO projects (name, organization_id, description, created_at)
			SELECT v.name, $1, v.description, now() - v.age
			FROM (VALUES ('Harbour survey', 'Scanned permits from the harbour office', interval '3 minutes'),
			             ('Supplier intake', 'Invoices from new suppliers', interval '2 minutes'),
			             ('Contract audit', 'Signed contracts, 2024', interval '1 minute')) v(name, description, age)
			WHERE NOT EXISTS (SELECT 1 FROM projects)
			RETURNING id, organization_id, name
		)
		INSERT INTO extraction_jobs (project_id, organization_id, document_name, status, progress, started_at, finished_at, created_at)
		SELECT p.id, p.organization_id, j.doc, j.status, j.progress,
		       CASE WHEN j.status <> 'queued' THEN now() END,
		       CASE WHEN j.status = 'succeeded' THEN now() END,
		       now() - j.age
		FROM p CROSS JOIN (VALUES ('invoice-0001.pdf', 'succeeded', 100, interval '50 seconds'),
		                          ('invoice-0002.pdf', 'running', 50, interval '40 seconds'),
		                          ('permit-0003.pdf', 'queued', 0, interval '30 seconds')) j(doc, status, progress, age)`,
		DefaultOrganization)
	if err != nil {
		return false, fmt.Errorf("seed demo tables: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}
