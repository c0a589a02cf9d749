package main

import (
	"context"
	"io"
	"testing"
	"time"
)

// TestQuickScenarios runs every scenario in its --quick form against a real
// gateway process on a throwaway Postgres and checks that every subscriber
// got every change once and in order (in churn: every survivor). Timing is
// reported, never asserted.
func TestQuickScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Postgres and the gateway")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts, err := parseFlags([]string{"--quick", "--out", "", "--write-path=false"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := run(ctx, opts, io.Discard, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"latency": true, "fanout": true, "idle": true, "churn": true}
	for _, s := range rep.scenarios {
		delete(want, s.name)
		if len(s.results) == 0 {
			t.Errorf("%s: no results", s.name)
		}
		for _, r := range s.results {
			t.Run(r.name, func(t *testing.T) {
				if r.floor == nil || r.floor.received != r.rows || r.floor.dups != 0 {
					t.Errorf("LISTEN floor: %+v, want %d changes once each", r.floor, r.rows)
				}
				if r.floorOnly {
					return
				}
				if r.expected == 0 || r.received != r.expected {
					t.Errorf("received %d of %d changes", r.received, r.expected)
				}
				if r.dups != 0 || r.breaks != 0 || r.resyncs != 0 {
					t.Errorf("%d duplicates, %d seq breaks, %d resyncs; want none", r.dups, r.breaks, r.resyncs)
				}
				if len(r.clientErrs) > 0 {
					t.Errorf("client errors: %q", r.clientErrs)
				}
				if !r.gwMeasured || r.gwPeakRSS <= 0 {
					t.Errorf("gateway usage not measured: peak RSS %d", r.gwPeakRSS)
				}
			})
		}
	}
	for name := range want {
		t.Errorf("scenario %s did not run", name)
	}
}

func TestParseChangeFast(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line       string
		seq        uint64
		id, sentAt int64
		ok         bool
	}{
		{`{"type":"change","seq":7,"change":{"op":"INSERT","schema":"public","table":"t","new":{"id":3,"sent_at":1700000000000000000,"pad":""}},"sub":"s"}`, 7, 3, 1700000000000000000, true},
		{`{"type":"change","seq":12,"change":{"op":"INSERT","table":"t","new":{"id":40,"pad":"x","sent_at":99}},"sub":"s"}`, 12, 40, 99, true},
		{`{"type":"subscribed","channel":"t","epoch":"e","seq":0,"sub":"s"}`, 0, 0, 0, false},
		{`{"type":"change","seq":7,"change":{"op":"INSERT","new":{"pad":"","id":3}}}`, 0, 0, 0, false},
		{`{"type":"change","seq":x}`, 0, 0, 0, false},
	}
	for _, tt := range tests {
		seq, id, sentAt, ok := parseChangeFast([]byte(tt.line))
		if ok != tt.ok || (ok && (seq != tt.seq || id != tt.id || sentAt != tt.sentAt)) {
			t.Errorf("parseChangeFast(%s) = %d, %d, %d, %v; want %d, %d, %d, %v", tt.line, seq, id, sentAt, ok, tt.seq, tt.id, tt.sentAt, tt.ok)
		}
	}
}

func TestTracker(t *testing.T) {
	t.Parallel()
	tr := newTracker(4)
	for _, c := range []struct {
		seq uint64
		id  int64
	}{{1, 1}, {2, 2}, {2, 2}, {4, 4}, {3, 3}, {5, 100}} {
		tr.record(c.seq, c.id, 0, 10)
	}
	if tr.received != 5 || tr.dups != 1 || tr.breaks != 3 {
		t.Errorf("received %d, dups %d, breaks %d; want 5, 1, 3", tr.received, tr.dups, tr.breaks)
	}
}

// testLog sends the tool's progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Helper()
	l.t.Log(string(p))
	return len(p), nil
}
