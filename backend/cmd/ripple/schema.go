package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ripple-rt/ripple/backend/config"
	"github.com/ripple-rt/ripple/schema"
)

// connectDB parses the database flags of fs and connects with DATABASE_URL.
func connectDB(ctx context.Context, fs *flag.FlagSet) (*pgx.Conn, error) {
	cfg, err := config.Load(fs, os.Getenv, true)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("connect to DATABASE_URL: %w", err)
	}
	return conn, nil
}

func runSchema(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("schema", "apply [--demo]", "Create or upgrade Ripple's schema (the ripple.* functions) in DATABASE_URL.\nSafe to run twice and from several processes at once.", stderr)
	demo := fs.Bool("demo", false, "also create the demo tables (projects, extraction_jobs, …)")
	config.RegisterFlags(fs)
	if len(args) == 0 || args[0] != "apply" {
		fs.Usage()
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return flag.ErrHelp
		}
		return errors.New(`schema: want "schema apply"`)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	conn, err := connectDB(ctx, fs)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := schema.Apply(ctx, conn); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "schema applied")
	if *demo {
		if err := schema.ApplyDemo(ctx, conn); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "demo tables created:", strings.Join(schema.DemoTables(), ", "))
	}
	return nil
}

func runEnable(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runTrigger(ctx, "enable", "Install Ripple's change trigger on each table (idempotent).", schema.Enable, args, stdout, stderr)
}

func runDisable(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runTrigger(ctx, "disable", "Remove Ripple's change trigger from each table (idempotent).", schema.Disable, args, stdout, stderr)
}

func runTrigger(ctx context.Context, name, summary string, apply func(context.Context, schema.DB, ...string) error,
	args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(name, "<table>…", summary, stderr)
	config.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("%s: name at least one table", name)
	}
	conn, err := connectDB(ctx, fs)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := apply(ctx, conn, fs.Args()...); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%sd: %s\n", name, strings.Join(fs.Args(), ", "))
	return nil
}
