package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ripple-rt/ripple/backend/devdb"
	"github.com/ripple-rt/ripple/backend/pgtest"
	"github.com/ripple-rt/ripple/schema"
)

// binary is the ripple command built once for these tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ripple-cmd-test-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "ripple")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic("build ripple: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running ripple command whose output lines arrive on channels.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr chan string
	done           chan error
}

func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{cmd: cmd, stdout: make(chan string, 1000), stderr: make(chan string, 1000), done: make(chan error, 1)}
	outPipe, _ := cmd.StdoutPipe()
	errPipe, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := func(r io.Reader, ch chan string) {
		s := bufio.NewScanner(r)
		for s.Scan() {
			ch <- s.Text()
		}
	}
	go lines(outPipe, p.stdout)
	go lines(errPipe, p.stderr)
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
	})
	return p
}

// waitLine returns the first line on ch matching re, failing after a deadline.
func waitLine(t *testing.T, ch chan string, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.After(90 * time.Second)
	for {
		select {
		case line := <-ch:
			if m := re.FindStringSubmatch(line); m != nil {
				return m
			}
		case <-deadline:
			t.Fatalf("no line matching %s", re)
		}
	}
}

// stop sends SIGINT and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("%s exited with %v", p.cmd.Args[1], err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop within 30s of SIGINT", p.cmd.Args[1])
	}
}

func TestDevServesAChangeToTail(t *testing.T) {
	dev := startProc(t, []string{"DATABASE_URL=", "DATABASE_URL_DIRECT="}, "dev", "--addr", "127.0.0.1:0")
	wsURL := waitLine(t, dev.stdout, regexp.MustCompile(`^\s*WebSocket:\s+(ws://\S+)`))[1]
	dbURL := waitLine(t, dev.stdout, regexp.MustCompile(`^\s*Database:\s+(postgres://\S+)`))[1]

	tail := startProc(t, nil, "tail", "--url", wsURL, "projects")
	waitLine(t, tail.stderr, regexp.MustCompile(`subscribed to projects`))

	ctx := context.Background()
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	if _, err := db.Exec(ctx, `INSERT INTO projects (name, organization_id) VALUES ('From psql', 'org-1')`); err != nil {
		t.Fatal(err)
	}
	line := waitLine(t, tail.stdout, regexp.MustCompile(`.+`))[0]
	var got struct {
		Channel string `json:"channel"`
		Seq     uint64 `json:"seq"`
		Change  struct {
			Op  string         `json:"op"`
			New map[string]any `json:"new"`
		} `json:"change"`
	}
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("tail printed %q: %v", line, err)
	}
	if got.Channel != "projects" || got.Seq != 1 || got.Change.Op != "INSERT" || got.Change.New["name"] != "From psql" {
		t.Fatalf("tail printed %s", line)
	}
	tail.stop(t)
	db.Close(ctx)
	dev.stop(t)
	waitLine(t, dev.stdout, regexp.MustCompile(`throwaway Postgres removed`))
}

func TestBadSettingStopsServeWithOneLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env  []string
		args []string
		want string
	}{
		{[]string{"DATABASE_URL=postgres://localhost/app", "RIPPLE_RING_SIZE=zero"}, nil, "RIPPLE_RING_SIZE"},
		{[]string{"DATABASE_URL=postgres://localhost/app"}, []string{"--addr", "nowhere"}, "--addr"},
		{[]string{"DATABASE_URL=", "DATABASE_URL_DIRECT="}, nil, "DATABASE_URL"},
	}
	for _, tt := range tests {
		cmd := exec.Command(binary, append([]string{"serve"}, tt.args...)...)
		cmd.Env = append(os.Environ(), tt.env...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Errorf("%v %v: exit %v, want 1", tt.env, tt.args, err)
		}
		text := strings.TrimSpace(string(out))
		if strings.Count(text, "\n") != 0 || !strings.Contains(text, tt.want) {
			t.Errorf("%v %v: output %q, want one line naming %s", tt.env, tt.args, text, tt.want)
		}
	}
}

func TestHelpForEveryCommand(t *testing.T) {
	t.Parallel()
	for _, c := range commands() {
		out, err := exec.Command(binary, c.name, "--help").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Usage: ripple "+c.name) {
			t.Errorf("ripple %s --help: %v\n%s", c.name, err, out)
		}
	}
}

// itemsDatabase starts a Postgres of the test's own with Ripple's schema and
// an enabled table items (id bigint primary key, name text), and returns it
// with a connection closed when the test ends.
func itemsDatabase(t *testing.T) (*devdb.Postgres, *pgx.Conn) {
	t.Helper()
	pg := pgtest.Cluster(t)
	ctx := context.Background()
	db, err := pgx.Connect(ctx, pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	if err := schema.Apply(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `CREATE TABLE items (id bigint PRIMARY KEY, name text)`); err != nil {
		t.Fatal(err)
	}
	if err := schema.Enable(ctx, db, "items"); err != nil {
		t.Fatal(err)
	}
	return pg, db
}

// serve starts `ripple serve` on dbURL and a free port with the extra
// environment env, waits until it listens, and returns it with its WebSocket URL.
func serve(t *testing.T, dbURL string, env ...string) (*proc, string) {
	t.Helper()
	addr := freeAddr(t)
	p := startProc(t, append([]string{"DATABASE_URL=" + dbURL, "DATABASE_URL_DIRECT=", "PG_CHANNELS=", "RIPPLE_ADDR=" + addr}, env...), "serve")
	waitLine(t, p.stderr, regexp.MustCompile(`gateway listening`))
	return p, "ws://" + addr + "/ws"
}
