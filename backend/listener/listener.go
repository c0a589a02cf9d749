// Package listener keeps one dedicated Postgres connection LISTENing on a
// fixed set of channels and hands every notification to a [Handler], in the
// order Postgres delivers them.
//
// It is shaped like github.com/jackc/pgxlisten, with what a realtime gateway
// needs on top: reconnects with capped exponential backoff and full jitter
// instead of a fixed pause, a readiness signal ([Listener.Ready],
// [Listener.WaitReady]), a periodic health check of an idle connection, and a
// gap report per channel after every reconnect ([Handler.Gap]): notifications
// sent while the listener was away are lost, and whoever serves them must
// tell its clients to refetch.
//
// The connection must be a direct one (or a PgBouncer pool in session mode):
// LISTEN does not survive transaction pooling.
package listener

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// maxChannelLength is the longest identifier Postgres keeps (NAMEDATALEN-1);
// a longer channel name would be truncated by LISTEN and never match.
const maxChannelLength = 63

// Handler receives what the listener hears. Both methods are called on the
// goroutine that runs [Listener.Run], one at a time, in order; a slow Handler
// delays the notifications behind it (Postgres queues them meanwhile).
type Handler interface {
	// Handle is called once per notification, in the order Postgres
	// delivered them. ctx is the one given to Run.
	Handle(ctx context.Context, n *pgconn.Notification)
	// Gap is called once per channel each time the listener is listening
	// again after a failure (a lost connection, or failed attempts to
	// connect at start). It is called after every LISTEN is active again and
	// before any notification received since, so a client told to refetch
	// on a gap cannot miss a change made after its refetch started.
	Gap(channel string)
}

// Config configures a [Listener]. Connect, Channels and Handler are
// required; every other field has a default.
type Config struct {
	// Connect opens the listener's dedicated connection. The listener owns
	// and closes every connection it returns. Required.
	Connect func(ctx context.Context) (*pgx.Conn, error)
	// Channels are the channel names to LISTEN on, each one identifier (a
	// schema-qualified channel such as "billing.invoices" is one identifier
	// that contains a dot). At least one; no duplicates; at most 63 bytes each.
	Channels []string
	// Handler receives notifications and gap reports. Required.
	Handler Handler
	// OnReconnect, if set, is called after each successful reconnect, right
	// after the Gap calls (for example to count reconnects in a metric).
	OnReconnect func()
	// Logger receives the listener's log lines; nil logs nothing. One line
	// per outage at warn level, one when listening again at info level;
	// individual retries only at debug level.
	Logger *slog.Logger
	// Backoff is the retry policy between failed connection attempts.
	// After losing a connection that had lasted at least Backoff.Max the
	// first attempt is immediate; a connection lost sooner counts as a
	// failed attempt, so a flapping server is not hammered.
	Backoff Backoff
	// ConnectTimeout bounds one attempt to connect and LISTEN, and one health
	// check. Default 10s.
	ConnectTimeout time.Duration
	// HealthCheckPeriod is how long the connection may stay silent before
	// the listener pings it, so a connection that died without a word is
	// noticed. Default 30s.
	HealthCheckPeriod time.Duration
}

// The defaults of Config.
const (
	DefaultConnectTimeout    = 10 * time.Second
	DefaultHealthCheckPeriod = 30 * time.Second
)

// closeTimeout bounds the goodbye to a connection being dropped.
const closeTimeout = time.Second

// Listener holds one dedicated connection LISTENing on a fixed set of
// channels. Create it with [New] and run it with [Listener.Run].
type Listener struct {
	cfg    Config
	log    *slog.Logger
	sleep  func(ctx context.Context, d time.Duration) error
	random func() float64

	running atomic.Bool

	mu      sync.Mutex
	ready   bool
	readyCh chan struct{} // closed while ready; replaced when readiness is lost
}

// New checks cfg, fills in its defaults and returns a Listener that is not
// running yet.
func New(cfg Config) (*Listener, error) {
	if cfg.Connect == nil {
		return nil, errors.New("listener: Connect is required")
	}
	if cfg.Handler == nil {
		return nil, errors.New("listener: Handler is required")
	}
	if len(cfg.Channels) == 0 {
		return nil, errors.New("listener: at least one channel is required")
	}
	seen := make(map[string]bool, len(cfg.Channels))
	for _, ch := range cfg.Channels {
		if err := checkChannel(ch); err != nil {
			return nil, fmt.Errorf("listener: %w", err)
		}
		if seen[ch] {
			return nil, fmt.Errorf("listener: channel %q is listed twice", ch)
		}
		seen[ch] = true
	}
	cfg.Channels = append([]string(nil), cfg.Channels...)
	backoff, err := cfg.Backoff.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("listener: %w", err)
	}
	cfg.Backoff = backoff
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.HealthCheckPeriod == 0 {
		cfg.HealthCheckPeriod = DefaultHealthCheckPeriod
	}
	if cfg.ConnectTimeout < 0 || cfg.HealthCheckPeriod < 0 {
		return nil, errors.New("listener: ConnectTimeout and HealthCheckPeriod must not be negative")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Listener{
		cfg:     cfg,
		log:     log,
		sleep:   sleepContext,
		random:  rand.Float64,
		readyCh: make(chan struct{}),
	}, nil
}

func checkChannel(ch string) error {
	switch {
	case ch == "":
		return errors.New("empty channel name")
	case len(ch) > maxChannelLength:
		return fmt.Errorf("channel %q is longer than %d bytes", ch, maxChannelLength)
	}
	for i := 0; i < len(ch); i++ {
		if ch[i] == 0 {
			return fmt.Errorf("channel %q contains a NUL byte", ch)
		}
	}
	return nil
}

// Ready reports whether the listener is connected and LISTENing on every
// channel (and has delivered the gap reports of its last reconnect).
func (l *Listener) Ready() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ready
}

// WaitReady blocks until the listener is ready (see [Listener.Ready]) or ctx
// is done, and returns ctx's error in the latter case.
func (l *Listener) WaitReady(ctx context.Context) error {
	l.mu.Lock()
	ch := l.readyCh
	l.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *Listener) setReady(ready bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case ready && !l.ready:
		close(l.readyCh)
	case !ready && l.ready:
		l.readyCh = make(chan struct{})
	}
	l.ready = ready
}

// Run connects, LISTENs and delivers notifications to the Handler until ctx
// is done, reconnecting after every failure. It returns nil once ctx is
// done; its only error is being called while another Run is active.
func (l *Listener) Run(ctx context.Context) error {
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("listener: Run is already running")
	}
	defer l.running.Store(false)

	var (
		backoff     int       // index of the next wait; reset once a connection proved stable
		attempts    int       // failed attempts in the current outage, for the log
		outageStart time.Time // zero while there has been no failure since listening
	)
	for {
		conn, err := l.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if outageStart.IsZero() {
				outageStart = time.Now()
				l.log.Warn("listener: cannot connect to Postgres; retrying with backoff",
					"channels", l.cfg.Channels, "error", err)
			}
			attempts++
			l.log.Debug("listener: connect attempt failed", "attempt", attempts, "error", err)
			if l.wait(ctx, &backoff) != nil {
				return nil
			}
			continue
		}

		if outageStart.IsZero() {
			l.log.Info("listener: listening", "channels", l.cfg.Channels)
		} else {
			for _, ch := range l.cfg.Channels {
				l.cfg.Handler.Gap(ch)
			}
			if l.cfg.OnReconnect != nil {
				l.cfg.OnReconnect()
			}
			l.log.Info("listener: listening again; reported a gap on every channel",
				"channels", l.cfg.Channels, "outage", time.Since(outageStart).Round(time.Millisecond),
				"failed_attempts", attempts)
		}
		attempts, outageStart = 0, time.Time{}
		l.setReady(true)

		listening := time.Now()
		err = l.serve(ctx, conn)
		l.setReady(false)
		closeConn(conn)
		if ctx.Err() != nil {
			return nil
		}
		outageStart = time.Now()
		l.log.Warn("listener: lost the Postgres connection; reconnecting",
			"channels", l.cfg.Channels, "error", err)
		if time.Since(listening) >= l.cfg.Backoff.Max {
			backoff = 0 // a stable connection: reconnect at once
		} else if l.wait(ctx, &backoff) != nil {
			return nil // a connection lost soon after it was made counts as a failed attempt
		}
	}
}

// wait sleeps for the backoff wait number *n and advances *n.
func (l *Listener) wait(ctx context.Context, n *int) error {
	d := l.cfg.Backoff.delay(*n, l.random())
	*n++
	l.log.Debug("listener: waiting before the next attempt", "wait", d)
	return l.sleep(ctx, d)
}

// connect opens a connection and LISTENs on every channel.
func (l *Listener) connect(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.ConnectTimeout)
	defer cancel()
	conn, err := l.cfg.Connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	for _, ch := range l.cfg.Channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			closeConn(conn)
			return nil, fmt.Errorf("listen %q: %w", ch, err)
		}
	}
	return conn, nil
}

// serve delivers notifications from conn until ctx is done or the
// connection fails, pinging it after every silent HealthCheckPeriod.
func (l *Listener) serve(ctx context.Context, conn *pgx.Conn) error {
	for {
		period, cancel := context.WithTimeout(ctx, l.cfg.HealthCheckPeriod)
		heard, err := l.receive(ctx, period, conn)
		cancel()
		if err != nil {
			return err
		}
		if !heard {
			pingCtx, cancel := context.WithTimeout(ctx, l.cfg.ConnectTimeout)
			err := conn.Ping(pingCtx)
			cancel()
			if err != nil {
				return fmt.Errorf("health check: %w", err)
			}
		}
	}
}

// receive delivers notifications until period ends (nil error) or the
// connection fails, and reports whether any notification arrived.
func (l *Listener) receive(ctx, period context.Context, conn *pgx.Conn) (heard bool, err error) {
	for {
		n, err := conn.WaitForNotification(period)
		if n != nil {
			heard = true
			l.cfg.Handler.Handle(ctx, n)
		}
		if err != nil {
			if ctx.Err() == nil && period.Err() != nil && !conn.IsClosed() {
				return heard, nil
			}
			return heard, fmt.Errorf("wait for notification: %w", err)
		}
	}
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = conn.Close(ctx) // the connection is being dropped; its goodbye may fail
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
