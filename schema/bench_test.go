package schema_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
)

// BenchmarkInsert measures the write-path cost of the Ripple trigger: one
// INSERT statement per iteration (each its own transaction) of 1 or 100 rows,
// on a table without the trigger, with it, and with it while a connection
// listens and drains the notifications. ns/row divides by the rows written;
// the 100-row form shows the trigger's own cost with less round-trip noise.
func BenchmarkInsert(b *testing.B) {
	modes := []struct {
		name   string
		enable bool
		listen bool
	}{
		{"plain", false, false},
		{"ripple", true, false},
		{"ripple_listening", true, true},
	}
	for _, rows := range []int{1, 100} {
		for _, mode := range modes {
			b.Run(fmt.Sprintf("rows=%d/%s", rows, mode.name), func(b *testing.B) {
				url, conn := appliedDB(b)
				execAll(b, conn, `CREATE TABLE jobs (
					id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
					project_id bigint NOT NULL,
					status text NOT NULL,
					progress integer NOT NULL,
					note text)`)
				if mode.enable {
					execAll(b, conn, "SELECT ripple.enable('jobs')")
				}
				if mode.listen {
					drain(b, listen(b, url, "jobs"))
				}
				ctx := testCtx(b)
				const insert = `INSERT INTO jobs (project_id, status, progress, note)
					SELECT $1, $2, g % 101, $3 FROM generate_series(1, $4::int) AS g`
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					if _, err := conn.Exec(ctx, insert, i%100, "running", "extracting page tables", rows); err != nil {
						b.Fatalf("insert: %v", err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
			})
		}
	}
}

// drain reads notifications on conn until the benchmark ends.
func drain(b *testing.B, conn *pgx.Conn) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := conn.WaitForNotification(ctx); err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() {
		cancel()
		<-done
	})
}
