// Package server assembles a running gateway from a [config.Config]: the
// hydration pool, the hub, the ingest step, the listener, the WebSocket
// gateway and the HTTP server. `ripple serve`, `ripple dev` and the e2e
// tests all start Ripple through it.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ripple-rt/ripple/backend/auth"
	"github.com/ripple-rt/ripple/backend/config"
	"github.com/ripple-rt/ripple/backend/gateway"
	"github.com/ripple-rt/ripple/backend/hub"
	"github.com/ripple-rt/ripple/backend/ingest"
	"github.com/ripple-rt/ripple/backend/listener"
	"github.com/ripple-rt/ripple/backend/metrics"
	"github.com/ripple-rt/ripple/schema"
)

// Mount is an extra HTTP handler served next to the gateway's endpoints,
// such as the demo page and API of `ripple dev`.
type Mount struct {
	// Pattern is a [http.ServeMux] pattern, e.g. "/api/".
	Pattern string
	// Handler serves the requests that match Pattern.
	Handler http.Handler
}

// Server is a running gateway. Stop it with [Server.Close].
type Server struct {
	pool         *pgxpool.Pool
	hub          *hub.Hub
	gateway      *gateway.Server
	http         *http.Server
	addr         net.Addr
	stopListener context.CancelFunc
	listenerDone chan struct{}
}

// Start connects to Postgres, waits until the listener is LISTENing on every
// channel (so no subscription is acknowledged before changes can flow), and
// serves HTTP on cfg.Addr: the gateway's endpoints (/ws, /healthz, /readyz,
// /metrics) and any mounts. ctx bounds the start only. log may be nil.
func Start(ctx context.Context, cfg config.Config, log *slog.Logger, mounts ...Mount) (_ *Server, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	verifier, rules, err := security(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	s := &Server{}
	defer func() {
		if err != nil {
			s.Close(context.Background())
		}
	}()

	poolCfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	poolCfg.MaxConns = int32(cfg.PoolSize)
	if s.pool, err = pgxpool.NewWithConfig(ctx, poolCfg); err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	channels := cfg.Channels
	if len(channels) == 0 {
		if channels, err = schema.EnabledTables(ctx, s.pool); err != nil {
			return nil, fmt.Errorf("find enabled tables: %w", err)
		}
		if len(channels) == 0 {
			return nil, errors.New("no channels to serve: enable a table (`ripple enable <table>`) or set PG_CHANNELS")
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	if s.hub, err = hub.New(hub.Options{RingSize: cfg.RingSize}); err != nil {
		return nil, err
	}
	ing := ingest.New(ingest.Options{Publisher: s.hub, Pool: s.pool, Metrics: m, Logger: log})
	directURL := cfg.DatabaseURLDirect
	lis, err := listener.New(listener.Config{
		Connect:     func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, directURL) },
		Channels:    channels,
		Handler:     ing,
		OnReconnect: m.ListenerReconnects.Inc,
		Logger:      log,
	})
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.Background())
	s.stopListener, s.listenerDone = stop, make(chan struct{})
	go func() {
		defer close(s.listenerDone)
		queueDone := make(chan struct{})
		go func() {
			defer close(queueDone)
			ingest.WatchQueue(runCtx, ingest.QueueOptions{Pool: s.pool, Report: m.NotificationQueueUsage.Set, Logger: log})
		}()
		lis.Run(runCtx)
		<-queueDone // both use the pool, which Close closes after them
	}()
	log.Info("waiting for the listener", "channels", channels)
	if err := lis.WaitReady(ctx); err != nil {
		return nil, fmt.Errorf("listener did not connect to DATABASE_URL_DIRECT: %w", err)
	}

	if len(cfg.AllowedOrigins) == 0 {
		log.Warn("FRONTEND_URL is not set: WebSocket connections from any Origin are allowed")
	}
	if cfg.Auth == "none" {
		log.Warn("authentication is off (RIPPLE_AUTH=none): any client may subscribe to any channel")
	}
	var uncovered []string
	for _, ch := range channels {
		if !rules.Covers(ch) {
			uncovered = append(uncovered, ch)
		}
	}
	if len(uncovered) > 0 {
		log.Warn("RIPPLE_RULES has no rule for these channels: nobody may subscribe to them", "channels", uncovered)
	}
	if s.gateway, err = gateway.New(gateway.Options{
		Hub:              s.hub,
		Channels:         channels,
		AllowedOrigins:   cfg.AllowedOrigins,
		Ready:            lis.Ready,
		MetricsHandler:   promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Metrics:          m,
		Logger:           log,
		MaxMessageSize:   cfg.MaxMessageBytes,
		MaxSubscriptions: cfg.MaxSubscriptions,
		SendQueueSize:    cfg.SendQueue,
		PingInterval:     cfg.PingInterval,
		Verifier:         verifier,
		Rules:            rules,
		AuthTimeout:      cfg.AuthTimeout,
		SubscribeRate:    float64(cfg.SubscribeRate),
		MaxConnsPerIP:    cfg.MaxConnsPerIP,
	}); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("RIPPLE_ADDR %s: %w", cfg.Addr, err)
	}
	s.addr = ln.Addr()
	handler := s.gateway.Handler()
	if len(mounts) > 0 {
		mux := http.NewServeMux()
		for _, m := range mounts {
			mux.Handle(m.Pattern, m.Handler)
		}
		mux.Handle("/", handler)
		handler = mux
	}
	s.http = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "err", err)
		}
	}()
	log.Info("gateway listening", "addr", s.addr.String(), "epoch", s.hub.Epoch())
	return s, nil
}

// security builds the token verifier and the rules of cfg; both are nil
// with RIPPLE_AUTH=none. A JWKS URL is fetched once here, so that a wrong
// one stops the start.
func security(ctx context.Context, cfg config.Config, log *slog.Logger) (*auth.Verifier, *auth.Rules, error) {
	if cfg.Auth == "none" {
		if cfg.RulesFile != "" {
			return nil, nil, errors.New("RIPPLE_RULES needs RIPPLE_AUTH=jwt: rules decide on token claims")
		}
		return nil, nil, nil
	}
	if cfg.JWTSecret == "" && cfg.JWKSURL == "" && cfg.JWKSFile == "" {
		return nil, nil, errors.New("RIPPLE_AUTH=jwt needs a key: set RIPPLE_JWT_SECRET, RIPPLE_JWKS_URL or RIPPLE_JWKS_FILE (or RIPPLE_AUTH=none to turn authentication off)")
	}
	verifier, err := auth.New(ctx, auth.Options{
		Secret:   []byte(cfg.JWTSecret),
		JWKSURL:  cfg.JWKSURL,
		JWKSFile: cfg.JWKSFile,
		Audience: cfg.JWTAudience,
		Issuer:   cfg.JWTIssuer,
		Logger:   log,
	})
	if err != nil {
		return nil, nil, err
	}
	if cfg.RulesFile == "" {
		log.Warn("RIPPLE_RULES is not set: every authenticated client may subscribe to every channel and see every column")
		return verifier, nil, nil
	}
	rules, err := auth.LoadRules(cfg.RulesFile)
	if err != nil {
		return nil, nil, fmt.Errorf("RIPPLE_RULES: %w", err)
	}
	return verifier, rules, nil
}

// Addr returns the address the HTTP server listens on.
func (s *Server) Addr() string { return s.addr.String() }

// URL returns the HTTP base URL, e.g. http://127.0.0.1:8080.
func (s *Server) URL() string { return "http://" + s.Addr() }

// WebSocketURL returns the URL clients connect to, e.g. ws://127.0.0.1:8080/ws.
func (s *Server) WebSocketURL() string { return "ws://" + s.Addr() + "/ws" }

// Epoch returns the process epoch clients resume against.
func (s *Server) Epoch() string { return s.hub.Epoch() }

// Close shuts down gracefully: it stops accepting connections, sends close
// 1001 to every client, stops the listener and closes the pool, giving up
// waiting when ctx is done. It is safe on a partly started Server.
func (s *Server) Close(ctx context.Context) error {
	var errs []error
	if s.gateway != nil {
		errs = append(errs, s.gateway.Shutdown(ctx))
	}
	if s.http != nil {
		errs = append(errs, s.http.Shutdown(ctx))
	}
	if s.stopListener != nil {
		s.stopListener()
		select {
		case <-s.listenerDone:
		case <-ctx.Done():
			errs = append(errs, ctx.Err())
		}
	}
	if s.pool != nil {
		s.pool.Close()
	}
	return errors.Join(errs...)
}
