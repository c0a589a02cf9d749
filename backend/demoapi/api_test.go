package demoapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ripple-rt/ripple/backend/demoapi"
	"github.com/ripple-rt/ripple/backend/pgtest"
	"github.com/ripple-rt/ripple/schema"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newAPI serves the API over a fresh database holding the demo tables.
func newAPI(t testing.TB) (*httptest.Server, *pgxpool.Pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := schema.ApplyDemo(ctx, pool); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(demoapi.NewAPI(pool, nil))
	t.Cleanup(srv.Close)
	return srv, pool
}

// call sends a request and returns the status and the decoded JSON body (nil when empty).
func call(t testing.TB, srv *httptest.Server, method, path, body string) (int, any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) == 0 {
		return resp.StatusCode, nil
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, body %s", method, path, ct, raw)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: body %q is not JSON: %v", method, path, raw, err)
	}
	return resp.StatusCode, out
}

// get returns the body of a GET.
func get(t *testing.T, srv *httptest.Server, path string) any {
	t.Helper()
	_, body := call(t, srv, "GET", path, "")
	return body
}

// object asserts v is a JSON object.
func object(t testing.TB, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("got %v, want a JSON object", v)
	}
	return m
}

// names returns the "name" (or "document_name") of each row of a JSON array.
func names(t *testing.T, v any) []string {
	t.Helper()
	rows, ok := v.([]any)
	if !ok {
		t.Fatalf("got %v, want a JSON array", v)
	}
	var out []string
	for _, r := range rows {
		m := object(t, r)
		if n, ok := m["name"].(string); ok {
			out = append(out, n)
		} else {
			out = append(out, m["document_name"].(string))
		}
	}
	return out
}

// id returns the "id" of a JSON object, as a path segment.
func id(t testing.TB, v any) string {
	t.Helper()
	n, ok := object(t, v)["id"].(float64)
	if !ok {
		t.Fatalf("%v has no numeric id", v)
	}
	return strconv.FormatFloat(n, 'f', -1, 64)
}

func TestProjectsAndJobsLifecycle(t *testing.T) {
	t.Parallel()
	srv, _ := newAPI(t)

	status, body := call(t, srv, "GET", "/api/projects", "")
	if status != 200 || len(names(t, body)) != 0 {
		t.Fatalf("empty list: %d %v", status, body)
	}
	_, first := call(t, srv, "POST", "/api/projects", `{"name": "  First  "}`)
	status, second := call(t, srv, "POST", "/api/projects", `{"name": "Second", "organization_id": "org-2", "description": "d"}`)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, second)
	}
	if got := object(t, first); got["name"] != "First" || got["organization_id"] != demoapi.DefaultOrganization || got["status"] != "active" {
		t.Fatalf("created %v", got)
	}
	if _, body := call(t, srv, "GET", "/api/projects", ""); strings.Join(names(t, body), ",") != "Second,First" {
		t.Fatalf("list is not newest first: %v", names(t, body))
	}

	p := id(t, first)
	if status, body := call(t, srv, "PATCH", "/api/projects/"+p, `{"name": "Renamed", "status": "paused"}`); status != 200 ||
		object(t, body)["name"] != "Renamed" || object(t, body)["status"] != "paused" {
		t.Fatalf("update: %d %v", status, body)
	}
	if _, body := call(t, srv, "GET", "/api/projects/"+p, ""); object(t, body)["name"] != "Renamed" {
		t.Fatalf("get after update: %v", body)
	}

	_, job1 := call(t, srv, "POST", "/api/projects/"+p+"/jobs", `{"document_name": "a.pdf"}`)
	status, job2 := call(t, srv, "POST", "/api/projects/"+p+"/jobs", `{"document_name": "b.pdf"}`)
	if status != http.StatusCreated || object(t, job2)["status"] != "queued" || object(t, job2)["organization_id"] != demoapi.DefaultOrganization {
		t.Fatalf("create job: %d %v", status, job2)
	}
	if _, body := call(t, srv, "GET", "/api/projects/"+id(t, second)+"/jobs", ""); len(names(t, body)) != 0 {
		t.Fatalf("another project's jobs leaked: %v", body)
	}
	if _, body := call(t, srv, "GET", "/api/projects/"+p+"/jobs", ""); strings.Join(names(t, body), ",") != "b.pdf,a.pdf" {
		t.Fatalf("jobs not newest first: %v", names(t, body))
	}

	// advance: queued → running 0 → 25 → 50 → 75 → succeeded 100 → conflict.
	j := id(t, job1)
	want := []struct {
		status   string
		progress float64
	}{{"running", 0}, {"running", 25}, {"running", 50}, {"running", 75}, {"succeeded", 100}}
	for i, w := range want {
		status, body := call(t, srv, "POST", "/api/jobs/"+j+"/advance", "")
		got := object(t, body)
		if status != 200 || got["status"] != w.status || got["progress"] != w.progress {
			t.Fatalf("advance %d: %d %v, want %s %v", i, status, got, w.status, w.progress)
		}
	}
	if got := object(t, get(t, srv, "/api/jobs/"+j)); got["started_at"] == nil || got["finished_at"] == nil {
		t.Fatalf("finished job lacks timestamps: %v", got)
	}
	if status, body := call(t, srv, "POST", "/api/jobs/"+j+"/advance", ""); status != http.StatusConflict ||
		!strings.Contains(object(t, body)["error"].(string), "succeeded") {
		t.Fatalf("advance a finished job: %d %v", status, body)
	}
	if status, body := call(t, srv, "PATCH", "/api/jobs/"+id(t, job2), `{"status": "failed", "error_message": "unreadable"}`); status != 200 ||
		object(t, body)["status"] != "failed" || object(t, body)["finished_at"] == nil {
		t.Fatalf("update job: %d %v", status, body)
	}

	if status, _ := call(t, srv, "DELETE", "/api/jobs/"+id(t, job2), ""); status != http.StatusNoContent {
		t.Fatalf("delete job: %d", status)
	}
	if status, _ := call(t, srv, "DELETE", "/api/projects/"+p, ""); status != http.StatusNoContent {
		t.Fatalf("delete project: %d", status)
	}
	if status, _ := call(t, srv, "GET", "/api/jobs/"+j, ""); status != http.StatusNotFound {
		t.Fatalf("a deleted project's job is still there: %d", status)
	}
	if _, body := call(t, srv, "GET", "/api/projects", ""); strings.Join(names(t, body), ",") != "Second" {
		t.Fatalf("after delete: %v", names(t, body))
	}
}

func TestBadInputGetsA4xxJSONError(t *testing.T) {
	t.Parallel()
	srv, _ := newAPI(t)
	_, p := call(t, srv, "POST", "/api/projects", `{"name": "P"}`)
	_, j := call(t, srv, "POST", "/api/projects/"+id(t, p)+"/jobs", `{"document_name": "a.pdf"}`)
	pid, jid := id(t, p), id(t, j)

	tests := []struct {
		method, path, body string
		status             int
		errorHas           string
	}{
		{"GET", "/api/projects/999999", "", 404, "project 999999 not found"},
		{"PATCH", "/api/projects/999999", `{"name": "x"}`, 404, "not found"},
		{"DELETE", "/api/projects/999999", "", 404, "not found"},
		{"GET", "/api/projects/999999/jobs", "", 404, "not found"},
		{"POST", "/api/projects/999999/jobs", `{"document_name": "x"}`, 404, "not found"},
		{"GET", "/api/jobs/999999", "", 404, "job 999999 not found"},
		{"POST", "/api/jobs/999999/advance", "", 404, "not found"},
		{"PATCH", "/api/jobs/999999", `{"progress": 1}`, 404, "not found"},
		{"DELETE", "/api/jobs/999999", "", 404, "not found"},
		{"GET", "/api/projects/abc", "", 400, "bad id"},
		{"GET", "/api/jobs/-1", "", 400, "bad id"},
		{"GET", "/api/nothing", "", 404, "no endpoint"},
		{"PUT", "/api/projects", "", 404, "no endpoint PUT"},
		{"POST", "/api/projects", `{"name": `, 400, "malformed JSON"},
		{"POST", "/api/projects", `not json`, 400, "malformed JSON"},
		{"POST", "/api/projects", `["name"]`, 400, "malformed JSON"},
		{"POST", "/api/projects", `{"name": "a"} {"name": "b"}`, 400, "data after the object"},
		{"POST", "/api/projects", `{"nam": "typo"}`, 400, "unknown field"},
		{"POST", "/api/projects", `{"name": 7}`, 400, "malformed JSON"},
		{"POST", "/api/projects", `{"name": "   "}`, 400, "name is required"},
		{"POST", "/api/projects", `{}`, 400, "name is required"},
		{"POST", "/api/projects", `{"name": "` + strings.Repeat("x", 201) + `"}`, 400, "longer than 200"},
		{"POST", "/api/projects", `{"name": "` + strings.Repeat("x", 70<<10) + `"}`, 413, "larger than"},
		{"PATCH", "/api/projects/" + pid, `{"status": "exploded"}`, 400, "check constraint"},
		{"PATCH", "/api/projects/" + pid, `{"name": ""}`, 400, "name is required"},
		{"PATCH", "/api/projects/" + pid, `{`, 400, "malformed JSON"},
		{"POST", "/api/projects/" + pid + "/jobs", `{}`, 400, "document_name is required"},
		{"PATCH", "/api/jobs/" + jid, `{"progress": 101}`, 400, "outside 0..100"},
		{"PATCH", "/api/jobs/" + jid, `{"progress": 3000000000}`, 400, "outside 0..100"},
		{"PATCH", "/api/jobs/" + jid, `{"status": "exploded"}`, 400, "check constraint"},
		{"POST", "/api/projects", `{"name": "a\u0000b"}`, 400, "0x00"},
		{"PATCH", "/api/jobs/" + jid, `{"progress": "half"}`, 400, "malformed JSON"},
	}
	for _, tt := range tests {
		status, body := call(t, srv, tt.method, tt.path, tt.body)
		msg, _ := object(t, body)["error"].(string)
		if status != tt.status || !strings.Contains(msg, tt.errorHas) {
			t.Errorf("%s %s %.40s: %d %q, want %d with an error containing %q", tt.method, tt.path, tt.body, status, msg, tt.status, tt.errorHas)
		}
	}
	if _, body := call(t, srv, "GET", "/api/projects/"+pid, ""); object(t, body)["status"] != "active" {
		t.Fatalf("a refused update changed the row: %v", body)
	}
}

func TestRowsHaveTheTriggersShape(t *testing.T) {
	t.Parallel()
	srv, pool := newAPI(t)
	_, created := call(t, srv, "POST", "/api/projects", `{"name": "Shape"}`)
	var fromPostgres map[string]any
	if err := pool.QueryRow(context.Background(), `SELECT row_to_json(p) FROM projects p`).Scan(&fromPostgres); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(object(t, created))
	b, _ := json.Marshal(fromPostgres)
	if string(a) != string(b) {
		t.Fatalf("API row %s differs from row_to_json %s", a, b)
	}
}

func TestSimulateChangesSomethingEachCall(t *testing.T) {
	t.Parallel()
	srv, pool := newAPI(t)
	seeded, err := demoapi.Seed(context.Background(), pool)
	if err != nil || !seeded {
		t.Fatalf("Seed: %v %v", seeded, err)
	}
	if again, err := demoapi.Seed(context.Background(), pool); err != nil || again {
		t.Fatalf("Seed on filled tables: %v %v, want no insert", again, err)
	}
	actions := map[string]bool{}
	for range 60 {
		status, body := call(t, srv, "POST", "/api/simulate", "")
		got := object(t, body)
		if status != 200 || got["id"] == nil {
			t.Fatalf("simulate: %d %v", status, body)
		}
		actions[got["action"].(string)] = true
	}
	if !actions["advance_job"] || !actions["add_job"] {
		t.Fatalf("60 steps made only %v", actions)
	}
	var projects int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM projects`).Scan(&projects); err != nil || projects > 6 {
		t.Fatalf("projects: %d %v, want at most 6", projects, err)
	}
}

func TestPageServesTheBuildOrSaysHowToBuildIt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	page := demoapi.NewPage(dir)
	mux := http.NewServeMux()
	for _, p := range page.Patterns() {
		mux.Handle(p, page)
	}
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "gateway") })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if page.Built() {
		t.Fatal("Built() on an empty folder")
	}
	if status, body := get("/"); status != http.StatusServiceUnavailable || !strings.Contains(body, "go tool task dev") {
		t.Fatalf("unbuilt page: %d %s", status, body)
	}
	if err := os.MkdirAll(filepath.Join(dir, "assets"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>demo</h1>"), 0o644)
	os.WriteFile(filepath.Join(dir, "assets", "app.js"), []byte("console.log(1)"), 0o644)
	tests := []struct {
		path   string
		status int
		body   string
	}{
		{"/", 200, "<h1>demo</h1>"},
		{"/assets/app.js", 200, "console.log(1)"},
		{"/assets/missing.js", 404, ""},
		{"/ws", 200, "gateway"},
	}
	for _, tt := range tests {
		status, body := get(tt.path)
		if status != tt.status || !strings.Contains(body, tt.body) {
			t.Errorf("GET %s: %d %q, want %d %q", tt.path, status, body, tt.status, tt.body)
		}
	}
}
