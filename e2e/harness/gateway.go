package harness

import (
	"context"
	"flag"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ripple-rt/ripple/backend/config"
	"github.com/ripple-rt/ripple/backend/server"
)

// StartGateway runs a gateway in-process on a free local port, serving the
// database at url with the configuration's defaults and JWT authentication
// (clients made by [NewClient] carry a valid token), and shuts it down when
// the test ends. Its log goes to the test log.
func StartGateway(t testing.TB, url string) *server.Server {
	t.Helper()
	cfg, err := config.Load(flag.NewFlagSet("e2e", flag.ContinueOnError), func(key string) string {
		switch key {
		case "DATABASE_URL":
			return url
		case "RIPPLE_ADDR":
			return "127.0.0.1:0"
		case "RIPPLE_LOG_LEVEL":
			return "debug"
		case "RIPPLE_AUTH":
			return "jwt"
		case "RIPPLE_JWT_SECRET":
			return jwtSecret
		}
		return ""
	}, true)
	if err != nil {
		t.Fatalf("gateway config: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := testLogger(t)
	srv, err := server.Start(ctx, cfg, log)
	if err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("stop gateway: %v", err)
		}
	})
	return srv
}

// testLogger returns a logger writing to t's log until its own cleanup runs
// (registered before the gateway's, so after the gateway has stopped), and
// silent afterwards: a test log must not be written after the test ends.
func testLogger(t testing.TB) *slog.Logger {
	w := &testLogWriter{t: t}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testLogWriter struct {
	t       testing.TB
	mu      sync.Mutex
	stopped bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Logf("gateway: %s", p)
	}
	return len(p), nil
}

func (w *testLogWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
