// Package demoapi serves what `ripple dev` shows a new user: a small JSON
// API over the demo tables (projects and their extraction jobs), used by the
// demo page's queries and buttons, and the built demo page itself.
//
// Every row the API returns is built by Postgres with row_to_json, the same
// function Ripple's trigger uses, so a row fetched from the API and a row
// patched in from a change notification have the same shape. Bad input gets
// a 4xx status and a JSON body {"error": "…"}.
package demoapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// MaxListLength is the most rows a list endpoint returns (newest first).
const MaxListLength = 200

// maxBodyBytes bounds a request body.
const maxBodyBytes = 64 << 10

// DefaultOrganization is the organization_id of projects created without one.
const DefaultOrganization = "org-1"

// API is the demo tables' JSON API. It is an [http.Handler] for paths under
// /api/:
//
//	GET    /api/projects               projects, newest first
//	POST   /api/projects               create {"name", "organization_id"?, "description"?}
//	GET    /api/projects/{id}          one project
//	PATCH  /api/projects/{id}          update {"name"?, "status"?, "description"?}
//	DELETE /api/projects/{id}          delete (its jobs go with it)
//	GET    /api/projects/{id}/jobs     the project's extraction jobs, newest first
//	POST   /api/projects/{id}/jobs     create {"document_name"}
//	GET    /api/jobs/{id}              one job
//	PATCH  /api/jobs/{id}              update {"status"?, "progress"?, "error_message"?}
//	POST   /api/jobs/{id}/advance      queued → running → (progress +25) → succeeded
//	DELETE /api/jobs/{id}              delete
//	POST   /api/simulate               make one random change (the page's "simulate activity")
type API struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	mux  *http.ServeMux
}

// NewAPI returns the API over pool, which must hold the demo tables
// (schema.ApplyDemo). log may be nil.
func NewAPI(pool *pgxpool.Pool, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &API{pool: pool, log: log, mux: http.NewServeMux()}
	routes := []struct {
		pattern string
		handle  func(*http.Request) (int, any, error)
	}{
		{"GET /api/projects", a.listProjects},
		{"POST /api/projects", a.createProject},
		{"GET /api/projects/{id}", a.getProject},
		{"PATCH /api/projects/{id}", a.updateProject},
		{"DELETE /api/projects/{id}", a.deleteProject},
		{"GET /api/projects/{id}/jobs", a.listJobs},
		{"POST /api/projects/{id}/jobs", a.createJob},
		{"GET /api/jobs/{id}", a.getJob},
		{"PATCH /api/jobs/{id}", a.updateJob},
		{"POST /api/jobs/{id}/advance", a.advanceJob},
		{"DELETE /api/jobs/{id}", a.deleteJob},
		{"POST /api/simulate", a.simulate},
		{"/api/", func(r *http.Request) (int, any, error) {
			return 0, nil, errorf(http.StatusNotFound, "no endpoint %s %s", r.Method, r.URL.Path)
		}},
	}
	for _, rt := range routes {
		a.mux.Handle(rt.pattern, a.endpoint(rt.handle))
	}
	return a
}

// ServeHTTP serves one API request.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// statusError is an error with the HTTP status it is answered with.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &statusError{status: status, msg: fmt.Sprintf(format, args...)}
}

// endpoint adapts a handler returning (status, body, error) to http: a body
// of json.RawMessage is written as it is, nil with status 204 writes nothing.
func (a *API) endpoint(handle func(*http.Request) (int, any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, body, err := handle(r)
		if err != nil {
			status, body = a.errorBody(r, err)
		}
		w.Header().Set("Cache-Control", "no-store")
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		raw, ok := body.(json.RawMessage)
		if !ok {
			var mErr error
			if raw, mErr = json.Marshal(body); mErr != nil {
				a.log.Error("demo api: encode response", "path", r.URL.Path, "err", mErr)
				status, raw = http.StatusInternalServerError, json.RawMessage(`{"error":"internal error"}`)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(append(raw, '\n')) //nolint:errcheck // the client went away
	})
}

// errorBody maps err to a status and {"error": "…"}: a statusError as it is,
// a constraint violation or bad value as 400, anything else as 500 (logged).
func (a *API) errorBody(r *http.Request, err error) (int, any) {
	var se *statusError
	if errors.As(err, &se) {
		return se.status, map[string]string{"error": se.msg}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23502", "23503", "23505", "23514", "22001", "22003", "22021", "22P02":
			// not null, foreign key, unique, check, too long, out of range, bad byte (NUL), bad text
			return http.StatusBadRequest, map[string]string{"error": pgErr.Message}
		}
	}
	a.log.Error("demo api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return http.StatusInternalServerError, map[string]string{"error": "internal error: " + err.Error()}
}

// pathID reads the {id} path value as a positive integer.
func pathID(r *http.Request) (int64, error) {
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, errorf(http.StatusBadRequest, "bad id %q: want a positive integer", v)
	}
	return id, nil
}

// decode reads one JSON object into dst, refusing unknown fields, trailing
// data and bodies over maxBodyBytes.
func decode(r *http.Request, dst any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return errorf(http.StatusRequestEntityTooLarge, "request body larger than %d bytes", maxBodyBytes)
		}
		return errorf(http.StatusBadRequest, "malformed JSON body: %v", err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "malformed JSON body: data after the object")
	}
	return nil
}

// requiredText trims v and checks it is present and at most 200 characters.
func requiredText(field string, v *string) (string, error) {
	if v == nil || strings.TrimSpace(*v) == "" {
		return "", errorf(http.StatusBadRequest, "%s is required", field)
	}
	return optionalText(field, v)
}

// optionalText trims v (nil stays nil, as an empty string) and bounds its length.
func optionalText(field string, v *string) (string, error) {
	if v == nil {
		return "", nil
	}
	s := strings.TrimSpace(*v)
	if utf8.RuneCountInString(s) > 200 {
		return "", errorf(http.StatusBadRequest, "%s is longer than 200 characters", field)
	}
	return s, nil
}

// one runs a query returning one JSON value; no row means notFound.
func (a *API) one(r *http.Request, notFound error, sql string, args ...any) (json.RawMessage, error) {
	var out json.RawMessage
	err := a.pool.QueryRow(r.Context(), sql, args...).Scan(&out)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound
	}
	return out, err
}

func projectNotFound(id int64) error { return errorf(http.StatusNotFound, "project %d not found", id) }
func jobNotFound(id int64) error     { return errorf(http.StatusNotFound, "job %d not found", id) }

func (a *API) listProjects(r *http.Request) (int, any, error) {
	out, err := a.one(r, nil, `
		SELECT coalesce(json_agg(row_to_json(p) ORDER BY p.created_at DESC, p.id DESC), '[]')
		FROM (SELECT * FROM projects ORDER BY created_at DESC, id DESC LIMIT $1) p`, MaxListLength)
	return http.StatusOK, out, err
}

func (a *API) getProject(r *http.Request) (int, any, error) {
	id, err := pathID(r)
	if err != nil {
		return 0, nil, err
	}
	out, err := a.one(r, projectNotFound(id), `SELECT row_to_json(p) FROM projects p WHERE id = $1`, id)
	return http.StatusOK, out, err
}

func (a *API) createProject(r *http.Request) (int, any, error) {
	var in struct {
		Name           *string `json:"name"`
		OrganizationID *string `json:"organization_id"`
		Description    *string `json:"description"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	name, err := requiredText("name", in.Name)
	if err != nil {
		return 0, nil, err
	}
	org, err := optionalText("organization_id", in.OrganizationID)
	if err != nil {
		return 0, nil, err
	}
	if org == "" {
		org = DefaultOrganization
	}
	desc, err := optionalText("description", in.Description)
	if err != nil {
		return 0, nil, err
	}
	out, err := a.one(r, nil, `
		INSERT INTO projects (name, organization_id, description) VALUES ($1, $2, nullif($3, ''))
		RETURNING row_to_json(projects)`, name, org, desc)
	return http.StatusCreated, out, err
}

func (a *API) updateProject(r *http.Request) (int, any, error) {
	id, err := pathID(r)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Name        *string `json:"name"`
		Status      *string `json:"status"`
		Description *string `json:"description"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if in.Name != nil {
		if _, err := requiredText("name", in.Name); err != nil {
			return 0, nil, err
		}
	}
	if _, err := optionalText("description", in.Description); err != nil {
		return 0, nil, err
	}
	out, err := a.one(r, projectNotFound(id), `
		UPDATE projects SET
			name = coalesce(btrim($2), name),
			status = coalesce($3, status),
			description = CASE WHEN $4::text IS NULL THEN description ELSE nullif(btrim($4), '') END
		WHERE id = $1
		RETURNING row_to_json(projects)`, id, in.Name, in.Status, in.Description)
	return http.StatusOK, out, err
}

func (a *API) deleteProject(r *http.Request) (int, any, error) {
	id, err := pathID(r)
	if err != nil {
		return 0, nil, err
	}
	tag, err := a.pool.Exec(r.Context(), `DELETE FROM projects WHERE id = $1`, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = projectNotFound(id)
	}
	return http.StatusNoContent, nil, err
}

func (a *API) listJobs(r *http.Request) (int, any, error) {
	id, err := pathID(r)
	if err != nil {
		return 0, nil, err
	}
	out, err := a.one(r, projectNotFound(id), `
		SELECT (SELECT coalesce(json_agg(row_to_json(j) ORDER BY j.created_at DESC, j.id DESC), '[]')
		        FROM (SELECT * FROM extraction_jobs WHERE project_id = p.id
		              ORDER BY created_at DESC, id DESC LIMIT $2) j)
		FROM projects p WHERE p.id = $1`, id, MaxListLength)
	return http.StatusOK, out, err
}

func (a *API) createJob(r *http.Request) (int, any, error) {
	id, err := pathID(r)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		DocumentName *string `json:"document_name"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	doc, err := requiredText("document_name", in.DocumentName)
	if err != nil {
		return 0, nil, err
	}
	out, err := a.one(r, projectNotFound(id), `
		INSERT INTO extraction_jobs (project_id, organization_id, document_name)
		SELECT id, organization_id, $2 FROM projects WHERE id = $1
		RETURNING row_to_json(extraction_jobs)`, id, doc)
	return http.StatusCreated, out, err
}

func (a *API) getJob(r *http.Request) (int, any, error) {
	id, err := pathID(r)
	if err != nil {
		return 0, nil, err
	}
	out, err := a.one(r, jobNotFound(id), `SELECT row_to_json(j) FROM extraction_jobs j WHERE id = $1`, id)
	return http.StatusOK, out, err
}

func (a *API) updateJob(r *http.Request) (int, any, error) {
	id, err := pathID(r)
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Status       *string `json:"status"`
		Progress     *int    `json:"progress"`
		ErrorMessage *string `json:"error_message"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if _, err := optionalText("error_message", in.ErrorMessage); err != nil {
		return 0, nil, err
	}
	if in.Progress != nil && (*in.Progress < 0 || *in.Progress > 100) {
		return 0, nil, errorf(http.StatusBadRequest, "progress %d is outside 0..100", *in.Progress)
	}
	out, err := a.one(r, jobNotFound(id), `
		UPDATE extraction_jobs SET
			status = coalesce($2, status),
			progress = coalesce($3, progress),
			error_message = coalesce($4, error_message),
			started_at = CASE WHEN $2 = 'running' THEN coalesce(started_at, now()) ELSE started_at END,
			finished_at = CASE WHEN $2 IN ('succeeded', 'failed') THEN coalesce(finished_at, now()) ELSE finished_at END
		WHERE id = $1
		RETURNING row_to_json(extraction_jobs)`, id, in.Status, in.Progress, in.ErrorMessage)
	return http.StatusOK, out, err
}

// advanceSQL moves a job one step: queued → running (progress 0), then
// progress +25 per step, and succeeded when it reaches 100.
const advanceSQL = `
	UPDATE extraction_jobs SET
		status = CASE WHEN status = 'queued' THEN 'running'
		              WHEN progress + 25 >= 100 THEN 'succeeded' ELSE status END,
		progress = CASE WHEN status = 'queued' THEN 0 ELSE least(progress + 25, 100) END,
		started_at = CASE WHEN status = 'queued' THEN now() ELSE started_at END,
		finished_at = CASE WHEN status = 'running' AND progress + 25 >= 100 THEN now() ELSE finished_at END
	WHERE id = $1 AND status IN ('queued', 'running')
	RETURNING row_to_json(extraction_jobs)`

func (a *API) advanceJob(r *http.Request) (int, any, error) {
	id, err := pathID(r)
	if err != nil {
		return 0, nil, err
	}
	out, err := a.one(r, nil, advanceSQL, id)
	if err != nil || out != nil {
		return http.StatusOK, out, err
	}
	var status string
	err = a.pool.QueryRow(r.Context(), `SELECT status FROM extraction_jobs WHERE id = $1`, id).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, jobNotFound(id)
	}
	if err != nil {
		return 0, nil, err
	}
	return 0, nil, errorf(http.StatusConflict, "job %d is %s: nothing to advance", id, status)
}

func (a *API) deleteJob(r *http.Request) (int, any, error) {
	id, err := pathID(r)
	if err != nil {
		return 0, nil, err
	}
	tag, err := a.pool.Exec(r.Context(), `DELETE FROM extraction_jobs WHERE id = $1`, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = jobNotFound(id)
	}
	return http.StatusNoContent, nil, err
}
