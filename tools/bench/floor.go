package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// floor is a raw pgx LISTEN client on a benchmark table's channel: what
// any consumer of Postgres notifications gets at best, the floor under the
// gateway's latency.
type floor struct {
	conn   *pgx.Conn
	done   chan struct{}
	count  atomic.Int64
	cancel context.CancelFunc
	tracker
	err error
}

// startFloor connects to url and LISTENs on channel; it tracks rows changes.
func startFloor(ctx context.Context, url, channel string, rows int) (*floor, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("floor: connect: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("floor: listen %q: %w", channel, err)
	}
	readCtx, cancel := context.WithCancel(context.Background())
	f := &floor{conn: conn, done: make(chan struct{}), cancel: cancel, tracker: newTracker(rows)}
	go f.read(readCtx)
	return f, nil
}

func (f *floor) read(ctx context.Context) {
	defer close(f.done)
	for {
		n, err := f.conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() == nil {
				f.err = err
			}
			return
		}
		now := time.Now().UnixNano()
		var p struct {
			New benchRow `json:"new"`
		}
		if err := json.Unmarshal([]byte(n.Payload), &p); err != nil {
			f.err = fmt.Errorf("floor: bad payload: %w", err)
			continue
		}
		// Notifications carry no seq: 0 skips the order check.
		if f.record(0, p.New.ID, p.New.SentAt, now) {
			f.count.Add(1)
		}
	}
}

// stop ends the LISTEN client; its tracker may be read afterwards.
func (f *floor) stop() {
	f.cancel()
	<-f.done
	f.conn.Close(context.Background())
}
