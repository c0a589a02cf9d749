package schema_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// BenchmarkInsert measures the write-path cost of the Ripple trigger: one
// single-row INSERT per iteration (each its own transaction), on a table
// without the trigger, with it, and with it while a connection listens and
// drains the notifications.
func BenchmarkInsert(b *testing.B) {
	cases := []struct {
		name   string
		enable bool
		listen bool
	}{
		{"plain", false, false},
		{"ripple", true, false},
		{"ripple_listening", true, true},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			url, conn := appliedDB(b)
			execAll(b, conn, `CREATE TABLE jobs (
				id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
				project_id bigint NOT NULL,
				status text NOT NULL,
				progress integer NOT NULL,
				note text)`)
			if bc.enable {
				execAll(b, conn, "SELECT ripple.enable('jobs')")
			}
			if bc.listen {
				drain(b, listen(b, url, "jobs"))
			}
			ctx := testCtx(b)
			const insert = "INSERT INTO jobs (project_id, status, progress, note) VALUES ($1, $2, $3, $4)"
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := conn.Exec(ctx, insert, i%100, "running", i%101, "extracting page tables"); err != nil {
					b.Fatalf("insert: %v", err)
				}
			}
		})
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
