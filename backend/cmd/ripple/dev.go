package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ripple-rt/ripple/backend/config"
	"github.com/ripple-rt/ripple/backend/demoapi"
	"github.com/ripple-rt/ripple/backend/devdb"
	"github.com/ripple-rt/ripple/backend/server"
	"github.com/ripple-rt/ripple/schema"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev", "[flags]", "Run Ripple on a throwaway Postgres (the machine's initdb, else Docker) with the demo\n"+
		"tables enabled, or on DATABASE_URL when it is set, and serve the demo page and its JSON API\n"+
		"(/api/) next to /ws. Authentication is off. Ctrl-C stops and removes everything it started.", stderr)
	config.RegisterFlags(fs)
	pageDir := fs.String("page", envOr("RIPPLE_DEMO_PAGE", demoapi.DefaultPageDir),
		"folder of the built demo page (env RIPPLE_DEMO_PAGE)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(fs, os.Getenv, false)
	if err != nil {
		return err
	}
	cfg.Auth = "none"
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	step := func(format string, a ...any) { fmt.Fprintf(stdout, "ripple dev: "+format+"\n", a...) }

	if cfg.DatabaseURL == "" {
		step("starting a throwaway Postgres…")
		pg, err := devdb.Start(ctx, devdb.Options{})
		if err != nil {
			return err
		}
		defer func() {
			pg.Stop()
			step("throwaway Postgres removed")
		}()
		step("Postgres is up (%s)", pg.Source)
		cfg.DatabaseURL, cfg.DatabaseURLDirect = pg.URL, pg.URL
	}
	if err := prepareDemo(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	step("schema applied; demo tables %v enabled", schema.DemoTables())
	if len(cfg.Channels) == 0 {
		cfg.Channels = schema.DemoTables()
	}
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	defer pool.Close()
	if seeded, err := demoapi.Seed(ctx, pool); err != nil {
		return err
	} else if seeded {
		step("demo tables were empty: added 3 projects with a few extraction jobs")
	}
	page := demoapi.NewPage(*pageDir)
	if page.Built() {
		step("demo page from %s", page.Dir())
	} else {
		step("the demo page is not built (%s/index.html is missing): %s", page.Dir(), demoapi.BuildHint)
	}
	mounts := []server.Mount{{Pattern: "/api/", Handler: demoapi.NewAPI(pool, log)}}
	for _, pattern := range page.Patterns() {
		mounts = append(mounts, server.Mount{Pattern: pattern, Handler: page})
	}
	step("starting the gateway…")
	srv, err := server.Start(ctx, cfg, log, mounts...)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `
Ripple is live. Ctrl-C stops it.
  WebSocket: %s
  Database:  %s
  API:       %s/api/projects
  Watch:     go run ./backend/cmd/ripple tail projects --url %s
  Change:    psql '%s' -c "UPDATE projects SET name = 'Renamed in psql' WHERE id = (SELECT max(id) FROM projects)"

Open %s/ in your browser (two tabs side by side), then change a row.
`, srv.WebSocketURL(), cfg.DatabaseURL, srv.URL(), srv.WebSocketURL(), cfg.DatabaseURL, srv.URL())
	<-ctx.Done()
	step("stopping…")
	return shutdown(srv, cfg, log)
}

// prepareDemo applies Ripple's schema and the demo tables and enables the
// trigger on them.
func prepareDemo(ctx context.Context, dbURL string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect to DATABASE_URL: %w", err)
	}
	defer conn.Close(context.Background())
	if err := schema.Apply(ctx, conn); err != nil {
		return err
	}
	if err := schema.ApplyDemo(ctx, conn); err != nil {
		return err
	}
	return schema.EnableDemo(ctx, conn)
}

// envOr returns the environment variable name, or def when it is unset or empty.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
