package e2e_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ripple-rt/ripple/backend/protocol"
	"github.com/ripple-rt/ripple/e2e/harness"
)

// world is one test's database, connection pool and gateway.
type world struct {
	t     *testing.T
	url   string
	db    *pgxpool.Pool
	wsURL string
}

// newWorld makes a fresh database in the shared container and starts a
// gateway on it.
func newWorld(t *testing.T) *world {
	t.Helper()
	url := pg.NewDatabase(t)
	gw := harness.StartGateway(t, url)
	return &world{t: t, url: url, db: harness.Pool(t, url), wsURL: gw.WebSocketURL()}
}

// newClientFunc makes a client connected to wsURL whose queries read db:
// QuickJS or Node.
type newClientFunc func(t *testing.T, wsURL string, db harness.Querier) *harness.Client

func quickJS(t *testing.T, wsURL string, db harness.Querier) *harness.Client {
	return harness.NewClient(t, wsURL, db, harness.ClientOptions{})
}

// exec runs one statement.
func (w *world) exec(sql string, args ...any) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := w.db.Exec(ctx, sql, args...); err != nil {
		w.t.Fatalf("%s: %v", sql, err)
	}
}

// insertID runs an INSERT … RETURNING id.
func (w *world) insertID(sql string, args ...any) int64 {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var id int64
	if err := w.db.QueryRow(ctx, sql, args...).Scan(&id); err != nil {
		w.t.Fatalf("%s: %v", sql, err)
	}
	return id
}

func (w *world) project(org, name string) int64 {
	w.t.Helper()
	return w.insertID(`INSERT INTO projects (organization_id, name) VALUES ($1, $2) RETURNING id`, org, name)
}

func (w *world) job(projectID int64, doc string) int64 {
	w.t.Helper()
	return w.insertID(`INSERT INTO extraction_jobs (project_id, organization_id, document_name)
		SELECT id, organization_id, $2 FROM projects WHERE id = $1 RETURNING id`, projectID, doc)
}

// rows is what the database holds: the SELECT the caches must equal.
func (w *world) rows(table string, filter *protocol.Filter) json.RawMessage {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := harness.SelectRows(ctx, w.db, table, filter)
	if err != nil {
		w.t.Fatal(err)
	}
	return rows
}

var projects = harness.WatchSpec{Channel: "projects", Table: "projects"}

// assertPatched checks that the cache followed by patches alone: no fetch
// since the client was ready, and at least n changes delivered.
func assertPatched(t *testing.T, c *harness.Client, name string, fetches, changes int) {
	t.Helper()
	s := c.State(name)
	if s.Fetches != fetches {
		t.Errorf("%s was fetched %d times, want %d: changes must patch the cache, not refetch it", name, s.Fetches, fetches)
	}
	if s.Changes < changes {
		t.Errorf("%s got %d changes, want at least %d", name, s.Changes, changes)
	}
	if len(s.Resyncs) != 0 {
		t.Errorf("%s got resyncs %v, want none", name, s.Resyncs)
	}
}

func scenarioInsertUpdateDelete(t *testing.T, newClient newClientFunc) {
	w := newWorld(t)
	w.project("org-a", "first")
	gone := w.project("org-a", "second")
	c := newClient(t, w.wsURL, w.db)
	c.Watch("projects", projects)
	c.WaitReady("projects", true)
	c.WaitData("projects", w.rows("projects", nil))
	fetches := c.State("projects").Fetches

	id := w.project("org-a", "third")
	c.WaitData("projects", w.rows("projects", nil))
	w.exec(`UPDATE projects SET status = 'paused', description = 'merged' WHERE id = $1`, id)
	c.WaitData("projects", w.rows("projects", nil))
	w.exec(`DELETE FROM projects WHERE id = $1`, gone)
	c.WaitData("projects", w.rows("projects", nil))
	assertPatched(t, c, "projects", fetches, 3)
}

func scenarioTwoSubscribedOneNot(t *testing.T, newClient newClientFunc) {
	w := newWorld(t)
	id := w.project("org-a", "shared")
	before := w.rows("projects", nil)
	a, b := newClient(t, w.wsURL, w.db), newClient(t, w.wsURL, w.db)
	idle := newClient(t, w.wsURL, w.db)
	for _, c := range []*harness.Client{a, b} {
		c.Watch("projects", projects)
		c.WaitReady("projects", true)
	}
	unbound := projects
	unbound.NoBind = true
	idle.Watch("projects", unbound)
	idle.WaitReady("projects", true)
	idle.WaitData("projects", before)
	fa, fb := a.State("projects").Fetches, b.State("projects").Fetches

	w.project("org-a", "new")
	w.exec(`UPDATE projects SET name = 'renamed' WHERE id = $1`, id)
	after := w.rows("projects", nil)
	a.WaitData("projects", after)
	b.WaitData("projects", after)
	assertPatched(t, a, "projects", fa, 2)
	assertPatched(t, b, "projects", fb, 2)

	// Both subscribed caches have every change; the third never subscribed.
	s := idle.State("projects")
	if !sameJSON(t, s.Data, before) || s.Fetches != 1 || s.Changes != 0 {
		t.Errorf("unsubscribed client: data %s (want %s), %d fetches (want 1), %d changes (want 0)", s.Data, before, s.Fetches, s.Changes)
	}
}

func scenarioFilteredJobs(t *testing.T, newClient newClientFunc) {
	w := newWorld(t)
	mine, other := w.project("org-a", "mine"), w.project("org-a", "other")
	w.job(mine, "a.pdf")
	w.job(other, "b.pdf")
	filter := &protocol.Filter{Column: "project_id", Op: protocol.FilterEq, Value: mine}
	c := newClient(t, w.wsURL, w.db)
	c.Watch("jobs", harness.WatchSpec{Channel: "extraction_jobs", Table: "extraction_jobs", Filter: filter})
	c.WaitReady("jobs", true)
	c.WaitData("jobs", w.rows("extraction_jobs", filter))
	fetches := c.State("jobs").Fetches

	theirs := w.job(other, "c.pdf")
	w.exec(`UPDATE extraction_jobs SET status = 'running' WHERE id = $1`, theirs)
	moving := w.job(mine, "d.pdf")
	w.exec(`UPDATE extraction_jobs SET progress = 50 WHERE id = $1`, moving)
	// Moving a job to the other project takes it out of the filtered list.
	w.exec(`UPDATE extraction_jobs SET project_id = $2 WHERE id = $1`, moving, other)
	last := w.job(mine, "e.pdf")
	want := w.rows("extraction_jobs", filter)
	c.WaitData("jobs", want)

	// Changes come in order, so the last insert arriving means every earlier
	// change of the other project would have arrived too.
	var rows []struct {
		ID        int64 `json:"id"`
		ProjectID int64 `json:"project_id"`
	}
	if err := json.Unmarshal(c.State("jobs").Data, &rows); err != nil {
		t.Fatal(err)
	}
	sawLast := false
	for _, r := range rows {
		if r.ProjectID != mine {
			t.Errorf("job %d of project %d entered the cache of project %d", r.ID, r.ProjectID, mine)
		}
		sawLast = sawLast || r.ID == last
	}
	if !sawLast {
		t.Errorf("the last job %d is missing from the cache", last)
	}
	// insert d, update d, d leaves (a DELETE for this subscription), insert e.
	assertPatched(t, c, "jobs", fetches, 4)
	if got := c.State("jobs").Changes; got != 4 {
		t.Errorf("the filtered subscription got %d changes, want 4 (none of project %d)", got, other)
	}
}

func sameJSON(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("decode %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

// Scenario 1.
func TestInsertUpdateDeletePatchTheCache(t *testing.T) {
	t.Parallel()
	scenarioInsertUpdateDelete(t, quickJS)
}

// Scenario 2.
func TestOnlySubscribedClientsArePatched(t *testing.T) {
	t.Parallel()
	scenarioTwoSubscribedOneNot(t, quickJS)
}

// Scenario 3.
func TestFilterKeepsOtherProjectsOut(t *testing.T) {
	t.Parallel()
	scenarioFilteredJobs(t, quickJS)
}

// Scenario 4.
func TestChangeCreatesNoDataInAnEmptyCache(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := quickJS(t, w.wsURL, w.db)
	unfetched := projects
	unfetched.NoFetch = true
	c.Watch("projects", unfetched)
	c.WaitReady("projects", false)

	w.project("org-a", "unseen")
	c.WaitCount("projects", "changes", 1)
	if s := c.State("projects"); string(s.Data) != "null" || s.Fetches != 0 {
		t.Errorf("never-fetched query: data %s, %d fetches; want no data and no fetch", s.Data, s.Fetches)
	}
}

// Scenario 5.
func TestRowOver8000BytesArrivesWhole(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := w.project("org-a", "big")
	job := w.job(p, "big.pdf")
	c := quickJS(t, w.wsURL, w.db)
	results := harness.WatchSpec{Channel: "extraction_results", Table: "extraction_results"}
	c.Watch("results", results)
	c.WaitReady("results", true)
	fetches := c.State("results").Fetches

	big := strings.Repeat("0123456789abcdef", 1000) // 16000 bytes: over pg_notify's 8000
	id := w.insertID(`INSERT INTO extraction_results (job_id, project_id, organization_id, field_name, value)
		SELECT id, project_id, organization_id, 'body', $2 FROM extraction_jobs WHERE id = $1 RETURNING id`, job, big)
	c.WaitData("results", w.rows("extraction_results", nil))
	w.exec(`UPDATE extraction_results SET value = value || 'more' WHERE id = $1`, id)
	c.WaitData("results", w.rows("extraction_results", nil))
	// The gateway hydrated the truncated notifications: no refetch was needed.
	assertPatched(t, c, "results", fetches, 2)
}

// Scenario 6.
func TestChangesDuringACutSocketArriveByResume(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	first := w.project("org-a", "first")
	second := w.project("org-a", "second")
	c := quickJS(t, w.wsURL, w.db)
	c.Watch("projects", projects)
	c.WaitReady("projects", true)
	c.WaitData("projects", w.rows("projects", nil))
	before := c.State("projects")

	h := c.Host()
	h.PauseDials()
	if n := h.CutSockets(); n != 1 {
		t.Fatalf("cut %d sockets, want 1", n)
	}
	c.WaitStatus("reconnecting")
	w.project("org-a", "made while cut")
	w.exec(`UPDATE projects SET name = 'renamed while cut' WHERE id = $1`, first)
	w.exec(`DELETE FROM projects WHERE id = $1`, second)
	h.ResumeDials()

	c.WaitData("projects", w.rows("projects", nil))
	after := c.State("projects")
	if len(after.Acks) < 2 || !after.Acks[len(after.Acks)-1].Resumed {
		t.Errorf("acks %+v: want a second ack that resumed", after.Acks)
	}
	assertPatched(t, c, "projects", before.Fetches, 3)
}

// Scenario 7.
func TestPostgresRestartResyncsAndRefetches(t *testing.T) {
	t.Parallel()
	own := harness.NewPostgres(t)
	url := own.NewDatabase(t)
	gw := harness.StartGateway(t, url)
	w := &world{t: t, url: url, db: harness.Pool(t, url), wsURL: gw.WebSocketURL()}
	w.project("org-a", "before the restart")
	c := quickJS(t, w.wsURL, w.db)
	c.Watch("projects", projects)
	c.WaitReady("projects", true)
	c.WaitData("projects", w.rows("projects", nil))
	fetches := c.State("projects").Fetches

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := own.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := own.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The listener lost notifications while Postgres was down: it reports a
	// gap, the client gets resync and refetches.
	c.WaitCount("projects", "resyncs", 1)
	c.WaitCount("projects", "fetches", fetches+1)

	w.project("org-a", "after the restart")
	c.WaitData("projects", w.rows("projects", nil))
	if s := c.State("projects"); s.Changes < 1 {
		t.Errorf("no change delivered after the restart: %+v", s)
	}
}

// Scenario 8.
func TestTwoGatewaysOnOneDatabase(t *testing.T) {
	t.Parallel()
	url := pg.NewDatabase(t)
	db := harness.Pool(t, url)
	w := &world{t: t, url: url, db: db}
	id := w.project("org-a", "seen by both")
	var clients []*harness.Client
	for range 2 {
		gw := harness.StartGateway(t, url)
		c := quickJS(t, gw.WebSocketURL(), db)
		c.Watch("projects", projects)
		c.WaitReady("projects", true)
		clients = append(clients, c)
	}
	w.project("org-a", "new")
	w.exec(`UPDATE projects SET status = 'archived' WHERE id = $1`, id)
	want := w.rows("projects", nil)
	for _, c := range clients {
		c.WaitData("projects", want)
	}
}

func node(t *testing.T, wsURL string, db harness.Querier) *harness.Client {
	return harness.NewNodeClient(t, wsURL, db, harness.ClientOptions{})
}

// Scenario 9: scenarios 1–3 again with the same bundle under Node, as a
// cross-check that the WebAssembly engine hides no bug.
func TestNodeCrossCheck(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		run  func(*testing.T, newClientFunc)
	}{
		{"insert update delete", scenarioInsertUpdateDelete},
		{"two subscribed one not", scenarioTwoSubscribedOneNot},
		{"filtered jobs", scenarioFilteredJobs},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, node)
		})
	}
}
