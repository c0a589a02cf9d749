package main

import (
	"slices"
	"time"
)

// latency summarises delivery latencies (send → arrival).
type latency struct {
	n                  int
	p50, p95, p99, max time.Duration
}

// summarize merges the samples (nanoseconds) and takes their percentiles.
func summarize(samples ...[]int64) latency {
	n := 0
	for _, s := range samples {
		n += len(s)
	}
	if n == 0 {
		return latency{}
	}
	all := make([]int64, 0, n)
	for _, s := range samples {
		all = append(all, s...)
	}
	slices.Sort(all)
	at := func(q float64) time.Duration {
		i := int(q*float64(n)+0.5) - 1
		return time.Duration(all[min(max(i, 0), n-1)])
	}
	return latency{n: n, p50: at(0.50), p95: at(0.95), p99: at(0.99), max: time.Duration(all[n-1])}
}
