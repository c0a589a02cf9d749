// Package gateway serves Ripple's WebSocket endpoint /ws with gws, plus
// /healthz, /readyz and /metrics. It speaks protocol v1 to clients that
// offer the subprotocol ripple.v1 and the seed's protocol to clients that
// offer none. With an [auth.Verifier] every connection must present a
// valid token, and [auth.Rules] decide what each subscription may see;
// limits per connection and per client IP guard the edge. Every connection
// has a bounded send queue drained by batched writes scheduled on gws's
// per-connection task queue, so an idle connection costs no goroutine
// beyond gws's read loop and a slow client never makes anyone else wait.
package gateway

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lxzan/gws"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ripple-rt/ripple/backend/auth"
	"github.com/ripple-rt/ripple/backend/protocol"
)

// Server is the gateway. Create it with [New], serve [Server.Handler], and
// stop it with [Server.Shutdown].
type Server struct {
	opts     Options
	log      *slog.Logger
	channels map[string]bool
	origins  map[string]bool
	v1       *gws.Upgrader
	seed     *gws.Upgrader
	mux      *http.ServeMux

	// Pre-resolved counters of the hot path.
	resyncs map[protocol.ResyncReason]prometheus.Counter
	// burst is the size of each connection's rate-limit bucket.
	burst float64
	// deadlines holds every connection's authentication deadline.
	deadlines *deadlines

	mu           sync.Mutex
	conns        map[*conn]struct{}
	perIP        map[string]int // open connections by client IP
	shuttingDown bool
	stopPings    chan struct{}
	drained      chan struct{}
	drainOnce    sync.Once
}

// New returns a Server and starts its heartbeat: one ticker that pings
// every connection each PingInterval.
func New(opts Options) (*Server, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:      opts,
		log:       opts.Logger,
		channels:  make(map[string]bool, len(opts.Channels)),
		origins:   make(map[string]bool, len(opts.AllowedOrigins)),
		resyncs:   make(map[protocol.ResyncReason]prometheus.Counter),
		conns:     make(map[*conn]struct{}),
		perIP:     make(map[string]int),
		burst:     max(float64(opts.MaxSubscriptions), opts.SubscribeRate),
		deadlines: newDeadlines(time.Now()),
		stopPings: make(chan struct{}),
		drained:   make(chan struct{}),
	}
	for _, ch := range opts.Channels {
		s.channels[ch] = true
	}
	for _, o := range opts.AllowedOrigins {
		s.origins[normalizeOrigin(o)] = true
	}
	for _, r := range []protocol.ResyncReason{protocol.ResyncEpoch, protocol.ResyncTooOld, protocol.ResyncGap, protocol.ResyncSlowConsumer} {
		s.resyncs[r] = opts.Metrics.Resyncs.WithLabelValues(string(r))
	}
	s.v1 = gws.NewUpgrader(events{}, s.upgradeOptions(false))
	s.seed = gws.NewUpgrader(events{}, s.upgradeOptions(true))

	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/ws", s.serveWS)
	s.mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("/readyz", s.serveReady)
	if opts.MetricsHandler != nil {
		s.mux.Handle("/metrics", opts.MetricsHandler)
	}
	go s.heartbeat()
	if opts.Verifier != nil {
		go s.expireTokens()
	}
	return s, nil
}

func (s *Server) upgradeOptions(seed bool) *gws.ServerOption {
	o := &gws.ServerOption{
		// Frames up to four times MaxMessageSize are read so that the
		// client learns why it is closed (message_too_large, 4008); larger
		// ones are refused at their header.
		ReadMaxPayloadSize: 4 * s.opts.MaxMessageSize,
		ReadBufferSize:     readBufferSize,
		Logger:             gwsLogger{s.log},
		Recovery:           gws.Recovery,
		NewSession:         func() gws.SessionStorage { return &conn{srv: s, seed: seed} },
	}
	if !seed {
		o.SubProtocols = []string{protocol.Subprotocol}
	}
	return o
}

// readBufferSize is the size of each connection's read buffer. Client
// messages are small (a subscribe takes about 200 bytes), and a bigger
// frame is read past the buffer; a small buffer keeps idle connections light.
const readBufferSize = 256

// Handler returns the HTTP handler of /ws, /healthz, /readyz and /metrics.
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Ready != nil && !s.opts.Ready() {
		http.Error(w, "not ready: the listener is not connected to Postgres", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin != "" && len(s.origins) > 0 && !s.origins[normalizeOrigin(origin)] {
		s.opts.Metrics.RefusedConnections.WithLabelValues("origin").Inc()
		s.log.Info("refused a WebSocket from a disallowed origin", "origin", origin, "remote", r.RemoteAddr)
		http.Error(w, fmt.Sprintf("origin %q is not allowed to connect to this Ripple gateway (allowed origins are set with FRONTEND_URL)", origin), http.StatusForbidden)
		return
	}
	up, ok := s.upgraderFor(r)
	if !ok {
		http.Error(w, fmt.Sprintf("unsupported WebSocket subprotocol: offer %q or none", protocol.Subprotocol), http.StatusBadRequest)
		return
	}
	ip := clientIP(r)
	if refusal, code := s.reserve(ip); refusal != "" {
		http.Error(w, refusal, code)
		return
	}
	reserved := true
	defer func() {
		if reserved {
			s.release(ip)
		}
	}()
	// A token on the URL is checked before the upgrade; its verdict is
	// sent once the connection is open (a browser cannot read an HTTP
	// error of a WebSocket handshake, but it sees a close code).
	var (
		identity *auth.Identity
		authErr  error
	)
	token := r.URL.Query().Get("access_token")
	if s.opts.Verifier != nil && token != "" {
		identity, authErr = s.opts.Verifier.Verify(r.Context(), token)
	}
	socket, err := s.upgrade(up, w, r)
	if err != nil {
		s.log.Debug("WebSocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	c := socket.Session().(*conn)
	c.init(socket, ip)
	if !s.add(c) {
		_ = socket.WriteClose(protocol.CloseGoingAway, []byte("server is shutting down"))
		c.release() // no read loop will
		return
	}
	reserved = false // remove releases it
	if s.opts.Verifier != nil {
		switch {
		case authErr != nil:
			c.refuse(authErr)
		case identity != nil:
			c.identity = identity
			s.deadlines.set(c, identity.Expires, tokenExpires)
		case c.seed:
			// The seed protocol has no auth message: its token must be on the URL.
			s.opts.Metrics.AuthFailures.WithLabelValues("no_token").Inc()
			c.unauthorized(protocol.ErrUnauthorized, "no access_token")
		default:
			s.deadlines.set(c, time.Now().Add(s.opts.AuthTimeout), graceEnds)
		}
	}
	go socket.ReadLoop()
}

// upgrade takes the connection over from net/http and upgrades it with
// up, the way gws's Upgrade does, but wrapped in a [writeConn] and read
// through a buffer of readBufferSize.
func (s *Server) upgrade(up *gws.Upgrader, w http.ResponseWriter, r *http.Request) (*gws.Conn, error) {
	netConn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, fmt.Errorf("hijack: %w", err)
	}
	br := bufio.NewReaderSize(netConn, readBufferSize)
	wc := &writeConn{Conn: netConn, timeout: s.opts.WriteTimeout}
	socket, err := up.UpgradeFromConn(wc, br, r)
	if err != nil {
		wc.release() // no read loop will
		return nil, err
	}
	return socket, nil
}

// clientIP is the address of the request's TCP peer.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// reserve counts a connection from ip, or returns why it is refused and
// the HTTP status to answer with.
func (s *Server) reserve(ip string) (refusal string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.shuttingDown:
		s.opts.Metrics.RefusedConnections.WithLabelValues("shutting_down").Inc()
		return "server is shutting down", http.StatusServiceUnavailable
	case s.perIP[ip] >= s.opts.MaxConnsPerIP:
		s.opts.Metrics.RefusedConnections.WithLabelValues("per_ip").Inc()
		return fmt.Sprintf("too many WebSocket connections from %s (at most %d; RIPPLE_MAX_CONNS_PER_IP)", ip, s.opts.MaxConnsPerIP),
			http.StatusTooManyRequests
	}
	s.perIP[ip]++
	return "", 0
}

// release uncounts a connection from ip.
func (s *Server) release(ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(ip)
}

func (s *Server) releaseLocked(ip string) {
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// upgraderFor picks the v1 upgrader when the client offers ripple.v1, the
// seed upgrader when it offers no subprotocol; ok is false otherwise.
func (s *Server) upgraderFor(r *http.Request) (up *gws.Upgrader, ok bool) {
	offered := false
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if p == protocol.Subprotocol {
				return s.v1, true
			}
			offered = offered || p != ""
		}
	}
	if offered {
		return nil, false
	}
	return s.seed, true
}

func normalizeOrigin(o string) string {
	return strings.ToLower(strings.TrimRight(strings.TrimSpace(o), "/"))
}

// add registers c; it returns false once Shutdown has begun.
func (s *Server) add(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown {
		return false
	}
	s.conns[c] = struct{}{}
	s.opts.Metrics.Connections.Inc()
	return true
}

func (s *Server) remove(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	s.releaseLocked(c.ip)
	s.opts.Metrics.Connections.Dec()
	if s.shuttingDown && len(s.conns) == 0 {
		s.drainOnce.Do(func() { close(s.drained) })
	}
}

// heartbeat pings every connection each PingInterval from one ticker, and
// closes those that did not answer the previous ping.
func (s *Server) heartbeat() {
	t := time.NewTicker(s.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopPings:
			return
		case <-t.C:
			s.mu.Lock()
			for c := range s.conns {
				c.heartbeat()
			}
			s.mu.Unlock()
		}
	}
}

// expireTokens fires the authentication deadlines once a second, until Shutdown.
func (s *Server) expireTokens() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stopPings:
			return
		case now := <-t.C:
			s.deadlines.fire(now, (*conn).expire)
		}
	}
}

// Shutdown stops accepting connections, sends close 1001 to every client
// (after what is already queued for it) and waits until all are closed or
// ctx is done; then it closes the rest without a goodbye and returns
// ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.shuttingDown {
		s.shuttingDown = true
		close(s.stopPings)
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	if len(s.conns) == 0 {
		s.drainOnce.Do(func() { close(s.drained) })
	}
	s.mu.Unlock()

	for _, c := range conns {
		c.close(protocol.CloseGoingAway, "server shutting down", true)
	}
	select {
	case <-s.drained:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		left := len(s.conns)
		for c := range s.conns {
			c.release()
		}
		s.mu.Unlock()
		return fmt.Errorf("gateway: shutdown: %d connections did not close in time: %w", left, ctx.Err())
	}
}

// gwsLogger adapts slog to gws's one-method Logger.
type gwsLogger struct{ log *slog.Logger }

func (l gwsLogger) Error(v ...any) { l.log.Error(fmt.Sprint(v...)) }
