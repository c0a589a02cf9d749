package main

import (
	"context"
	"fmt"
	"time"
)

// runIdle opens n subscribers that receive nothing, measures what they
// cost the gateway, then sends one change and measures how long it takes
// to reach all of them.
func (b *bench) runIdle(ctx context.Context, n int) (result, error) {
	const table = "bench_idle"
	if err := b.newTable(ctx, table, true); err != nil {
		return result{}, err
	}
	gw, err := b.startGateway(ctx, table)
	if err != nil {
		return result{}, err
	}
	defer gw.stop()
	u0, measured, err := gw.usage()
	if err != nil {
		return result{}, err
	}
	go0, err := goMemory(gw)
	if err != nil {
		return result{}, err
	}
	readCtx, stopReading := context.WithCancel(context.Background())
	defer stopReading()
	opened := time.Now()
	subs, err := openSubscribers(ctx, b.http, gw.wsURL(), table, n, 1, readCtx, nil)
	if err != nil {
		return result{}, err
	}
	defer closeSubscribers(subs)
	connected := time.Since(opened)
	if b.onIdleConnected != nil {
		b.onIdleConnected()
	}
	u1, _, err := gw.usage()
	if err != nil {
		return result{}, err
	}
	go1, err := goMemory(gw)
	if err != nil {
		return result{}, err
	}
	fl, err := startFloor(ctx, b.pg.URL, table, 1)
	if err != nil {
		return result{}, err
	}
	defer fl.stop()
	cpu0, _, err := snapshotCPU(gw)
	if err != nil {
		return result{}, err
	}
	w, err := b.write(ctx, table, stream{rows: 1}, -1, nil)
	if err != nil {
		return result{}, err
	}
	complete := b.waitDelivered(ctx, subs, fl, 1)
	cpu1, _, err := snapshotCPU(gw)
	if err != nil {
		return result{}, err
	}
	stopReading()
	closeSubscribers(subs)
	fl.stop()
	if !complete {
		b.logf("idle: not every delivery arrived before the deadline")
	}
	r := summarizeSubs("idle", subs, 1, w)
	r.floor = summarizeFloor(fl, w)
	r.gwMeasured = measured
	r.cpu = cpu1.since(cpu0)
	r.connectCPU = u1.cpu - u0.cpu
	r.connectTime = connected
	r.gwPeakRSS = cpu1.gateway.peakRSS
	r.perConnRSS = float64(u1.rss-u0.rss) / float64(n)
	r.perConnHeap = (go1.heap - go0.heap) / float64(n)
	r.perConnStack = (go1.stack - go0.stack) / float64(n)
	r.goroutinesPerConn = (go1.goroutines - go0.goroutines) / float64(n)
	b.logf("%s", r.oneLine())
	return r, nil
}

// goMem is what the gateway's /metrics says about its Go runtime: heap
// and goroutine stacks in use (bytes), and goroutines.
type goMem struct{ heap, stack, goroutines float64 }

// goMemory scrapes goMem from the gateway's /metrics.
func goMemory(gw gateway) (goMem, error) {
	var m goMem
	for _, f := range []struct {
		name string
		dst  *float64
	}{
		{"go_memstats_heap_inuse_bytes", &m.heap},
		{"go_memstats_stack_inuse_bytes", &m.stack},
		{"go_goroutines", &m.goroutines},
	} {
		v, err := gw.metric(f.name)
		if err != nil {
			return m, err
		}
		*f.dst = v
	}
	return m, nil
}

// oneLine is a progress line for the log.
func (r result) oneLine() string {
	return fmt.Sprintf("%s: %d subs, %d/%d delivered, %d dups, %d seq breaks, %d resyncs, p50 %s p99 %s max %s, %.0f/s",
		r.name, r.subs, r.received, r.expected, r.dups, r.breaks, r.resyncs,
		fmtDur(r.lat.p50), fmtDur(r.lat.p99), fmtDur(r.lat.max), r.rate)
}
