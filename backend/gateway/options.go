package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

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
	// the hub's ring size so that a full replay fits. Default 1024.
	SendQueueSize int
	// PingInterval is how often the server pings every connection; a
	// connection that has not answered by the next ping is closed.
	// Default 30 s.
	PingInterval time.Duration
	// WriteTimeout bounds one write to a client; a write that takes longer
	// closes the connection. Default 10 s.
	WriteTimeout time.Duration
}

// The defaults of Options.
const (
	DefaultMaxMessageSize   = 64 << 10
	DefaultMaxSubscriptions = 100
	DefaultSendQueueSize    = 1024
	DefaultPingInterval     = 30 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
)

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
	for _, f := range []struct {
		name  string
		value *int
		def   int
	}{
		{"MaxMessageSize", &opts.MaxMessageSize, DefaultMaxMessageSize},
		{"MaxSubscriptions", &opts.MaxSubscriptions, DefaultMaxSubscriptions},
		{"SendQueueSize", &opts.SendQueueSize, DefaultSendQueueSize},
	} {
		if *f.value < 0 {
			return opts, fmt.Errorf("gateway: Options.%s must not be negative, got %d", f.name, *f.value)
		}
		if *f.value == 0 {
			*f.value = f.def
		}
	}
	for _, f := range []struct {
		name  string
		value *time.Duration
		def   time.Duration
	}{
		{"PingInterval", &opts.PingInterval, DefaultPingInterval},
		{"WriteTimeout", &opts.WriteTimeout, DefaultWriteTimeout},
	} {
		if *f.value < 0 {
			return opts, fmt.Errorf("gateway: Options.%s must not be negative, got %s", f.name, *f.value)
		}
		if *f.value == 0 {
			*f.value = f.def
		}
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New(nil)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return opts, nil
}
