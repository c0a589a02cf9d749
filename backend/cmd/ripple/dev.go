package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ripple-rt/ripple/backend/config"
	"github.com/ripple-rt/ripple/backend/devdb"
	"github.com/ripple-rt/ripple/backend/server"
	"github.com/ripple-rt/ripple/schema"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev", "[flags]", "Run Ripple on a throwaway Postgres (the machine's initdb, else Docker) with the demo\n"+
		"tables enabled, or on DATABASE_URL when it is set. Authentication is off. Ctrl-C stops\nand removes everything it started.", stderr)
	config.RegisterFlags(fs)
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
	srv, err := server.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `
Ripple is live. Ctrl-C stops it.
  WebSocket: %s
  Database:  %s
  Watch:     go run ./backend/cmd/ripple tail projects --url %s
  Change:    psql '%s' -c "INSERT INTO projects (name, organization_id) VALUES ('Hello', 'org-1')"
`, srv.WebSocketURL(), cfg.DatabaseURL, srv.WebSocketURL(), cfg.DatabaseURL)
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
