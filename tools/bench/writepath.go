package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// writeResult is the single-row insert rate of one table setup.
type writeResult struct {
	mode    string
	conns   int
	inserts int64
	elapsed time.Duration
}

func (w writeResult) perSecond() float64 { return float64(w.inserts) / w.elapsed.Seconds() }

// measureWritePath measures single-row INSERTs per second (each its own
// transaction) on a table without the trigger, with it, and with it while
// a client LISTENs, from one and from four connections.
func (b *bench) measureWritePath(ctx context.Context) ([]writeResult, error) {
	d := 3 * time.Second
	if b.opts.quick {
		d = 300 * time.Millisecond
	}
	modes := []struct {
		name            string
		trigger, listen bool
	}{
		{"no trigger", false, false},
		{"trigger, nobody listening", true, false},
		{"trigger, one LISTEN client", true, true},
	}
	var out []writeResult
	for _, conns := range []int{1, 4} {
		for _, m := range modes {
			table := fmt.Sprintf("bench_write_%d", len(out))
			if err := b.newTable(ctx, table, m.trigger); err != nil {
				return nil, err
			}
			var fl *floor
			if m.listen {
				var err error
				if fl, err = startFloor(ctx, b.pg.URL, table, 1024); err != nil {
					return nil, err
				}
			}
			w, err := b.insertFor(ctx, table, conns, d)
			if fl != nil {
				fl.stop()
			}
			if err != nil {
				return nil, err
			}
			w.mode = m.name
			out = append(out, w)
			b.logf("write path: %s, %d conns: %.0f inserts/s", w.mode, conns, w.perSecond())
		}
	}
	return out, nil
}

// insertFor inserts single rows into table from conns connections for d.
func (b *bench) insertFor(ctx context.Context, table string, conns int, d time.Duration) (writeResult, error) {
	insert := fmt.Sprintf("INSERT INTO %s (sent_at, pad) VALUES ($1, '')", pgx.Identifier{table}.Sanitize())
	var (
		n    atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, conns)
	)
	start := time.Now()
	deadline := start.Add(d)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := b.pool.Acquire(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Release()
			for time.Now().Before(deadline) {
				if _, err := conn.Exec(ctx, insert, time.Now().UnixNano()); err != nil {
					errs <- fmt.Errorf("insert into %s: %w", table, err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return writeResult{}, err
	}
	return writeResult{conns: conns, inserts: n.Load(), elapsed: time.Since(start)}, nil
}
