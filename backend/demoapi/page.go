package demoapi

import (
	"html/template"
	"net/http"
	"os"
	"path/filepath"
)

// DefaultPageDir is where `npm run build` in client-ts/examples/demo puts the
// page, relative to the repository root.
const DefaultPageDir = "client-ts/examples/demo/dist"

// BuildHint tells how to build the page.
const BuildHint = "`go tool task dev` builds it (or: cd client-ts/examples/demo && npm ci && npm run build)"

// Page serves the built demo page from a folder: index.html at / and the
// hashed bundles under /assets/. When the folder holds no index.html, / says
// how to build it instead.
type Page struct {
	dir   string
	files http.Handler
}

// NewPage returns the page served from dir (Vite's output folder).
func NewPage(dir string) *Page {
	return &Page{dir: dir, files: http.FileServer(http.Dir(dir))}
}

// Patterns are the [http.ServeMux] patterns the page answers: the root and
// /assets/. They leave /ws, /api/ and the gateway's other endpoints alone.
func (p *Page) Patterns() []string { return []string{"/{$}", "/assets/"} }

// Built reports whether dir holds index.html.
func (p *Page) Built() bool {
	info, err := os.Stat(filepath.Join(p.dir, "index.html"))
	return err == nil && info.Mode().IsRegular()
}

// Dir returns the folder the page is served from.
func (p *Page) Dir() string { return p.dir }

// ServeHTTP serves a file of the page, or the build hint at / when it is not built.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/" {
		// index.html names the hashed bundles: always ask for a fresh one.
		w.Header().Set("Cache-Control", "no-cache")
		if !p.Built() {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			notBuilt.Execute(w, map[string]string{"Dir": p.dir, "Hint": BuildHint}) //nolint:errcheck // the client went away
			return
		}
	}
	p.files.ServeHTTP(w, r)
}

var notBuilt = template.Must(template.New("notbuilt").Parse(`<!doctype html>
<meta charset="utf-8"><title>Ripple demo: page not built</title>
<body style="font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 4rem auto">
<h1>The demo page is not built</h1>
<p>Ripple is running (WebSocket at <code>/ws</code>, demo API at <code>/api/projects</code>),
but <code>{{.Dir}}/index.html</code> does not exist.</p>
<p>{{.Hint}}, then reload this page.</p>
</body>
`))
