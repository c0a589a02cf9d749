package config_test

import (
	"flag"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ripple-rt/ripple/backend/config"
)

func load(t *testing.T, env map[string]string, args ...string) (config.Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	config.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return config.Load(fs, func(k string) string { return env[k] }, true)
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := load(t, map[string]string{"DATABASE_URL": "postgres://localhost/app"})
	if err != nil {
		t.Fatal(err)
	}
	want := config.Config{
		DatabaseURLDirect: "postgres://localhost/app", DatabaseURL: "postgres://localhost/app",
		Addr: "127.0.0.1:8080", Auth: "jwt", LogLevel: slog.LevelInfo, RingSize: 1024, SendQueue: 2048,
		MaxMessageBytes: 65536, MaxSubscriptions: 100, PingInterval: 30 * time.Second,
		ShutdownTimeout: 10 * time.Second, PoolSize: 4,
		AuthTimeout: 10 * time.Second, SubscribeRate: 20, MaxConnsPerIP: 1000,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", c, want)
	}
}

func TestFlagsWinOverEnvironment(t *testing.T) {
	t.Parallel()
	c, err := load(t, map[string]string{
		"DATABASE_URL_DIRECT": "postgres://direct/app", "DATABASE_URL": "postgres://pooler/app",
		"PG_CHANNELS": "projects, extraction_jobs,", "FRONTEND_URL": "https://a.example.com,http://localhost:5173",
		"RIPPLE_ADDR": ":9000", "RIPPLE_RING_SIZE": "10",
	}, "--addr", "0.0.0.0:7000", "--log-level", "debug")
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "0.0.0.0:7000" || c.LogLevel != slog.LevelDebug || c.RingSize != 10 ||
		c.DatabaseURLDirect != "postgres://direct/app" || c.DatabaseURL != "postgres://pooler/app" {
		t.Fatalf("got %+v", c)
	}
	if !reflect.DeepEqual(c.Channels, []string{"projects", "extraction_jobs"}) {
		t.Fatalf("channels %q", c.Channels)
	}
	if !reflect.DeepEqual(c.AllowedOrigins, []string{"https://a.example.com", "http://localhost:5173"}) {
		t.Fatalf("origins %q", c.AllowedOrigins)
	}
}

func TestBadSettingNamesIt(t *testing.T) {
	t.Parallel()
	db := map[string]string{"DATABASE_URL": "postgres://localhost/app"}
	tests := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{}, nil, "DATABASE_URL"},
		{map[string]string{"DATABASE_URL": "mysql://x"}, nil, "DATABASE_URL="},
		{map[string]string{"DATABASE_URL": "mysql://app:short-secret@db/app"}, nil, "DATABASE_URL="},
		{map[string]string{"DATABASE_URL_DIRECT": "host=db password=short-secret"}, nil, "DATABASE_URL_DIRECT="},
		{db, []string{"--ring-size", "0"}, "--ring-size"},
		{merge(db, "RIPPLE_SEND_QUEUE", "lots"), nil, "RIPPLE_SEND_QUEUE"},
		{merge(db, "RIPPLE_PING_INTERVAL", "5"), nil, "RIPPLE_PING_INTERVAL"},
		{merge(db, "RIPPLE_ADDR", "8080"), nil, "RIPPLE_ADDR"},
		{merge(db, "RIPPLE_LOG_LEVEL", "loud"), nil, "RIPPLE_LOG_LEVEL"},
		{merge(db, "RIPPLE_AUTH", "magic"), nil, "RIPPLE_AUTH"},
		{merge(db, "FRONTEND_URL", "app.example.com"), nil, "FRONTEND_URL"},
		{merge(db, "RIPPLE_JWT_SECRET", "short-secret"), nil, "RIPPLE_JWT_SECRET=(hidden)"},
		{merge(db, "RIPPLE_JWKS_URL", "jwks.json"), nil, "RIPPLE_JWKS_URL"},
		{merge(merge(db, "RIPPLE_JWKS_URL", "https://idp/jwks"), "RIPPLE_JWKS_FILE", "k.json"), nil, "RIPPLE_JWKS_FILE"},
		{merge(db, "RIPPLE_SUBSCRIBE_RATE", "0"), nil, "RIPPLE_SUBSCRIBE_RATE"},
		{merge(db, "RIPPLE_MAX_CONNS_PER_IP", "-1"), nil, "RIPPLE_MAX_CONNS_PER_IP"},
		{merge(db, "RIPPLE_AUTH_TIMEOUT", "soon"), nil, "RIPPLE_AUTH_TIMEOUT"},
	}
	for _, tt := range tests {
		_, err := load(t, tt.env, tt.args...)
		if err != nil && strings.Contains(err.Error(), "short-secret") {
			t.Errorf("the error repeats the secret: %v", err)
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("env %v args %v: error %v, want one line naming %s", tt.env, tt.args, err, tt.want)
		}
	}
}

func merge(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for a, b := range m {
		out[a] = b
	}
	return out
}
