package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ripple-rt/ripple/schema"
)

// stream describes one streaming run: subscribers on one channel while
// rows are written, either paced (rate) or as fast as writers commit.
type stream struct {
	name    string // also names the table: bench_<name>
	subs    int
	rows    int
	rate    int // rows per second; 0 writes as fast as writers commit
	writers int // writer connections when rate is 0
	pad     int // bytes of padding per row
	// vanish, when above zero, is the fraction of subscribers that vanish
	// after a third of the rows: half close their socket at once, half
	// stop reading and stay connected (a client whose network went away;
	// their sockets have a tiny receive buffer, so writes to them block).
	vanish float64
	// floorOnly runs the LISTEN client alone: no gateway, no subscribers.
	floorOnly bool
}

// result is what one run measured.
type result struct {
	name      string
	floorOnly bool
	subs      int // subscribers counted (survivors in churn)
	vanished  int
	rows      int

	expected, received, dups, breaks, resyncs int
	frames                                    int // WebSocket messages read that carried changes
	clientErrs                                []string
	lat                                       latency
	rate                                      float64       // distinct deliveries per second, first send to last delivery
	tail                                      time.Duration // last delivery after last commit

	floor *floorResult

	cpu        cpuUsage
	gwPeakRSS  int64
	gwMeasured bool
	wall       time.Duration // first send to last delivery

	note string // what the gateway's /metrics said, when it matters

	// idle only.
	perConnRSS, perConnHeap, perConnStack float64
	goroutinesPerConn                     float64
	connectTime                           time.Duration
	connectCPU                            time.Duration // the gateway's, while the clients connected
}

// floorResult is what the raw LISTEN client measured in the same run.
type floorResult struct {
	received, dups int
	lat            latency
	rate           float64
}

// runStream runs s against a fresh gateway and table.
func (b *bench) runStream(ctx context.Context, s stream) (result, error) {
	table := "bench_" + strings.ReplaceAll(s.name, "-", "_")
	if err := b.newTable(ctx, table, true); err != nil {
		return result{}, err
	}
	var (
		gw  gateway
		err error
	)
	if !s.floorOnly {
		if gw, err = b.startGateway(ctx, table); err != nil {
			return result{}, err
		}
		defer gw.stop()
	}
	readCtx, stopReading := context.WithCancel(context.Background())
	defer stopReading()
	// The first nVanish subscribers vanish: the first half close their
	// socket, the others stop reading (with a tiny receive buffer).
	nVanish := int(float64(s.subs) * s.vanish)
	nClose := nVanish / 2
	stalls := func(i int) bool { return i >= nClose && i < nVanish }
	var subs []*subscriber
	if !s.floorOnly {
		if subs, err = openSubscribers(ctx, b.http, gw.wsURL(), table, s.subs, s.rows, readCtx, stalls); err != nil {
			return result{}, err
		}
		defer closeSubscribers(subs)
	}
	fl, err := startFloor(ctx, b.pg.URL, table, s.rows)
	if err != nil {
		return result{}, err
	}
	defer fl.stop()

	survivors := subs[min(nVanish, len(subs)):]
	vanish := func() {
		for i, sub := range subs[:nVanish] {
			if stalls(i) {
				sub.stall.Store(true)
			} else {
				sub.conn.CloseNow()
			}
		}
	}
	vanishAt := -1
	if nVanish > 0 {
		vanishAt = s.rows / 3
	}

	cpu0, measured, err := snapshotCPU(gw)
	if err != nil {
		return result{}, err
	}
	if b.onStreamStart != nil {
		b.onStreamStart()
	}
	w, err := b.write(ctx, table, s, vanishAt, vanish)
	if err != nil {
		return result{}, err
	}
	complete := b.waitDelivered(ctx, survivors, fl, s.rows)
	var after string
	if nVanish > 0 {
		after = gatewayAfterChurn(gw, s.subs)
	}
	cpu1, _, err := snapshotCPU(gw)
	if err != nil {
		return result{}, err
	}
	stopReading()
	closeSubscribers(subs)
	fl.stop()

	r := summarizeSubs(s.name, survivors, s.rows, w)
	r.vanished = nVanish
	r.note = after
	r.floorOnly = s.floorOnly
	r.floor = summarizeFloor(fl, w)
	if s.floorOnly {
		r.wall = time.Duration(fl.lastAt - w.firstSend)
	}
	r.gwMeasured = measured
	r.cpu = cpu1.since(cpu0)
	r.gwPeakRSS = cpu1.gateway.peakRSS
	if !complete {
		b.logf("%s: not every delivery arrived before the deadline", s.name)
	}
	return r, nil
}

// gatewayAfterChurn says, from the gateway's /metrics, how it dealt with
// the subscribers that vanished.
func gatewayAfterChurn(gw gateway, subs int) string {
	conns, err1 := gw.metric("ripple_connections")
	drops, err2 := gw.metric("ripple_dropped_messages_total")
	if err := errors.Join(err1, err2); err != nil {
		return "gateway metrics unavailable: " + err.Error()
	}
	return fmt.Sprintf("When the survivors had everything, the gateway held %.0f of the %d connections and had dropped %.0f changes from slow clients' queues (`ripple_connections`, `ripple_dropped_messages_total`).", conns, subs, drops)
}

// writeStats is when the rows were sent and committed.
type writeStats struct {
	firstSend, lastCommit int64 // unix nanos
}

// write inserts s.rows rows into table, paced or as fast as they commit,
// each carrying its send time; it calls hook after row hookAt.
func (b *bench) write(ctx context.Context, table string, s stream, hookAt int, hook func()) (writeStats, error) {
	insert := fmt.Sprintf("INSERT INTO %s (sent_at, pad) VALUES ($1, $2)", pgx.Identifier{table}.Sanitize())
	pad := strings.Repeat("x", s.pad)
	var (
		next       atomic.Int64
		lastCommit atomic.Int64
		hookOnce   sync.Once
	)
	firstSend := time.Now().UnixNano()
	writers := s.writers
	if s.rate > 0 || writers < 1 {
		writers = 1
	}
	interval := time.Duration(0)
	if s.rate > 0 {
		interval = time.Second / time.Duration(s.rate)
	}
	start := time.Now()
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := b.pool.Acquire(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Release()
			for {
				i := int(next.Add(1)) - 1
				if i >= s.rows {
					return
				}
				if interval > 0 {
					if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
						time.Sleep(d) // pacing, not synchronisation
					}
				}
				if _, err := conn.Exec(ctx, insert, time.Now().UnixNano(), pad); err != nil {
					errs <- fmt.Errorf("insert into %s: %w", table, err)
					return
				}
				storeMax(&lastCommit, time.Now().UnixNano())
				if i == hookAt {
					hookOnce.Do(hook)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return writeStats{}, err
	}
	return writeStats{firstSend: firstSend, lastCommit: lastCommit.Load()}, nil
}

func storeMax(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}

// deliveryDeadline is how long after the last commit the tool waits for
// deliveries before it counts the rest as lost.
const deliveryDeadline = 15 * time.Second

// waitDelivered waits until every subscriber in subs and the floor have
// rows changes, or a subscriber's connection ended, or the deadline passed.
// It reports whether everything arrived.
func (b *bench) waitDelivered(ctx context.Context, subs []*subscriber, fl *floor, rows int) bool {
	deadline := time.Now().Add(deliveryDeadline)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		all := fl == nil || fl.count.Load() >= int64(rows)
		for _, s := range subs {
			if !all {
				break
			}
			select {
			case <-s.done: // ended: nothing more will come
			default:
				all = s.count.Load() >= int64(rows)
			}
		}
		if all {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
			if time.Now().After(deadline) {
				return false
			}
		}
	}
}

// summarizeSubs adds up the subscribers' trackers. Call it once their
// readers have returned.
func summarizeSubs(name string, subs []*subscriber, rows int, w writeStats) result {
	r := result{name: name, subs: len(subs), rows: rows, expected: len(subs) * rows}
	var lastAt int64
	lats := make([][]int64, 0, len(subs))
	for _, s := range subs {
		r.received += s.received
		r.dups += s.dups
		r.breaks += s.breaks
		r.resyncs += s.resyncs
		r.frames += s.frames
		r.clientErrs = append(r.clientErrs, s.errs...)
		if s.err != nil {
			r.clientErrs = append(r.clientErrs, s.err.Error())
		}
		lastAt = max(lastAt, s.lastAt)
		lats = append(lats, s.lat)
	}
	r.lat = summarize(lats...)
	if lastAt > w.firstSend {
		r.wall = time.Duration(lastAt - w.firstSend)
		r.rate = float64(r.received) / r.wall.Seconds()
		r.tail = time.Duration(lastAt - w.lastCommit)
	}
	return r
}

func summarizeFloor(f *floor, w writeStats) *floorResult {
	fr := &floorResult{received: f.received, dups: f.dups, lat: summarize(f.lat)}
	if f.lastAt > w.firstSend {
		fr.rate = float64(f.received) / time.Duration(f.lastAt-w.firstSend).Seconds()
	}
	return fr
}

// newTable creates table afresh (id, sent_at, pad), with Ripple's trigger
// when trigger is set.
func (b *bench) newTable(ctx context.Context, table string, trigger bool) error {
	q := pgx.Identifier{table}.Sanitize()
	if _, err := b.pool.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS %s;
		CREATE TABLE %s (
			id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			sent_at bigint NOT NULL,
			pad text NOT NULL DEFAULT '')`, q, q)); err != nil {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	if trigger {
		if err := schema.Enable(ctx, b.pool, table); err != nil {
			return err
		}
	}
	return nil
}
