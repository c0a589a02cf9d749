package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ripple-rt/ripple/backend/auth"
	"github.com/ripple-rt/ripple/backend/hub"
	"github.com/ripple-rt/ripple/backend/metrics"
)

// Options configures a [Server]. Zero values take the defaults written in
// each field's comment; a value that cannot work makes [New] fail with an
// error naming the field.
type Options struct {
	// Hub is where subscriptions go. Required.
	Hub *hub.Hub
	// Channels are the channels clients may subscribe to (PG_CHANNELS);
	// any other is refused with unknown_channel. Required.
	Channels []string
	// AllowedOrigins are the browser origins (FRONTEND_URL) allowed to
	// connect, e.g. "https://app.example.com". Empty allows every origin.
	// A request without an Origin header (not a browser) is always allowed.
	AllowedOrigins []string
	// Ready reports whether the gateway can deliver changes (the listener
	// is connected); /readyz answers 503 while it returns false. Nil: always ready.
	Ready func() bool
	// MetricsHandler serves /metrics, e.g. promhttp for the registry the
	// Metrics were registered with. Nil: no /metrics endpoint.
	MetricsHandler http.Handler
	// Metrics are counted into. Nil: counted into unregistered collectors.
	Metrics *metrics.Metrics
	// Logger receives the gateway's logs. Nil: silent.
	Logger *slog.Logger
	// Verifier authenticates clients. With it, a connection must present a
	// valid token (access_token on the URL, or an auth message within
	// AuthTimeout) before it may subscribe; a bad token gets unauthorized
	// (token_expired for an expired one) and close 4001, and so does a
	// connection whose token expires before it sent a fresh one. Nil: no
	// authentication (RIPPLE_AUTH=none), auth messages are ignored.
	Verifier *auth.Verifier
	// Rules authorize subscriptions (who may subscribe to which channel,
	// the scope, the omitted columns). Nil: every authenticated client may
	// subscribe to every channel and sees every column. Rules need a Verifier.
	Rules *auth.Rules
	// AuthTimeout is how long a connection may stay open without a valid
	// token: one that has not authenticated by then gets unauthorized and
	// close 4001. Default 10 s.
	AuthTimeout time.Duration
	// SubscribeRate is how many subscribe, unsubscribe and auth messages
	// per second one connection may send on average, in bursts of up to
	// MaxSubscriptions. A message over the rate gets rate_limited; the
	// tenth in a row closes the connection with 4008. Default 20.
	SubscribeRate float64
	// MaxConnsPerIP is the most connections open at once from one client
	// IP address (the TCP peer: behind a proxy, the proxy's). One more is
	// answered with HTTP 429 before the upgrade. Default 1000.
	MaxConnsPerIP int
	// MaxMessageSize is the largest client message in bytes. A larger one
	// gets a message_too_large error and close 4008; frames over four times
	// this size are cut off by the WebSocket layer (close 1009) without
	// being read. Default 64 KiB.
	MaxMessageSize int
	// MaxSubscriptions is the most subscriptions one connection may hold.
	// Default 100.
	MaxSubscriptions int
	// SendQueueSize is how many messages may wait to be written to one
	// connection. When a client does not read fast enough and the queue
	// overflows, its queued changes are dropped and each affected
	// subscription gets a resync (slow_consumer); a second overflow before
	// that resync is written closes the connection with 4008. Keep it above
	// the hub's ring size so that a full replay fits. Default 2048 (twice
	// the hub's default ring).
	SendQueueSize int
	// PingInterval is how often the server pings every connection; a
	// connection that has not answered by the next ping is closed.
	// Default 30 s.
	PingInterval time.Duration
	// WriteTimeout bounds one write to a client: a write that has not
	// finished after between WriteTimeout and 1.5 × WriteTimeout (the
	// deadline is re-armed lazily) closes the connection, without a close
	// frame. Default 10 s.
	WriteTimeout time.Duration
}

// The defaults of Options.
const (
	DefaultMaxMessageSize   = 64 << 10
	DefaultMaxSubscriptions = 100
	DefaultSendQueueSize    = 2048
	DefaultPingInterval     = 30 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultAuthTimeout      = 10 * time.Second
	DefaultSubscribeRate    = 20
	DefaultMaxConnsPerIP    = 1000
)

// maxStrikes is how many rate-limited messages in a row close a connection.
const maxStrikes = 10

// withDefaults returns opts with zero values replaced by defaults, or an
// error naming the first field that cannot work.
func (opts Options) withDefaults() (Options, error) {
	if opts.Hub == nil {
		return opts, errors.New("gateway: Options.Hub is required")
	}
	if len(opts.Channels) == 0 {
		return opts, errors.New("gateway: Options.Channels is empty: no channel could be subscribed to")
	}
	for _, ch := range opts.Channels {
		if ch == "" {
			return opts, errors.New("gateway: Options.Channels holds an empty channel name")
		}
	}
	for _, o := range opts.AllowedOrigins {
		if !strings.Contains(o, "://") {
			return opts, fmt.Errorf("gateway: Options.AllowedOrigins: %q is not an origin like https://app.example.com", o)
		}
	}
	for _, err := range []error{
		orDefault("MaxMessageSize", &opts.MaxMessageSize, DefaultMaxMessageSize),
		orDefault("MaxSubscriptions", &opts.MaxSubscriptions, DefaultMaxSubscriptions),
		orDefault("SendQueueSize", &opts.SendQueueSize, DefaultSendQueueSize),
		orDefault("MaxConnsPerIP", &opts.MaxConnsPerIP, DefaultMaxConnsPerIP),
		orDefault("PingInterval", &opts.PingInterval, DefaultPingInterval),
		orDefault("WriteTimeout", &opts.WriteTimeout, DefaultWriteTimeout),
		orDefault("AuthTimeout", &opts.AuthTimeout, DefaultAuthTimeout),
		orDefault("SubscribeRate", &opts.SubscribeRate, DefaultSubscribeRate),
	} {
		if err != nil {
			return opts, err
		}
	}
	if opts.Rules != nil && opts.Verifier == nil {
		return opts, errors.New("gateway: Options.Rules need a Verifier: rules decide on token claims")
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New(nil)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return opts, nil
}

// orDefault sets the field named name, at value, to def when it is zero,
// and fails when it is negative.
func orDefault[T int | float64 | time.Duration](name string, value *T, def T) error {
	if *value < 0 {
		return fmt.Errorf("gateway: Options.%s must not be negative, got %v", name, *value)
	}
	if *value == 0 {
		*value = def
	}
	return nil
}
