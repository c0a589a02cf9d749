// Package config holds every gateway setting in one struct, with its default
// written next to it, read from the environment and overridden by flags. A
// bad value stops the start with one line naming the setting.
package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is the gateway's configuration. Each field names its environment
// variable and flag; the default is what Load gives when neither is set.
type Config struct {
	// DatabaseURLDirect is the listener's connection: DATABASE_URL_DIRECT, --database-url-direct.
	// It must be a direct connection (not PgBouncer in transaction mode).
	// Default: DatabaseURL.
	DatabaseURLDirect string
	// DatabaseURL is the pool used for hydration and the CLI: DATABASE_URL, --database-url.
	// Default: DatabaseURLDirect. One of the two is required.
	DatabaseURL string
	// Channels are the channels (table names) clients may subscribe to: PG_CHANNELS, --channels
	// (comma list). Default: every table on which Ripple's trigger is enabled, read at start.
	Channels []string
	// AllowedOrigins are the browser Origins allowed to connect: FRONTEND_URL, --frontend-url
	// (comma list). Default: empty, which allows every Origin (with a warning at start).
	AllowedOrigins []string
	// Addr is the HTTP listen address: RIPPLE_ADDR, --addr. Default: 127.0.0.1:8080.
	Addr string
	// Auth is the authentication mode: RIPPLE_AUTH, --auth. "jwt": clients
	// present a JSON Web Token, checked with JWTSecret or the JWKS; "none":
	// anyone may subscribe to anything (the gateway warns at start).
	// Default: jwt.
	Auth string
	// JWTSecret is the HS256 shared secret, at least 32 bytes: RIPPLE_JWT_SECRET,
	// --jwt-secret (prefer the environment: flags show in process lists). Default: none.
	JWTSecret string
	// JWKSURL is the URL of a JSON Web Key Set with RS256/ES256 keys:
	// RIPPLE_JWKS_URL, --jwks-url. Cached; fetched again for an unknown kid
	// (at most every 5s) and after an hour. Default: none.
	JWKSURL string
	// JWKSFile is a file holding a JSON Web Key Set: RIPPLE_JWKS_FILE,
	// --jwks-file. Read again like JWKSURL. Default: none.
	JWKSFile string
	// JWTAudience, when set, must be in the token's aud: RIPPLE_JWT_AUDIENCE,
	// --jwt-audience. Default: not checked.
	JWTAudience string
	// JWTIssuer, when set, must equal the token's iss: RIPPLE_JWT_ISSUER,
	// --jwt-issuer. Default: not checked.
	JWTIssuer string
	// RulesFile is the authorization rules file (JSON): RIPPLE_RULES, --rules.
	// Default: none, which lets every authenticated client subscribe to
	// every channel and see every column (with a warning at start).
	RulesFile string
	// AuthTimeout is how long a new connection may wait before sending a
	// valid token: RIPPLE_AUTH_TIMEOUT, --auth-timeout. Default: 10s.
	AuthTimeout time.Duration
	// SubscribeRate is how many subscribe, unsubscribe and auth messages a
	// connection may send per second, in bursts of MaxSubscriptions:
	// RIPPLE_SUBSCRIBE_RATE, --subscribe-rate. Default: 20.
	SubscribeRate int
	// MaxConnsPerIP is the most connections open at once from one client
	// IP (behind a proxy: the proxy's): RIPPLE_MAX_CONNS_PER_IP,
	// --max-conns-per-ip. Default: 1000.
	MaxConnsPerIP int
	// LogLevel is debug, info, warn or error: RIPPLE_LOG_LEVEL, --log-level. Default: info.
	LogLevel slog.Level
	// RingSize is the number of recent changes kept per channel for resume:
	// RIPPLE_RING_SIZE, --ring-size. Default: 1024.
	RingSize int
	// SendQueue is the bound of each connection's send queue, in messages:
	// RIPPLE_SEND_QUEUE, --send-queue. Default: 2048, so that a full ring
	// replay (RingSize changes and an ack) fits.
	SendQueue int
	// MaxMessageBytes is the largest client frame accepted: RIPPLE_MAX_MESSAGE_BYTES,
	// --max-message-bytes. Default: 65536.
	MaxMessageBytes int
	// MaxSubscriptions is the most subscriptions one connection may hold:
	// RIPPLE_MAX_SUBSCRIPTIONS, --max-subscriptions. Default: 100.
	MaxSubscriptions int
	// PingInterval is how often the server pings each connection: RIPPLE_PING_INTERVAL,
	// --ping-interval. Default: 30s.
	PingInterval time.Duration
	// ShutdownTimeout bounds a graceful shutdown: RIPPLE_SHUTDOWN_TIMEOUT, --shutdown-timeout.
	// Default: 10s.
	ShutdownTimeout time.Duration
	// PoolSize is the most connections of the hydration pool: RIPPLE_POOL_SIZE, --pool-size. Default: 4.
	PoolSize int
}

// setting is one configuration entry: its environment variable, flag, default and target.
type setting struct {
	env, flag, def, usage string
	set                   func(c *Config, v string) error
}

var settings = []setting{
	{"DATABASE_URL_DIRECT", "database-url-direct", "", "direct Postgres URL for the listener (default: DATABASE_URL)",
		func(c *Config, v string) error { c.DatabaseURLDirect = v; return checkURL(v) }},
	{"DATABASE_URL", "database-url", "", "Postgres URL for hydration and the CLI (default: DATABASE_URL_DIRECT)",
		func(c *Config, v string) error { c.DatabaseURL = v; return checkURL(v) }},
	{"PG_CHANNELS", "channels", "", "comma list of channels clients may subscribe to (default: every enabled table)",
		func(c *Config, v string) error { c.Channels = splitList(v); return nil }},
	{"FRONTEND_URL", "frontend-url", "", "comma list of allowed browser Origins (default: any Origin)",
		func(c *Config, v string) error {
			c.AllowedOrigins = splitList(v)
			return checkOrigins(c.AllowedOrigins)
		}},
	{"RIPPLE_ADDR", "addr", "127.0.0.1:8080", "HTTP listen address",
		func(c *Config, v string) error { c.Addr = v; _, _, err := net.SplitHostPort(v); return err }},
	{"RIPPLE_AUTH", "auth", "jwt", "authentication mode: jwt or none",
		func(c *Config, v string) error {
			c.Auth = v
			if v != "jwt" && v != "none" {
				return errors.New(`want "jwt" or "none"`)
			}
			return nil
		}},
	{"RIPPLE_JWT_SECRET", "jwt-secret", "", "HS256 secret, at least 32 bytes (prefer the environment variable)",
		func(c *Config, v string) error {
			c.JWTSecret = v
			if v != "" && len(v) < 32 {
				return fmt.Errorf("the secret is %d bytes; use at least 32 random bytes", len(v))
			}
			return nil
		}},
	{"RIPPLE_JWKS_URL", "jwks-url", "", "URL of a JSON Web Key Set (RS256/ES256)",
		func(c *Config, v string) error {
			c.JWKSURL = v
			if v == "" {
				return nil
			}
			if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return errors.New("want an https:// URL")
			}
			return nil
		}},
	{"RIPPLE_JWKS_FILE", "jwks-file", "", "file holding a JSON Web Key Set (RS256/ES256)",
		func(c *Config, v string) error { c.JWKSFile = v; return nil }},
	{"RIPPLE_JWT_AUDIENCE", "jwt-audience", "", "required token audience (aud)",
		func(c *Config, v string) error { c.JWTAudience = v; return nil }},
	{"RIPPLE_JWT_ISSUER", "jwt-issuer", "", "required token issuer (iss)",
		func(c *Config, v string) error { c.JWTIssuer = v; return nil }},
	{"RIPPLE_RULES", "rules", "", "authorization rules file (JSON)",
		func(c *Config, v string) error { c.RulesFile = v; return nil }},
	{"RIPPLE_AUTH_TIMEOUT", "auth-timeout", "10s", "time a new connection has to send a valid token",
		func(c *Config, v string) error { return duration(&c.AuthTimeout, v) }},
	{"RIPPLE_SUBSCRIBE_RATE", "subscribe-rate", "20", "subscribe, unsubscribe and auth messages per second per connection",
		func(c *Config, v string) error { return positive(&c.SubscribeRate, v) }},
	{"RIPPLE_MAX_CONNS_PER_IP", "max-conns-per-ip", "1000", "connections open at once from one client IP",
		func(c *Config, v string) error { return positive(&c.MaxConnsPerIP, v) }},
	{"RIPPLE_LOG_LEVEL", "log-level", "info", "log level: debug, info, warn or error",
		func(c *Config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) }},
	{"RIPPLE_RING_SIZE", "ring-size", "1024", "changes kept per channel for resume",
		func(c *Config, v string) error { return positive(&c.RingSize, v) }},
	{"RIPPLE_SEND_QUEUE", "send-queue", "2048", "messages queued per connection before it is resynced",
		func(c *Config, v string) error { return positive(&c.SendQueue, v) }},
	{"RIPPLE_MAX_MESSAGE_BYTES", "max-message-bytes", "65536", "largest client frame accepted",
		func(c *Config, v string) error { return positive(&c.MaxMessageBytes, v) }},
	{"RIPPLE_MAX_SUBSCRIPTIONS", "max-subscriptions", "100", "subscriptions per connection",
		func(c *Config, v string) error { return positive(&c.MaxSubscriptions, v) }},
	{"RIPPLE_PING_INTERVAL", "ping-interval", "30s", "WebSocket ping interval",
		func(c *Config, v string) error { return duration(&c.PingInterval, v) }},
	{"RIPPLE_SHUTDOWN_TIMEOUT", "shutdown-timeout", "10s", "bound on a graceful shutdown",
		func(c *Config, v string) error { return duration(&c.ShutdownTimeout, v) }},
	{"RIPPLE_POOL_SIZE", "pool-size", "4", "connections in the hydration pool",
		func(c *Config, v string) error { return positive(&c.PoolSize, v) }},
}

// secretSettings are never repeated in an error.
var secretSettings = map[string]bool{"RIPPLE_JWT_SECRET": true}

// urlSettings may hold a password: an error repeats them with it masked.
var urlSettings = map[string]bool{"DATABASE_URL": true, "DATABASE_URL_DIRECT": true}

// shown is value v of setting env as an error may repeat it: quoted, or
// "(hidden)" when it is a secret or a connection string whose password
// cannot be masked (one that is not a URL, such as "host=… password=…").
func shown(env, v string) string {
	if secretSettings[env] {
		return "(hidden)"
	}
	if urlSettings[env] {
		u, err := url.Parse(v)
		if err != nil || u.Scheme == "" {
			return "(hidden)"
		}
		return strconv.Quote(u.Redacted())
	}
	return strconv.Quote(v)
}

// RegisterFlags adds every setting's flag to fs. Load reads them back.
func RegisterFlags(fs *flag.FlagSet) {
	for _, s := range settings {
		usage := s.usage + " (env " + s.env + ")"
		if s.def != "" {
			fs.String(s.flag, s.def, usage)
		} else {
			fs.String(s.flag, "", usage)
		}
	}
}

// Load builds a Config: flags set on fs win over the environment (read with
// getenv), which wins over defaults. requireDB reports whether a database URL
// must be present. The error names the setting at fault.
func Load(fs *flag.FlagSet, getenv func(string) string, requireDB bool) (Config, error) {
	explicit := map[string]string{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = f.Value.String() })
	var c Config
	for _, s := range settings {
		v, src := s.def, ""
		if e := getenv(s.env); e != "" {
			v, src = e, s.env
		}
		if f, ok := explicit[s.flag]; ok {
			v, src = f, "--"+s.flag
		}
		if src == "" {
			src = s.env
		}
		if err := s.set(&c, v); err != nil {
			return Config{}, fmt.Errorf("bad setting %s=%s: %v", src, shown(s.env, v), err)
		}
	}
	if c.DatabaseURLDirect == "" {
		c.DatabaseURLDirect = c.DatabaseURL
	}
	if c.DatabaseURL == "" {
		c.DatabaseURL = c.DatabaseURLDirect
	}
	if c.JWKSURL != "" && c.JWKSFile != "" {
		return Config{}, errors.New("bad settings: RIPPLE_JWKS_URL and RIPPLE_JWKS_FILE are both set; use one")
	}
	if requireDB && c.DatabaseURL == "" {
		return Config{}, errors.New("missing setting DATABASE_URL (or DATABASE_URL_DIRECT): the Postgres URL to listen on, e.g. postgres://user:pass@localhost:5432/app")
	}
	return c, nil
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func checkURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return errors.New("want a postgres:// URL")
	}
	return nil
}

func checkOrigins(origins []string) error {
	for _, o := range origins {
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("%q is not an origin like https://app.example.com", o)
		}
	}
	return nil
}

func positive(dst *int, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return errors.New("want a positive integer")
	}
	*dst = n
	return nil
}

func duration(dst *time.Duration, v string) error {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return errors.New("want a positive duration like 30s")
	}
	*dst = d
	return nil
}
