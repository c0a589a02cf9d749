package demoapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// FuzzWriteBodies sends arbitrary bodies to every endpoint that decodes one:
// the answer is never a 5xx and always a JSON object (a row or {"error"}).
func FuzzWriteBodies(f *testing.F) {
	for _, seed := range []string{
		`{"name": "P"}`, `{"name": "P", "organization_id": "o", "description": "d"}`, `{"status": "paused"}`,
		`{"document_name": "a.pdf"}`, `{"status": "running", "progress": 50, "error_message": "e"}`,
		`{"progress": 3000000000}`, `{"progress": -1}`, `{"name": "a\u0000b"}`, `{"status": "x"}`,
		`{"name": null}`, `{}`, `[]`, `null`, ``, `{"name": "P"}x`, `{"name": 1e400}`,
	} {
		f.Add(seed)
	}
	srv, _ := newAPI(f)
	_, p := call(f, srv, "POST", "/api/projects", `{"name": "Fuzzed"}`)
	_, j := call(f, srv, "POST", "/api/projects/"+id(f, p)+"/jobs", `{"document_name": "fuzz.pdf"}`)
	targets := []struct{ method, path string }{
		{"POST", "/api/projects"},
		{"PATCH", "/api/projects/" + id(f, p)},
		{"POST", "/api/projects/" + id(f, p) + "/jobs"},
		{"PATCH", "/api/jobs/" + id(f, j)},
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, target := range targets {
			req, err := http.NewRequest(target.method, srv.URL+target.path, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var out map[string]any
			decodeErr := json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if resp.StatusCode >= 500 || decodeErr != nil {
				t.Fatalf("%s %s %q: %d %v (%v)", target.method, target.path, body, resp.StatusCode, out, decodeErr)
			}
		}
	})
}
