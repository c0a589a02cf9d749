package ingest

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// QueueOptions configures [WatchQueue]. Pool and Report are required.
type QueueOptions struct {
	// Pool runs the query. Required.
	Pool *pgxpool.Pool
	// Report receives each reading of pg_notification_queue_usage(): the
	// fraction (0 to 1) of Postgres's notification queue in use, for
	// example to set a gauge. Required.
	Report func(usage float64)
	// Interval is the time between readings. Default 10s.
	Interval time.Duration
	// WarnAt is the usage at which one warning is logged; one info line
	// follows when usage is back under half of it. Default 0.5. When the
	// queue is full, NOTIFY fails and so do the writes that send it.
	WarnAt float64
	// Logger receives those two lines; nil logs nothing.
	Logger *slog.Logger
}

// The defaults of QueueOptions.
const (
	DefaultQueueInterval = 10 * time.Second
	DefaultQueueWarnAt   = 0.5
)

// queueQueryTimeout bounds one reading of the queue usage.
const queueQueryTimeout = 5 * time.Second

// WatchQueue reads pg_notification_queue_usage() every Interval until ctx
// is done, passes each reading to Report, and logs once when usage reaches
// WarnAt (a listener somewhere in the cluster is not consuming) and once when
// it has come back down. A failed reading is skipped: the listener reports
// outages. It returns nil once ctx is done, or an error for bad options.
func WatchQueue(ctx context.Context, opts QueueOptions) error {
	if opts.Pool == nil || opts.Report == nil {
		return errors.New("ingest: WatchQueue needs a Pool and a Report func")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultQueueInterval
	}
	if opts.WarnAt <= 0 {
		opts.WarnAt = DefaultQueueWarnAt
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tick := time.NewTicker(opts.Interval)
	defer tick.Stop()
	warned := false
	for {
		var usage float64
		qctx, cancel := context.WithTimeout(ctx, queueQueryTimeout)
		err := opts.Pool.QueryRow(qctx, "SELECT pg_notification_queue_usage()").Scan(&usage)
		cancel()
		if err == nil {
			opts.Report(usage)
			switch {
			case !warned && usage >= opts.WarnAt:
				warned = true
				log.Warn("ingest: the Postgres notification queue is filling up; a listening session is not consuming "+
					"(a long transaction on a LISTENing connection?); when it is full, writes that notify fail",
					"usage", usage)
			case warned && usage < opts.WarnAt/2:
				warned = false
				log.Info("ingest: the Postgres notification queue is draining again", "usage", usage)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
