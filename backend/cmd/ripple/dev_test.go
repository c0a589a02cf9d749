package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestDevWithoutPostgresOrDockerFailsAtOnceWithOneLine(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	cmd := exec.Command(binary, "dev", "--addr", "127.0.0.1:0")
	// No initdb on PATH or in RIPPLE_PG_BIN (which hides /usr/lib/postgresql),
	// no Docker engine at DOCKER_HOST, no DATABASE_URL.
	cmd.Env = []string{"PATH=" + empty, "HOME=" + empty, "RIPPLE_PG_BIN=" + empty,
		"DOCKER_HOST=unix://" + filepath.Join(empty, "docker.sock")}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1; stdout %q, stderr %q", err, stdout.String(), stderr.String())
	}
	if took > 10*time.Second {
		t.Errorf("took %v to fail, want at once", took)
	}
	line := strings.TrimSpace(stderr.String())
	if strings.Contains(line, "\n") {
		t.Fatalf("stderr has more than one line:\n%s", line)
	}
	for _, want := range []string{"install PostgreSQL", "Docker", "DATABASE_URL"} {
		if !strings.Contains(line, want) {
			t.Errorf("error line %q does not mention %s", line, want)
		}
	}
}

func TestDevServesTheDemoAPIAndPage(t *testing.T) {
	t.Parallel()
	pageDir := t.TempDir()
	dev := startProc(t, []string{"DATABASE_URL=", "DATABASE_URL_DIRECT="}, "dev", "--addr", "127.0.0.1:0", "--page", pageDir)
	hint := waitLine(t, dev.stdout, regexp.MustCompile(`demo page is not built.*`))[0]
	if !strings.Contains(hint, "go tool task dev") {
		t.Errorf("hint %q does not say how to build the page", hint)
	}
	waitLine(t, dev.stdout, regexp.MustCompile(`^\s*WebSocket:\s+ws://`))
	base := waitLine(t, dev.stdout, regexp.MustCompile(`^Open (http://\S+)/ in your browser`))[1]

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, body := get("/api/projects")
	var projects []map[string]any
	if err := json.Unmarshal([]byte(body), &projects); status != 200 || err != nil || len(projects) != 3 {
		t.Fatalf("GET /api/projects: %d %s (%v), want the 3 seeded projects", status, body, err)
	}
	if status, body := get("/api/projects/0"); status != 400 || !strings.Contains(body, `"error"`) {
		t.Errorf("GET /api/projects/0: %d %s", status, body)
	}
	if status, body := get("/"); status != http.StatusServiceUnavailable || !strings.Contains(body, "go tool task dev") {
		t.Errorf("GET / before the build: %d %s", status, body)
	}
	if err := os.WriteFile(filepath.Join(pageDir, "index.html"), []byte("<title>Ripple demo</title>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if status, body := get("/"); status != 200 || body != "<title>Ripple demo</title>" {
		t.Errorf("GET / after the build: %d %s", status, body)
	}
	if status, _ := get("/healthz"); status != 200 {
		t.Errorf("GET /healthz: %d", status)
	}
	dev.stop(t)
}
