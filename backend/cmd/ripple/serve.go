package main

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/ripple-rt/ripple/backend/config"
	"github.com/ripple-rt/ripple/backend/server"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "[flags]", "Run the gateway. Every flag can also be set with the environment variable named in its help.", stderr)
	config.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(fs, os.Getenv, true)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	srv, err := server.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return shutdown(srv, cfg, log)
}

// shutdown closes srv within cfg.ShutdownTimeout after a signal. Clients
// still connected at the deadline (one that stopped reading, say) are cut
// off: that is the bound working, not a failure, so it is only logged.
func shutdown(srv *server.Server, cfg config.Config, log *slog.Logger) error {
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Close(ctx)
	if ctx.Err() != nil {
		log.Warn("shutdown timeout reached; remaining connections were cut off", "err", err)
		return nil
	}
	return err
}
