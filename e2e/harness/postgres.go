// Package harness runs Ripple end to end for the e2e tests: Postgres in a
// container (testcontainers-go), the gateway in-process, and clients that
// run the built client-ts bundle in QuickJS (via jshost) or in Node, with a
// real TanStack QueryClient whose cache the tests compare with the database.
package harness

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/ripple-rt/ripple/schema"
)

// DefaultImage is the Postgres image used when RIPPLE_E2E_POSTGRES_IMAGE is unset.
const DefaultImage = "postgres:16-alpine"

// Image returns the Postgres image to run: RIPPLE_E2E_POSTGRES_IMAGE, or
// [DefaultImage]. CI sets the local image built by tools/pgimage.
func Image() string {
	if v := os.Getenv("RIPPLE_E2E_POSTGRES_IMAGE"); v != "" {
		return v
	}
	return DefaultImage
}

// Postgres is a Postgres server in a container whose host port stays the
// same across [Postgres.Stop] and [Postgres.Start], so URLs stay valid.
type Postgres struct {
	container *postgres.PostgresContainer
	port      string
	admin     string // URL of the maintenance database
	dbs       atomic.Int64
}

// StartPostgres starts a container from [Image] and waits until it accepts
// connections. Stop it with [Postgres.Terminate].
func StartPostgres(ctx context.Context) (*Postgres, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	image := Image()
	c, err := postgres.Run(ctx, image,
		postgres.WithDatabase("postgres"),
		postgres.WithUsername("ripple"),
		postgres.WithPassword("ripple"),
		postgres.BasicWaitStrategies(),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = network.PortMap{
				network.MustParsePort("5432/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: port}},
			}
		}),
	)
	if err != nil {
		if c != nil {
			_ = c.Terminate(context.Background())
		}
		return nil, fmt.Errorf("start Postgres container from image %s: %w", image, err)
	}
	return &Postgres{
		container: c,
		port:      port,
		admin:     "postgres://ripple:ripple@127.0.0.1:" + port + "/postgres?sslmode=disable",
	}, nil
}

// NewPostgres starts a container for one test and terminates it when the
// test ends.
func NewPostgres(t testing.TB) *Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := StartPostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Terminate(context.Background()); err != nil {
			t.Errorf("terminate Postgres: %v", err)
		}
	})
	return p
}

// Terminate removes the container and its volumes.
func (p *Postgres) Terminate(ctx context.Context) error {
	return p.container.Terminate(ctx)
}

// Stop stops the server (SIGINT: fast shutdown) and waits until it is down.
func (p *Postgres) Stop(ctx context.Context) error {
	timeout := 10 * time.Second
	if err := p.container.Stop(ctx, &timeout); err != nil {
		return fmt.Errorf("stop Postgres: %w", err)
	}
	return nil
}

// Start starts a stopped server on the same host port and waits until it
// accepts connections.
func (p *Postgres) Start(ctx context.Context) error {
	if err := p.container.Start(ctx); err != nil {
		return fmt.Errorf("start Postgres again: %w", err)
	}
	return nil
}

// NewDatabase creates a fresh database holding Ripple's schema and the demo
// tables with notifications enabled, and returns its URL. The database is
// dropped when the test ends (after everything registered later, such as
// gateways, has been stopped).
func (p *Postgres) NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := fmt.Sprintf("e2e_%d", p.dbs.Add(1))
	admin, err := pgx.Connect(ctx, p.admin)
	if err != nil {
		t.Fatalf("connect to Postgres: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, p.admin)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})

	url := "postgres://ripple:ripple@127.0.0.1:" + p.port + "/" + name + "?sslmode=disable"
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to %s: %v", name, err)
	}
	defer conn.Close(ctx)
	for _, step := range []struct {
		what string
		run  func(context.Context, schema.DB) error
	}{
		{"apply Ripple's schema", schema.Apply},
		{"apply the demo tables", schema.ApplyDemo},
		{"enable the demo tables", schema.EnableDemo},
	} {
		if err := step.run(ctx, conn); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
	}
	return url
}

// Pool opens a connection pool on url, closed when the test ends.
func Pool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("pool %s: %v", url, err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
}
