// Package devdb starts a throwaway PostgreSQL server for `ripple dev` and for
// tests: a temporary cluster made with the machine's initdb when PostgreSQL
// is installed, otherwise a container when a Docker engine is reachable.
//
// initdb and postgres are looked up on PATH, then in Debian's
// /usr/lib/postgresql/*/bin; setting RIPPLE_PG_BIN to a folder makes that
// folder the only place searched (for a PostgreSQL installed elsewhere, or
// to hide the machine's own from a test).
package devdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

// EnvBinDir names the environment variable that, when set, is the only
// folder searched for initdb and postgres.
const EnvBinDir = "RIPPLE_PG_BIN"

// ErrNoPostgres means neither PostgreSQL binaries nor a Docker engine were found.
var ErrNoPostgres = errors.New("no PostgreSQL available: install PostgreSQL (initdb and postgres on PATH, e.g. `apt-get install postgresql`), start a Docker engine, or set DATABASE_URL to an existing database")

// Options configures Start. The zero value is ready to use.
type Options struct {
	// Port is the TCP port the initdb cluster listens on (127.0.0.1). Default: a free port.
	Port int
	// Image is the container image used when no local PostgreSQL is installed.
	// Default: $RIPPLE_DEV_POSTGRES_IMAGE, else "postgres:16-alpine".
	Image string
	// Logger receives one line per start step. Default: silent.
	Logger *slog.Logger
}

// Postgres is a running throwaway server. Stop removes it and its data.
type Postgres struct {
	// URL connects to the "postgres" database as superuser "postgres" (no password).
	URL string
	// Source says how the server was started: "initdb" or "docker".
	Source string

	mu        sync.Mutex
	cmd       *exec.Cmd     // initdb: the running postgres process
	exited    chan struct{} // initdb: closed when cmd has exited
	args      []string      // initdb: postgres command line
	cred      *syscall.Credential
	dir       string
	container *tcpostgres.PostgresContainer
}

// Start starts a throwaway server and waits until it accepts connections.
func Start(ctx context.Context, opts Options) (*Postgres, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if bin, err := findBin("initdb"); err == nil {
		return startInitdb(ctx, filepath.Dir(bin), opts.Port, log)
	}
	if dockerReachable(ctx) {
		image := opts.Image
		if image == "" {
			image = os.Getenv("RIPPLE_DEV_POSTGRES_IMAGE")
		}
		if image == "" {
			image = "postgres:16-alpine"
		}
		return startContainer(ctx, image, log)
	}
	return nil, ErrNoPostgres
}

// findBin finds a PostgreSQL program in $RIPPLE_PG_BIN when it is set, else
// on PATH or in Debian's versioned folders.
func findBin(name string) (string, error) {
	if dir := os.Getenv(EnvBinDir); dir != "" {
		p := filepath.Join(dir, name)
		if info, err := os.Stat(p); err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%s not found in %s=%s", name, EnvBinDir, dir)
		}
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) > 0 {
		return matches[len(matches)-1], nil
	}
	return "", fmt.Errorf("%s not found", name)
}

func startInitdb(ctx context.Context, binDir string, port int, log *slog.Logger) (*Postgres, error) {
	dir, err := os.MkdirTemp("", "ripple-pg-")
	if err != nil {
		return nil, fmt.Errorf("create the cluster folder: %w", err)
	}
	p := &Postgres{Source: "initdb", dir: dir}
	fail := func(err error) (*Postgres, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	// initdb and postgres refuse to run as root: run them as an unprivileged user.
	if os.Geteuid() == 0 {
		cred, err := unprivileged()
		if err != nil {
			return fail(err)
		}
		p.cred = cred
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(fmt.Errorf("hand the cluster folder to uid %d: %w", cred.Uid, err))
		}
	}
	if port == 0 {
		if port, err = freePort(); err != nil {
			return fail(fmt.Errorf("find a free port: %w", err))
		}
	}
	data := filepath.Join(dir, "data")
	log.Info("creating a temporary PostgreSQL cluster", "dir", data)
	initdb := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %w: %s", err, out))
	}
	p.args = []string{filepath.Join(binDir, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=300"}
	p.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	if err := p.startProcess(ctx); err != nil {
		return fail(err)
	}
	log.Info("PostgreSQL is ready", "url", p.URL)
	return p, nil
}

// startProcess runs postgres and waits until it accepts connections.
func (p *Postgres) startProcess(ctx context.Context) error {
	logFile, err := os.OpenFile(filepath.Join(p.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open the server log: %w", err)
	}
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Pdeathsig stops the server when this process dies without calling Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Pdeathsig: syscall.SIGQUIT}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		logFile.Close()
		close(exited)
	}()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	if err := waitReady(ctx, p.URL, exited); err != nil {
		p.stopProcess()
		tail, _ := os.ReadFile(filepath.Join(p.dir, "postgres.log"))
		return fmt.Errorf("postgres did not become ready: %w\n%s", err, tail)
	}
	return nil
}

// stopProcess asks postgres for a fast shutdown and waits for it to exit.
func (p *Postgres) stopProcess() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

func waitReady(ctx context.Context, connURL string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, connURL)
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-exited:
			return errors.New("the server exited")
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root and found no unprivileged user (postgres or nobody) to run PostgreSQL as")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func dockerReachable(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	// testcontainers falls back to the default socket when DOCKER_HOST does
	// not answer; a DOCKER_HOST that is set names the only engine to use.
	if host := os.Getenv("DOCKER_HOST"); host != "" && !dialable(ctx, host) {
		return false
	}
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return false
	}
	defer provider.Close()
	return provider.Health(ctx) == nil
}

// dialable reports whether a Docker host URL (unix:// or tcp://) accepts a
// connection; other schemes (ssh://, npipe://) are left to the Docker client.
func dialable(ctx context.Context, host string) bool {
	u, err := url.Parse(host)
	if err != nil {
		return false
	}
	var d net.Dialer
	var conn net.Conn
	switch u.Scheme {
	case "unix":
		conn, err = d.DialContext(ctx, "unix", u.Path)
	case "tcp":
		conn, err = d.DialContext(ctx, "tcp", u.Host)
	default:
		return true
	}
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

func startContainer(ctx context.Context, image string, log *slog.Logger) (*Postgres, error) {
	log.Info("starting a PostgreSQL container", "image", image)
	c, err := tcpostgres.Run(ctx, image,
		tcpostgres.WithDatabase("postgres"), tcpostgres.WithUsername("postgres"), tcpostgres.WithPassword("postgres"),
		tcpostgres.BasicWaitStrategies())
	if err != nil {
		if c != nil {
			testcontainers.TerminateContainer(c)
		}
		return nil, fmt.Errorf("start container %s: %w", image, err)
	}
	connURL, err := c.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		testcontainers.TerminateContainer(c)
		return nil, fmt.Errorf("address of container %s: %w", image, err)
	}
	log.Info("PostgreSQL is ready", "url", connURL)
	return &Postgres{URL: connURL, Source: "docker", container: c}, nil
}

// Restart stops the server and starts it again on the same port, keeping its
// data, as an operator restarting PostgreSQL would. Only initdb servers can
// be restarted.
func (p *Postgres) Restart(ctx context.Context) error {
	if p.container != nil {
		return errors.New("restart is supported for initdb servers only")
	}
	p.stopProcess()
	return p.startProcess(ctx)
}

// Stop stops the server and deletes its data. It is safe to call twice.
func (p *Postgres) Stop() error {
	if p.container != nil {
		return testcontainers.TerminateContainer(p.container)
	}
	p.stopProcess()
	return os.RemoveAll(p.dir)
}

// WithDatabase returns connURL with its database replaced by name.
func WithDatabase(connURL, name string) string {
	u, err := url.Parse(connURL)
	if err != nil {
		return connURL
	}
	u.Path = "/" + name
	return u.String()
}
