package server_test

// The delivery promise, proved end to end against real Postgres and real
// sockets: a client either receives every change on its subscriptions, in
// commit order, or is told to resync, never silently left stale.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lxzan/gws"

	"github.com/ripple-rt/ripple/backend/config"
	"github.com/ripple-rt/ripple/backend/pgtest"
	"github.com/ripple-rt/ripple/backend/protocol"
	"github.com/ripple-rt/ripple/backend/server"
	"github.com/ripple-rt/ripple/schema"
)

// testConfig is the configuration start uses, on dbURL.
func testConfig(dbURL string) config.Config {
	return config.Config{
		DatabaseURL: dbURL, DatabaseURLDirect: dbURL, Channels: []string{"items", "others", "legacy"},
		Addr: "127.0.0.1:0", Auth: "none", RingSize: 64, SendQueue: 256, MaxMessageBytes: 4096,
		MaxSubscriptions: 5, PingInterval: 30 * time.Second, ShutdownTimeout: 5 * time.Second, PoolSize: 2,
	}
}

// prepare gives the database at dbURL Ripple's schema and the test tables.
func prepare(t *testing.T, dbURL string) {
	t.Helper()
	ctx := context.Background()
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	if err := schema.Apply(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, tables); err != nil {
		t.Fatal(err)
	}
	if err := schema.Enable(ctx, db, "items", "others"); err != nil {
		t.Fatal(err)
	}
}

// serve starts a gateway with cfg and closes it when the test ends.
func serve(t *testing.T, cfg config.Config) *server.Server {
	t.Helper()
	srv, err := server.Start(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { closeServer(srv) })
	return srv
}

func closeServer(srv *server.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Close(ctx)
}

// store is the test's own connection to the database, which it writes
// with and which views refetch through; reconnect replaces it after a
// Postgres restart.
type store struct {
	t    *testing.T
	url  string
	mu   sync.Mutex
	conn *pgx.Conn
}

func newStore(t *testing.T, dbURL string) *store {
	t.Helper()
	s := &store{t: t, url: dbURL}
	s.reconnect()
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.conn.Close(context.Background())
	})
	return s
}

func (s *store) reconnect() {
	s.t.Helper()
	conn, err := pgx.Connect(context.Background(), s.url)
	if err != nil {
		s.t.Fatalf("connect: %v", err)
	}
	s.mu.Lock()
	old := s.conn
	s.conn = conn
	s.mu.Unlock()
	if old != nil {
		old.Close(context.Background())
	}
}

func (s *store) exec(sql string, args ...any) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.conn.Exec(context.Background(), sql, args...); err != nil {
		s.t.Fatalf("%s: %v", sql, err)
	}
}

// item is one row of the items table as a view holds it.
type item struct {
	project int64
	name    string
}

// rows returns the items whose project is project (any project when negative).
func (s *store) rows(project int64) map[int64]item {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	rows, err := s.conn.Query(context.Background(),
		`SELECT id, project_id, name FROM items WHERE $1 < 0 OR project_id = $1`, project)
	if err != nil {
		s.t.Fatalf("select items: %v", err)
	}
	out := map[int64]item{}
	for rows.Next() {
		var id int64
		var it item
		if err := rows.Scan(&id, &it.project, &it.name); err != nil {
			s.t.Fatalf("scan items: %v", err)
		}
		out[id] = it
	}
	if err := rows.Err(); err != nil {
		s.t.Fatalf("select items: %v", err)
	}
	return out
}

// writeMix makes n changes to items, each statement changing exactly one
// row: inserts, updates that move rows between projects, and deletes, on
// ids from base up.
func (s *store) writeMix(base, n int) {
	s.t.Helper()
	for k := range n {
		id := base + k/3
		switch {
		case k%3 == 0:
			s.exec(`INSERT INTO items VALUES ($1, $2, 'new')`, id, id%3)
		case k%3 == 1:
			s.exec(`UPDATE items SET name = 'moved', project_id = (project_id + 1) % 3 WHERE id = $1`, id)
		case id%2 == 0:
			s.exec(`DELETE FROM items WHERE id = $1`, id)
		default:
			s.exec(`UPDATE items SET name = 'renamed' WHERE id = $1`, id)
		}
	}
}

// view is what a client holds for one subscription on items, kept the way
// client-ts keeps a query's data: fetched after the first ack, patched by
// each change, fetched again on resync. project filters the subscription
// (project_id = project) when it is not negative.
type view struct {
	t       *testing.T
	c       *client
	db      *store
	sub     string
	project int64
	rows    map[int64]item
	epoch   string
	seq     uint64 // seq of the last change applied (or of the ack)
	acked   uint64 // seq of the last ack
	resyncs []string
	// replayed counts changes that arrived with a seq at or below their
	// ack's: they came from the ring, not live.
	replayed int
	pong     string // ref of the last pong
	marker   string // name of the marker row in the last change to it
}

// subscribeView starts a view of sub on c: a fresh subscription whose data is
// fetched once acknowledged.
func subscribeView(t *testing.T, c *client, db *store, sub string, project int64) *view {
	t.Helper()
	v := &view{t: t, c: c, db: db, sub: sub, project: project}
	v.send(nil)
	v.until("the ack of "+sub, func() bool { return v.rows != nil })
	return v
}

// resume moves the view to client c and resumes its subscription from the
// last change it applied.
func (v *view) resume(c *client) {
	v.t.Helper()
	v.c = c
	v.send(&protocol.Position{Epoch: v.epoch, Seq: v.seq})
}

func (v *view) send(resume *protocol.Position) {
	v.t.Helper()
	var f *protocol.Filter
	if v.project >= 0 {
		f = &protocol.Filter{Column: "project_id", Op: protocol.FilterEq, Value: v.project}
	}
	v.c.send(protocol.SubscribeMessage{Type: "subscribe", Sub: v.sub, Channel: "items", Filter: f, Resume: resume})
}

// apply applies one message from the gateway, failing the test on a change
// out of order (or, unfiltered, after a gap without a resync).
func (v *view) apply(f frame) {
	v.t.Helper()
	if f.Sub != "" && f.Sub != v.sub {
		v.t.Fatalf("view %s got a message for %s: %s", v.sub, f.Sub, f.raw)
	}
	switch f.Type {
	case "subscribed":
		v.epoch, v.acked = f.Epoch, f.Seq
		if v.rows == nil {
			v.rows, v.seq = v.db.rows(v.project), f.Seq
		}
	case "change":
		if f.Seq <= v.seq {
			v.t.Fatalf("view %s: change %d after %d: out of order: %s", v.sub, f.Seq, v.seq, f.raw)
		}
		if v.project < 0 && f.Seq != v.seq+1 {
			v.t.Fatalf("view %s: change %d after %d without a resync: %s", v.sub, f.Seq, v.seq, f.raw)
		}
		v.seq = f.Seq
		if f.Seq <= v.acked {
			v.replayed++
		}
		if f.Change.Truncated {
			v.rows = v.db.rows(v.project)
			return
		}
		row := f.Change.New
		if f.Change.Op == protocol.OpDelete {
			row = f.Change.Old
		}
		id, ok := row["id"].(float64)
		if !ok {
			v.t.Fatalf("view %s: change without an id: %s", v.sub, f.raw)
		}
		if f.Change.Op == protocol.OpDelete {
			delete(v.rows, int64(id))
			return
		}
		project, _ := row["project_id"].(float64)
		name, _ := row["name"].(string)
		v.rows[int64(id)] = item{project: int64(project), name: name}
		if id == markerID {
			v.marker = name
		}
	case "resync":
		v.resyncs = append(v.resyncs, f.Reason)
		v.rows = v.db.rows(v.project)
		v.seq = max(v.seq, v.acked) // changes resume after the ack's seq
	case "pong":
		v.pong = f.Ref
	default:
		v.t.Fatalf("view %s got %s", v.sub, f.raw)
	}
}

// until applies incoming messages until cond holds.
func (v *view) until(what string, cond func() bool) {
	v.t.Helper()
	deadline := time.After(15 * time.Second)
	for !cond() {
		select {
		case f := <-v.c.frames:
			v.apply(f)
		case err := <-v.c.closed:
			v.t.Fatalf("view %s: connection closed while waiting for %s: %v", v.sub, what, err)
		case <-deadline:
			v.t.Fatalf("view %s: timed out waiting for %s", v.sub, what)
		}
	}
}

// settle applies everything up to the change that writes the marker (made
// by the caller after its last write; a refetch that already shows it does
// not count, as changes before it may still be on their way), then proves
// with a ping that nothing else is queued, and checks that the view equals
// the database.
func (v *view) settle(marker string) {
	v.t.Helper()
	v.until("marker "+marker, func() bool { return v.marker == marker })
	ref := "after-" + marker
	v.c.send(protocol.PingMessage{Type: "ping", Ref: ref})
	v.until("pong "+ref, func() bool { return v.pong == ref })
	if want := v.db.rows(v.project); !maps.Equal(v.rows, want) {
		v.t.Fatalf("view %s (project %d) differs from the database:\n view %v\n   db %v", v.sub, v.project, v.rows, want)
	}
}

// mark writes the marker row every view of project 1 (and every
// unfiltered view) settles on.
func (s *store) mark(marker string) {
	s.t.Helper()
	s.exec(`INSERT INTO items VALUES ($1, 1, $2) ON CONFLICT (id) DO UPDATE SET project_id = 1, name = $2`, markerID, marker)
}

const markerID = 1_000_000

// TestResumeReplaysMissedChanges kills a client's socket, writes while it
// is away, and resumes: with fewer changes than the ring holds they arrive
// by replay (no resync, no refetch), in order, before live ones; with more,
// the client is told to resync (position_unavailable).
func TestResumeReplaysMissedChanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		ring       int
		missed     int
		wantResync protocol.ResyncReason
	}{
		{"fewer than the ring holds", 64, 40, ""},
		{"exactly the ring", 40, 40, ""},
		{"more than the ring holds", 16, 40, protocol.ResyncTooOld},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := start(t, func(c *config.Config) { c.RingSize = tt.ring })
			db := newStore(t, e.dbURL)
			v := subscribeView(t, dial(t, e.url, protocol.Subprotocol), db, "all", -1)
			p1 := subscribeView(t, dial(t, e.url, protocol.Subprotocol), db, "p1", 1)
			// A watcher that stays connected shows when the gateway has seen every write.
			watcher := subscribeView(t, dial(t, e.url, protocol.Subprotocol), db, "watch", -1)
			db.writeMix(1, 9)
			db.mark("before")
			v.settle("before")
			p1.settle("before")

			v.c.conn.NetConn().Close() // no close frame: the network went away
			p1.c.conn.NetConn().Close()
			from := v.seq
			db.writeMix(100, tt.missed)
			watcher.until("the missed writes", func() bool { return watcher.seq == from+uint64(tt.missed) })

			v.resume(dial(t, e.url, protocol.Subprotocol))
			p1.resume(dial(t, e.url, protocol.Subprotocol))
			// Both acks before any further write: a write the ring must also
			// hold would push a slow resume past it (a resync, not a replay).
			v.until("the resumed ack", func() bool { return v.acked == from+uint64(tt.missed) })
			p1.until("the resumed ack", func() bool { return p1.acked == from+uint64(tt.missed) })
			if tt.wantResync == "" {
				v.until("the replay", func() bool { return v.seq == v.acked })
			}
			db.writeMix(200, 6) // live changes after the replay
			db.mark("after")
			v.settle("after")
			p1.settle("after")
			watcher.settle("after")

			for _, w := range []*view{v, p1} {
				if tt.wantResync == "" {
					if len(w.resyncs) != 0 {
						t.Errorf("view %s: resyncs %v, want none (replay)", w.sub, w.resyncs)
					}
				} else if len(w.resyncs) != 1 || w.resyncs[0] != string(tt.wantResync) {
					t.Errorf("view %s: resyncs %v, want one %s", w.sub, w.resyncs, tt.wantResync)
				}
			}
			if tt.wantResync == "" && v.replayed != tt.missed {
				t.Errorf("replayed %d changes, want exactly the %d missed", v.replayed, tt.missed)
			}
			if tt.wantResync != "" && v.replayed != 0 {
				t.Errorf("replayed %d changes across a resync", v.replayed)
			}
		})
	}
}

// gate is a TCP proxy in front of Postgres for the gateway's connections.
// While shut it accepts and at once closes new connections, as an
// unreachable server does; the test's own connections bypass it. It lets a
// test hold Postgres "down" for the gateway exactly as long as it needs.
type gate struct {
	ln      net.Listener
	target  string
	open    atomic.Bool
	refused atomic.Int64
	mu      sync.Mutex
	conns   []net.Conn
	wg      sync.WaitGroup
}

func newGate(t *testing.T, target string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{ln: ln, target: target}
	g.open.Store(true)
	g.wg.Add(1)
	go g.accept()
	t.Cleanup(func() {
		ln.Close()
		g.mu.Lock()
		for _, c := range g.conns {
			c.Close()
		}
		g.mu.Unlock()
		g.wg.Wait()
	})
	return g
}

func (g *gate) accept() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		if !g.open.Load() {
			g.refused.Add(1)
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", g.target)
		if err != nil {
			c.Close()
			continue
		}
		g.mu.Lock()
		g.conns = append(g.conns, c, up)
		g.mu.Unlock()
		g.wg.Add(2)
		go g.pipe(c, up)
		go g.pipe(up, c)
	}
}

func (g *gate) pipe(dst, src net.Conn) {
	defer g.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// url returns dbURL with its host and port replaced by the gate's.
func (g *gate) url(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = g.ln.Addr().String()
	return u.String()
}

func hostPort(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// TestPostgresRestart restarts Postgres under subscribed clients while the
// gateway cannot reach it for a while: /readyz turns 503, a subscribe made
// meanwhile is acknowledged, every subscription gets exactly one
// listener_gap resync once the listener is back, and every client's data
// equals the database's after further writes.
func TestPostgresRestart(t *testing.T) {
	t.Parallel()
	pg := pgtest.Cluster(t)
	prepare(t, pg.URL)
	g := newGate(t, hostPort(t, pg.URL))
	srv := serve(t, testConfig(g.url(t, pg.URL)))
	db := newStore(t, pg.URL)
	ws := srv.WebSocketURL()

	views := []*view{
		subscribeView(t, dial(t, ws, protocol.Subprotocol), db, "all", -1),
		subscribeView(t, dial(t, ws, protocol.Subprotocol), db, "p1", 1),
	}
	db.writeMix(1, 30)
	db.mark("before")
	for _, v := range views {
		v.settle("before")
	}

	g.open.Store(false)
	restarted := make(chan error, 1)
	began := time.Now()
	go func() { restarted <- pg.Restart(context.Background()) }()
	waitFor(t, "readyz to answer 503", func() bool { return status(t, srv.URL()+"/readyz") == http.StatusServiceUnavailable })
	detected := time.Since(began)
	if err := <-restarted; err != nil {
		t.Fatalf("restart Postgres: %v", err)
	}
	restart := time.Since(began)

	// Postgres is back but the gateway cannot reach it: writes go on.
	db.reconnect()
	db.writeMix(100, 30)
	late := subscribeView(t, dial(t, ws, protocol.Subprotocol), db, "late", -1)
	if got := status(t, srv.URL()+"/readyz"); got != http.StatusServiceUnavailable {
		t.Fatalf("readyz answered %d after the outage ack, want 503 (the listener is still away)", got)
	}
	views = append(views, late)

	reopened := time.Now()
	g.open.Store(true)
	waitFor(t, "readyz to answer 200", func() bool { return status(t, srv.URL()+"/readyz") == http.StatusOK })
	recovered := time.Since(reopened)
	for _, v := range views {
		v.until("the listener_gap resync", func() bool { return len(v.resyncs) > 0 })
	}
	db.writeMix(200, 30)
	db.mark("after")
	for _, v := range views {
		v.settle("after")
		if len(v.resyncs) != 1 || v.resyncs[0] != string(protocol.ResyncGap) {
			t.Errorf("view %s: resyncs %v, want exactly one %s", v.sub, v.resyncs, protocol.ResyncGap)
		}
	}
	if n := metric(t, srv.URL(), "ripple_listener_reconnects_total"); n != 1 {
		t.Errorf("ripple_listener_reconnects_total = %v, want 1", n)
	}
	t.Logf("Postgres restart: readyz 503 after %v; restart took %v; ready %v after Postgres was reachable again (%d connections refused meanwhile)",
		detected.Round(time.Millisecond), restart.Round(time.Millisecond), recovered.Round(time.Millisecond), g.refused.Load())
}

// TestSubscribeDuringOutage: a subscription made while the listener is away
// is acknowledged, gets a listener_gap resync once LISTEN is active again,
// and then receives a change made after that resync.
func TestSubscribeDuringOutage(t *testing.T) {
	t.Parallel()
	pg := pgtest.Cluster(t)
	prepare(t, pg.URL)
	g := newGate(t, hostPort(t, pg.URL))
	srv := serve(t, testConfig(g.url(t, pg.URL)))

	g.open.Store(false)
	if err := pg.Restart(context.Background()); err != nil {
		t.Fatalf("restart Postgres: %v", err)
	}
	waitFor(t, "readyz to answer 503", func() bool { return status(t, srv.URL()+"/readyz") == http.StatusServiceUnavailable })
	c := dial(t, srv.WebSocketURL(), protocol.Subprotocol)
	c.subscribe("s", "items", nil)
	if got := status(t, srv.URL()+"/readyz"); got != http.StatusServiceUnavailable {
		t.Fatalf("readyz answered %d after the ack, want 503", got)
	}
	g.open.Store(true)
	if f := c.expect("resync"); f.Sub != "s" || f.Reason != string(protocol.ResyncGap) {
		t.Fatalf("after the outage: got %s, want a listener_gap resync", f.raw)
	}
	db := newStore(t, pg.URL)
	db.exec(`INSERT INTO items VALUES (1, 1, 'after the resync')`)
	if f := c.expect("change"); f.Change.New["name"] != "after the resync" {
		t.Fatalf("after the resync: got %s", f.raw)
	}
}

// TestStartWaitsForListen: while the listener cannot LISTEN, Start does not
// serve (the port refuses connections), so no client can be acknowledged
// early; once it returns, a change made right after the ack arrives.
func TestStartWaitsForListen(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	prepare(t, dbURL)
	g := newGate(t, hostPort(t, dbURL))
	g.open.Store(false)
	cfg := testConfig(g.url(t, dbURL))
	cfg.Addr = freeAddr(t)

	type started struct {
		srv *server.Server
		err error
	}
	result := make(chan started, 1)
	go func() {
		srv, err := server.Start(context.Background(), cfg, nil)
		result <- started{srv, err}
	}()
	waitFor(t, "the listener to try to connect", func() bool { return g.refused.Load() >= 3 })
	select {
	case r := <-result:
		if r.srv != nil {
			closeServer(r.srv)
		}
		t.Fatalf("Start returned before the listener was listening: %v", r.err)
	default:
	}
	if c, err := net.Dial("tcp", cfg.Addr); err == nil {
		c.Close()
		t.Fatal("the gateway accepted a connection before its listener was listening")
	}
	g.open.Store(true)
	r := <-result
	if r.err != nil {
		t.Fatalf("start: %v", r.err)
	}
	t.Cleanup(func() { closeServer(r.srv) })

	db := newStore(t, dbURL)
	c := dial(t, r.srv.WebSocketURL(), protocol.Subprotocol)
	c.subscribe("s", "items", nil)
	db.exec(`INSERT INTO items VALUES (1, 1, 'right after the ack')`)
	expectChange(t, c, "s", protocol.OpInsert, 1, 1)
}

// TestStalledClientDoesNotHoldBackOthers streams 10,000 changes while one
// client stops reading: the others receive all of them in order, the
// stalled client is resynced or closed with 4008 (never left with a silent
// gap), the metrics count it, and the gateway's heap stays bounded.
func TestStalledClientDoesNotHoldBackOthers(t *testing.T) {
	t.Parallel()
	const (
		changes  = 10_000
		rowBytes = 2000
	)
	e := start(t, func(c *config.Config) { c.SendQueue = 256 })
	readers := []*seqReader{dialSeqReader(t, e.url, changes), dialSeqReader(t, e.url, changes)}
	stalled := dialStalled(t, e.srv.Addr())

	runtime.GC()
	base := heapInuse()
	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if h := heapInuse(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()

	e.exec(`INSERT INTO items SELECT g, g % 3, repeat('x', $1) FROM generate_series(1, $2) AS g`, rowBytes, changes)
	// Once its queue has overflowed, the stalled client reads again and
	// shows what it was sent.
	waitFor(t, "the stalled client's queue to overflow", func() bool {
		return metric(t, e.srv.URL(), "ripple_dropped_messages_total") > 0
	})
	drained := make(chan stalledResult, 1)
	go func() { drained <- stalled.drain(changes) }()
	for _, r := range readers {
		if err := r.wait(); err != nil {
			t.Fatal(err)
		}
	}
	close(stopSampling)
	<-sampled
	runtime.GC()
	retained := int64(heapInuse()) - int64(base)
	grown := int64(peak.Load()) - int64(base)

	got := <-drained
	if got.err != nil {
		t.Fatalf("stalled client: %v", got.err)
	}
	if got.resyncs == 0 && got.ending != "close 4008" {
		t.Fatalf("stalled client got no slow_consumer resync and ended with %q, want a resync or close 4008", got.ending)
	}
	dropped := metric(t, e.srv.URL(), "ripple_dropped_messages_total")
	resyncs := metric(t, e.srv.URL(), `ripple_resyncs_total{reason="slow_consumer"}`)
	if resyncs < 1 {
		t.Fatalf("slow_consumer resyncs = %v: the overflow was not counted", resyncs)
	}
	const maxGrowth = 64 << 20
	if grown > maxGrowth {
		t.Fatalf("heap in use grew by %d MiB while streaming, want under %d MiB", grown>>20, maxGrowth>>20)
	}
	t.Logf("stalled client: %d of %d changes, %d slow_consumer resyncs, ended with %s; %v changes dropped; gateway+test heap in use: +%.1f MiB at peak, %+.1f MiB retained after GC",
		got.changes, changes, got.resyncs, got.ending, dropped, float64(grown)/(1<<20), float64(retained)/(1<<20))
}

func heapInuse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// seqReader is a subscribed client that checks that it receives changes
// 1, 2, … n and nothing else. It reads only each message's seq, so that it
// keeps up with the gateway even under the race detector.
type seqReader struct {
	gws.BuiltinEventHandler
	acked    chan struct{}
	isAcked  bool
	next, n  uint64
	err      error
	done     chan struct{}
	doneOnce sync.Once
}

func dialSeqReader(t *testing.T, wsURL string, n int) *seqReader {
	t.Helper()
	r := &seqReader{acked: make(chan struct{}), next: 1, n: uint64(n), done: make(chan struct{})}
	header := http.Header{"Sec-Websocket-Protocol": {protocol.Subprotocol}}
	conn, _, err := gws.NewClient(r, &gws.ClientOption{Addr: wsURL, RequestHeader: header})
	if err != nil {
		t.Fatalf("dial %s: %v", wsURL, err)
	}
	go conn.ReadLoop()
	t.Cleanup(func() { conn.NetConn().Close() })
	sub, _ := json.Marshal(protocol.SubscribeMessage{Type: "subscribe", Sub: "s", Channel: "items"})
	if err := conn.WriteMessage(gws.OpcodeText, sub); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.acked:
	case <-r.done:
		t.Fatalf("reader: %v", r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("reader: no ack within 10s")
	}
	return r
}

func (r *seqReader) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	for _, line := range bytes.Split(m.Bytes(), []byte{'\n'}) {
		switch {
		case r.next > r.n:
			return
		case !r.isAcked:
			if !bytes.HasPrefix(line, []byte(`{"type":"subscribed"`)) {
				r.finish(fmt.Errorf("reader: got %.100s, want the ack", line))
				return
			}
			r.isAcked = true
			close(r.acked)
		default:
			if seq, ok := changeSeq(line); !ok || seq != r.next {
				r.finish(fmt.Errorf("reader: got %.100s, want change %d", line, r.next))
				return
			}
			r.next++
			if r.next > r.n {
				r.finish(nil)
			}
		}
	}
}

func (r *seqReader) OnClose(_ *gws.Conn, err error) {
	r.finish(fmt.Errorf("reader closed after %d changes: %v", r.next-1, err))
}

func (r *seqReader) finish(err error) {
	r.doneOnce.Do(func() {
		r.err = err
		close(r.done)
	})
}

// wait returns once the reader has all its changes, or why it has not.
func (r *seqReader) wait() error {
	select {
	case <-r.done:
		return r.err
	case <-time.After(2 * time.Minute):
		return errors.New("reader: not all changes within 2 minutes")
	}
}

// changeSeq reads the seq of a change message, which the hub writes as
// {"type":"change","seq":N,…}.
func changeSeq(line []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(line, []byte(`{"type":"change","seq":`))
	if !ok {
		return 0, false
	}
	digits, _, ok := bytes.Cut(rest, []byte{','})
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(string(digits), 10, 64)
	return seq, err == nil
}

// stalledClient is a raw WebSocket client with a small receive buffer that
// subscribes, reads the ack and then reads nothing until drain.
type stalledClient struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialStalled(t *testing.T, addr string) *stalledClient {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n",
		addr, protocol.Subprotocol)
	s := &stalledClient{conn: conn, r: bufio.NewReader(conn)}
	resp, err := http.ReadResponse(s.r, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	sub, _ := json.Marshal(protocol.SubscribeMessage{Type: "subscribe", Sub: "stalled", Channel: "items"})
	if _, err := conn.Write(maskedFrame(sub)); err != nil {
		t.Fatal(err)
	}
	op, payload, err := s.readFrame()
	if err != nil || op != 1 || !bytes.HasPrefix(payload, []byte(`{"type":"subscribed"`)) {
		t.Fatalf("stalled client: want the ack, got opcode %d %q: %v", op, payload, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return s
}

// maskedFrame returns payload as one masked text frame (clients must mask).
func maskedFrame(payload []byte) []byte {
	frame := []byte{0x81}
	switch n := len(payload); {
	case n < 126:
		frame = append(frame, 0x80|byte(n))
	default:
		frame = append(frame, 0x80|126)
		frame = binary.BigEndian.AppendUint16(frame, uint16(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	frame = append(frame, mask[:]...)
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	return frame
}

// readFrame reads one unfragmented server frame.
func (s *stalledClient) readFrame() (opcode byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(s.r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		_, err = io.ReadFull(s.r, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		_, err = io.ReadFull(s.r, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	if err != nil {
		return 0, nil, err
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(s.r, payload)
	return h[0] & 0x0f, payload, err
}

// stalledResult is what the stalled client saw once it read again.
type stalledResult struct {
	changes, resyncs int
	ending           string // "all changes", or "close <code>"
	err              error  // a broken promise: disorder, a gap without a resync, a silent end
}

// drain reads until the client has change n, a close frame, or the
// connection ends, and checks the promise: seqs increase, every gap in
// them comes with a slow_consumer resync, and a client short of change n
// was told so (a resync after its last change, or a 4008 close).
func (s *stalledClient) drain(n int) (res stalledResult) {
	var last uint64
	resynced := false // a resync came since the last change
	for last < uint64(n) {
		_ = s.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		op, payload, err := s.readFrame()
		switch {
		case err != nil && !resynced:
			res.err = fmt.Errorf("after change %d of %d the connection ended without a resync or close frame: %w", last, n, err)
			return res
		case err != nil:
			res.ending = "a resync, then " + err.Error()
			return res
		case op == 8:
			res.ending = "close without a code"
			if len(payload) >= 2 {
				res.ending = "close " + strconv.Itoa(int(binary.BigEndian.Uint16(payload)))
			}
			return res
		case op != 1:
			continue // a ping
		}
		for _, line := range bytes.Split(payload, []byte{'\n'}) {
			if seq, ok := changeSeq(line); ok {
				if seq <= last || (seq != last+1 && !resynced) {
					res.err = fmt.Errorf("change %d after change %d (resync between: %v)", seq, last, resynced)
					return res
				}
				last, resynced = seq, false
				res.changes++
				continue
			}
			var f frame
			if err := json.Unmarshal(line, &f); err != nil || f.Type != "resync" || f.Reason != string(protocol.ResyncSlowConsumer) {
				res.err = fmt.Errorf("got %.100s, want a change or a slow_consumer resync", line)
				return res
			}
			resynced = true
			res.resyncs++
		}
	}
	res.ending = "all changes"
	return res
}

// TestTwoGatewaysDeliverEveryChange runs two gateways on one database: a
// client on each receives every change, in the same order.
func TestTwoGatewaysDeliverEveryChange(t *testing.T) {
	t.Parallel()
	const writers, perWriter = 4, 50
	e := start(t, nil)
	other := serve(t, testConfig(e.dbURL))
	clients := []*client{dial(t, e.url, protocol.Subprotocol), dial(t, other.WebSocketURL(), protocol.Subprotocol)}
	for _, c := range clients {
		c.subscribe("s", "items", nil)
	}
	var wg sync.WaitGroup
	for w := range writers {
		db := newStore(t, e.dbURL)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range perWriter {
				id := w*1000 + k
				if _, err := db.conn.Exec(context.Background(), `INSERT INTO items VALUES ($1, $2, 'w')`, id, w); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var seen [2][]string
	for i, c := range clients {
		for range writers * perWriter {
			f := c.expect("change")
			seen[i] = append(seen[i], fmt.Sprintf("%d:%v", f.Seq, f.Change.New["id"]))
		}
	}
	if strings.Join(seen[0], " ") != strings.Join(seen[1], " ") {
		t.Fatalf("the two gateways delivered different orders:\n%v\n%v", seen[0], seen[1])
	}
	ids := map[string]bool{}
	for _, s := range seen[0] {
		ids[s[strings.IndexByte(s, ':')+1:]] = true
	}
	if len(ids) != writers*perWriter {
		t.Fatalf("%d distinct rows delivered, want %d", len(ids), writers*perWriter)
	}
}

// TestLargeUpdateLeavingAFilter: an UPDATE of a row too large for
// pg_notify is hydrated and goes out without old (the previous row is
// unknown). When it moves the row out of a filtered subscription, that
// subscription must still learn that the row left (as a DELETE), or its
// list keeps a row that no longer belongs to it.
func TestLargeUpdateLeavingAFilter(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	c := dial(t, e.url, protocol.Subprotocol)
	c.subscribe("p7", "items", &protocol.Filter{Column: "project_id", Op: protocol.FilterEq, Value: 7})
	big := strings.Repeat("ripple ", 2000) // over pg_notify's limit: truncated, then hydrated
	e.exec(`INSERT INTO items VALUES (1, 7, $1)`, big)
	expectChange(t, c, "p7", protocol.OpInsert, 1, 1)
	e.exec(`UPDATE items SET project_id = 8 WHERE id = 1`)
	expectChange(t, c, "p7", protocol.OpDelete, 2, 1)
	e.exec(`UPDATE items SET project_id = 7 WHERE id = 1`)
	f := c.expect("change")
	if f.Seq != 3 || f.Change.Op == protocol.OpDelete || f.Change.New["project_id"] != float64(7) || f.Change.New["name"] != big {
		t.Fatalf("row moving back in: got %.300s, want it whole", f.raw)
	}
}

// TestBadNotificationsAreCountedAndSkipped sends notifications the gateway
// cannot use on an enabled channel: each is counted, nothing crashes, and
// later changes still flow.
func TestBadNotificationsAreCountedAndSkipped(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	c := dial(t, e.url, protocol.Subprotocol)
	c.subscribe("s", "items", nil)
	tests := []struct {
		name    string
		payload string
		metric  string
		passed  bool // passed on to subscribers (truncated), not skipped
	}{
		{"garbage", `garbage`, "ripple_bad_payloads_total", false},
		{"not a change", `{"op":"MERGE","table":"items","new":{"id":1}}`, "ripple_bad_payloads_total", false},
		{"hydration by a column that does not exist", `{"op":"INSERT","table":"items","schema":"public","truncated":true,"key":{"nope":1}}`,
			"ripple_hydration_failures_total", true},
		{"hydration of another table", `{"op":"UPDATE","table":"others","schema":"public","truncated":true,"key":{"id":1}}`,
			"ripple_hydration_failures_total", true},
	}
	var seq uint64
	for i, tt := range tests {
		before := metric(t, e.srv.URL(), tt.metric)
		e.exec(`SELECT pg_notify('items', $1)`, tt.payload)
		e.exec(`INSERT INTO items VALUES ($1, 1, 'still flowing')`, i+1)
		if tt.passed {
			seq++
			if f := c.expect("change"); f.Seq != seq || !f.Change.Truncated {
				t.Fatalf("%s: got %s, want the truncated change passed on", tt.name, f.raw)
			}
		}
		seq++
		expectChange(t, c, "s", protocol.OpInsert, seq, float64(i+1))
		if got := metric(t, e.srv.URL(), tt.metric); got != before+1 {
			t.Errorf("%s: %s went from %v to %v, want +1", tt.name, tt.metric, before, got)
		}
	}
	if got := status(t, e.srv.URL()+"/readyz"); got != http.StatusOK {
		t.Fatalf("readyz answered %d after bad notifications", got)
	}
}

// metric reads one series from /metrics (0 when absent).
func metric(t *testing.T, base, series string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %q", series, line)
			}
			return n
		}
	}
	return 0
}

// freeAddr returns a local address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
